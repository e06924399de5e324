"""Build the one SigningPlan (key or keyless identity, verification key, Sigstore options) that image
signing and every attestation (SBOM, provenance) share."""

from __future__ import annotations

from sc_ci import keys
from sc_ci.commands.session import Session
from sc_ci.errors import ScError
from sc_ci.steps.sign import SigningPlan
from sc_ci.tools.cosign import Cosign, Key, SignOptions, key_from_secret

KEYLESS_NOT_YET = ScError(
    "keyless signing is not available in this version of sc-ci",
    why="only key-based signing (file, env://, KMS URI or ${secret:…}) is implemented so far",
    fix="Sign with a key: --key cosign.key, or in YAML\n"
        "security:\n  signing:\n    enabled: true\n    privateKey: ${secret:cosign-private-key}",
)


def plan(session: Session, cosign: Cosign) -> SigningPlan:
    """Decide key, verification key and Sigstore options from the loaded config (no tool runs here,
    except deriving a public key from the private one when verification needs it)."""
    signing = session.loaded.security.signing
    if signing.keyless:
        _require_oidc(session)
        raise KEYLESS_NOT_YET
    key = keys.must_have(keys.configured(session.loaded, "signing.privateKey", public=False),
                         "private key", "Pass --key or set security.signing.privateKey.")
    options = SignOptions(tlog=signing.sigstore.transparency_log)
    verify_key: Key | None = None
    if signing.verify.enabled:
        verify_key = keys.configured(session.loaded, "signing.publicKey", public=True)
        if verify_key is None:
            verify_key = key if key.is_kms else _derived_public_key(cosign, key, session.dry_run)
    return SigningPlan(key, verify_key, options)


def _derived_public_key(cosign: Cosign, key: Key, dry_run: bool) -> Key:
    if dry_run:
        return Key("<public key of " + key.label + ">", {}, f"public key of {key.label}")
    derived = key_from_secret(cosign.public_key(key), public=True)
    return Key(derived.ref, derived.env, f"public key of {key.label}")


def _require_oidc(session: Session) -> None:
    oidc = session.ci.oidc
    if not oidc.available:
        raise ScError("keyless signing needs an OIDC identity token, and none is available",
                      why=oidc.detail, fix=oidc.fix)


