"""The signing step: sign one image digest with cosign (key or keyless), then verify it right away when asked."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sc_ci.errors import ConfigError
from sc_ci.runner import Completed
from sc_ci.steps.interface import StepResult, timed
from sc_ci.tools import cosign as cosign_tool
from sc_ci.tools.cosign import CertificateIdentity, Cosign, Key, Keyless, Signer, SignOptions, Verifier


@dataclass(frozen=True)
class SigningPlan:
    """Everything signing needs, decided before any tool runs (no secret is revealed here).

    `key` signs: a Key, or Keyless (one OIDC token fetched for the whole run, shared by every image and
    attestation). `verify_key` verifies right after signing (None: that is off): a public Key or the
    expected CertificateIdentity. `identity` is the keyless identity even when verification after signing
    is off, so attestations can still be verified.
    """

    key: Signer
    verify_key: Verifier | None  # None: verification after signing is off
    options: SignOptions
    docker_config: str | None = None
    identity: CertificateIdentity | None = None

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
        """Attach `predicate` to `image` as an attestation signed exactly like the image itself."""
        return cosign.attest(image, self.key, predicate, predicate_type, self.options, self.docker_config)

    def verify_attestation(self, cosign: Cosign, image: str, predicate_type: str) -> list[dict[str, object]]:
        """Verify attestations of `predicate_type` with this plan's verification key or identity; decoded
        statements."""
        return cosign.verify_attestation(image, self.verifier(), predicate_type, self.options, self.docker_config)


def sign(cosign: Cosign, image: str, plan: SigningPlan) -> StepResult:
    """Sign `image` (a repo@sha256:… reference)."""

    def action() -> tuple[str, dict[str, str]]:
        result = cosign.sign(image, plan.key, plan.options, plan.docker_config)
        details = {"key": plan.key.label, "cosign": cosign.version, "seconds": f"{result.seconds:.2f}"}
        return f"signed {plan.key.label}" if plan.keyless else f"signed with {plan.key.label}", details

    return timed("sign", image, action)


def verify(cosign: Cosign, image: str, key: Verifier, options: SignOptions,
           docker_config: str | None = None) -> StepResult:
    """Verify `image` against `key` (a public key or a certificate identity); the result names the exact
    command a consumer can run."""

    def action() -> tuple[str, dict[str, str]]:
        verified = cosign.verify(image, key, options, docker_config)
        return (f"verified {verified.signatures} signature(s) with {key.label}",
                {"key": key.label, "command": consumer_command(image, key, options)})

    return timed("verify", image, action)


def consumer_command(image: str, key: Verifier, options: SignOptions) -> str:
    """The `cosign verify …` line a consumer runs (with a public key file they hold, or the identity)."""
    return cosign_tool.consumer_command(image, key, options)
