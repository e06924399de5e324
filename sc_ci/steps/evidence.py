"""What the verify steps share: the run's verifier (from the expectations), its trusted certificate
authorities, the stored signatures and attestations of a digest (read once), and which of them are bound to
the expected signer — the artifacts and certificate extensions a check's evidence names."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sc_ci.errors import ConfigError
from sc_ci.imageref import ImageRef
from sc_ci.log import get_logger
from sc_ci.results.verify import ArtifactFound, SignerFound
from sc_ci.signing import keys
from sc_ci.signing.plan import SigningPlan
from sc_ci.signing.signers import CertificateIdentity, Key, Keyless, Verifier
from sc_ci.sigstore import binding, stored
from sc_ci.sigstore.binding import Bound, TrustedCAs
from sc_ci.sigstore.stored import Stored
from sc_ci.steps import verified
from sc_ci.steps.sbom import Fetch
from sc_ci.tools.cosign import SignOptions
from sc_ci.verify.expect import Expectations, Signer

if TYPE_CHECKING:
    from sc_ci.engine.context import RunContext

log = get_logger("verify")


def expectations(ctx: RunContext) -> Expectations:
    found = ctx.options.expectations
    if found is None:
        raise ConfigError("no verification expectations", fix="Run it through `sc-ci release verify`.")
    return found


def verification(ctx: RunContext) -> tuple[Verifier, SignOptions]:
    """The verifier every verify step passes cosign (a public key, or the keyless identity and issuer) and the
    Sigstore options (trusted root, transparency log), decided once per run."""
    def make() -> tuple[Verifier, SignOptions]:
        from sc_ci.signing import setup

        return verifier_of(expectations(ctx).signer), setup.sigstore_options(ctx.session.loaded)

    return ctx.once("verification", make)


def verifier_of(signer: Signer) -> Verifier:
    if signer.kind == "key":
        assert signer.key is not None
        return signer.key
    identity, issuer = signer.identity, signer.issuer
    return CertificateIdentity(
        identity.value if identity and identity.match == "exact" else None,
        identity.value if identity and identity.match == "regexp" else None,
        issuer.value if issuer and issuer.match == "exact" else None,
        issuer.value if issuer and issuer.match == "regexp" else None)


def trusted(ctx: RunContext) -> TrustedCAs | None:
    """The certificate authorities of the trusted root cosign verifies against (the configured file, else
    cosign's TUF copy of the public-good one); None when none can be read (keyless certificates then stay
    unbound: the evidence says so)."""
    def load() -> TrustedCAs | None:
        _, options = verification(ctx)
        path = binding.find_trusted_root(options.trusted_root, ctx.env)
        if path is None:
            return None
        try:
            return TrustedCAs.from_trusted_root(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("cannot read the trusted root %s: %s", path, exc)
            return None

    return ctx.once("trusted-cas", load)


def stored_for(ctx: RunContext, ref: ImageRef, kind: stored.Kind) -> list[Stored]:
    """Every stored signature (or attestation) naming `ref`'s digest, read once per run."""
    return ctx.once(f"stored:{kind}:{ref.by_digest}", lambda: stored.stored_for(ctx.session.registry, ref, kind))


def public_key(ctx: RunContext, key: Key) -> bytes | None:
    return ctx.once(f"public-key:{key.ref}", lambda: keys.public_pem(key))


def bind(ctx: RunContext, candidates: Iterable[Stored], signer: Signer) -> tuple[list[Bound], list[str]]:
    """The candidates signed by the expected signer (key: its signature verifies with the public key;
    keyless: the certificate chains to the trusted root, verifies the signature, and names the expected
    identity and issuer), and why each other one does not count."""
    items = list(candidates)
    if signer.kind == "key":
        assert signer.key is not None
        pem = public_key(ctx, signer.key)
        return binding.bind_key(items, pem, signer.key_label or signer.key.label)
    bound, ignored = binding.bind_keyless(items, trusted(ctx))
    mine: list[Bound] = []
    for item in bound:
        cert = item.certificate
        assert cert is not None
        if signer.identity is not None and not signer.identity.matches(cert.subject):
            ignored.append(f"{item.stored.layer[:19]}…: signed by {cert.subject!r}, not {signer.identity.describe()}")
        elif signer.issuer is not None and not signer.issuer.matches(cert.issuer):
            ignored.append(f"{item.stored.layer[:19]}…: issued for {cert.issuer!r}, not {signer.issuer.describe()}")
        else:
            mine.append(item)
    return mine, ignored


