"""The run's one signing plan: who signs (a key, or keyless with the run's one token), what verifies it, the
Sigstore options, and what proves an image is already signed. Decided once (sc_ci.signing.setup), before any
tool runs; no secret is revealed here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sc_ci.errors import ConfigError
from sc_ci.signing.signers import CertificateIdentity, Key, Keyless, Signer, Verifier

if TYPE_CHECKING:
    from sc_ci.runner import Completed
    from sc_ci.tools.cosign import Cosign, SignOptions


@dataclass(frozen=True)
class SigningPlan:
    """Everything signing needs, decided before any tool runs (no secret is revealed here).

    `key` signs: a Key, or Keyless (one OIDC token fetched for the whole run, shared by every image and
    attestation). `verify_key` verifies right after signing (None: that is off): a public Key or the
    expected CertificateIdentity. `identity` is the keyless identity even when verification after signing
    is off, so attestations can still be verified. `check_existing` proves an image is already signed by
    this key or identity, so signing it again is skipped (None: always sign, e.g. signing.force).
    """

    key: Signer
    verify_key: Verifier | None  # None: verification after signing is off
    options: SignOptions
    docker_config: str | None = None
    identity: CertificateIdentity | None = None
    check_existing: Verifier | None = None

    @property
    def keyless(self) -> bool:
        return isinstance(self.key, Keyless)

    def with_docker_config(self, docker_config: str | None) -> SigningPlan:
        return replace(self, docker_config=docker_config)

    def verifier(self) -> Verifier:
        """What verifies this plan's signatures: the verification key/identity, else the signing key."""
        if self.verify_key is not None:
            return self.verify_key
        if self.identity is not None:
            return self.identity
        if isinstance(self.key, Key):
            return self.key
        raise ConfigError("no certificate identity to verify keyless signatures against",
                          fix="Set security.signing.verify.identityRegexp and oidcIssuer (or run in a CI that "
                              "tells the signer's identity).")

    def attest(self, cosign: Cosign, image: str, predicate: Path, predicate_type: str) -> Completed:
        """Attach `predicate` to `image` as an attestation signed exactly like the image itself (and stored
        the same way: signing.storage)."""
        return cosign.attest(image, self.key, predicate, predicate_type, self.options, self.docker_config)

    def verify_attestation(self, cosign: Cosign, image: str, predicate_type: str) -> list[dict[str, object]]:
        """Verify attestations of `predicate_type` with this plan's verification key or identity; decoded
        statements."""
        return cosign.verify_attestation(image, self.verifier(), predicate_type, self.options, self.docker_config)


def signer_label(plan: SigningPlan) -> str:
    """Who signs, as the summary says it: the key (KMS URIs without credentials) or the keyless identity."""
    if isinstance(plan.key, Keyless):
        return plan.identity.label if plan.identity is not None else plan.key.label
    return plan.key.label or plan.key.ref