def certificate_mismatches(item: Bound, signer: Signer) -> list[str]:
    """Every pinned certificate extension the bound certificate does not carry as expected (a pin defaulted
    from the manifest is checked where the certificate carries that extension)."""
    cert = item.certificate
    if cert is None:
        return []
    out = []
    for name, pin in signer.certificate.items():
        actual = cert.get(name)
        if actual is None and pin.from_manifest:
            continue
        if not pin.matches(actual):
            got = repr(actual) if actual is not None else "nothing (the certificate does not carry it)"
            out.append(f"{name}: expected {pin.describe()} ({pin.source}), the certificate says {got}")
    return out


def signer_found(item: Bound) -> SignerFound:
    cert = item.certificate
    if cert is not None:
        return SignerFound("keyless", cert.subject, cert.issuer, dict(cert.extensions), "", cert.serial)
    return SignerFound("key", key=item.key)


def artifact_found(item: Bound | Stored) -> ArtifactFound:
    entry = item.stored if isinstance(item, Bound) else item
    signer = signer_found(item) if isinstance(item, Bound) else None
    return ArtifactFound(entry.kind, entry.format, entry.layer, entry.manifest, entry.predicate_type, signer,
                         entry.log_index)


def matching_statements(candidates: Iterable[Stored], verified: Sequence[Mapping[str, object]]) -> list[Stored]:
    """The stored attestations whose statement is one cosign verified (by content)."""
    wanted = {json.dumps(s, sort_keys=True) for s in verified}
    return [c for c in candidates if (s := c.statement()) is not None and json.dumps(s, sort_keys=True) in wanted]




def verification_plan(ctx: RunContext) -> SigningPlan:
    """The run's verifier as a verify-only signing plan (what the attestation helpers of the SBOM and
    provenance steps take: its verifier and Sigstore options; it signs nothing)."""
    key, options = verification(ctx)
    identity = key if isinstance(key, CertificateIdentity) else None
    return SigningPlan(Keyless(None, "verification only"), key, options, identity=identity)


def attestation_batch(cosign_type: str) -> str:
    return f"batch:attestations:{cosign_type}"


def warm_attestations(ctx: RunContext, cosign_type: str, refs: Callable[[], Sequence[str]]) -> None:
    """One `cosign verify-attestation --type T` over every manifest `refs()` names, started now."""
    key, options = verification(ctx)
    ctx.start(attestation_batch(cosign_type), lambda: verified.attestations(ctx, key, options, cosign_type, refs()))


def fetcher(ctx: RunContext, seen: dict[tuple[str, str], list[Mapping[str, Any]]] | None = None) -> Fetch:
    """Verified statements of a type for a manifest: what the warmed batch verified, else cosign
    verify-attestation for this manifest alone. `seen` records what each call returned (for the evidence)."""
    def fetch(ref: str, cosign_type: str) -> list[Mapping[str, Any]]:
        answers: Mapping[str, verified.Answer] = ctx.once(attestation_batch(cosign_type), dict)
        answer = answers.get(ref)
        if answer is not None and answer.verified is not None:
            found: list[Mapping[str, Any]] = list(answer.verified)
        else:
            key, options = verification(ctx)
            found = list(ctx.cosign().verify_attestation(ref, key, cosign_type, options, ctx.docker_config))
        if seen is not None:
            seen[(ref, cosign_type)] = found
        return found

    return fetch


def attestation_evidence(ctx: RunContext, ref: ImageRef, statements: Sequence[Mapping[str, Any]],
                         signer: Signer) -> tuple[list[Bound], list[str]]:
    """The stored attestations of `ref` that are the statements cosign verified, bound to the signer."""
    candidates = matching_statements(stored_for(ctx, ref, "attestation"), statements)
    return bind(ctx, candidates, signer)
