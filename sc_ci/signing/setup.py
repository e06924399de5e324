"""Build the one SigningPlan of a run (key or keyless identity and its one token, verification key,
Sigstore options) that image signing and every attestation (SBOM, provenance) share."""

from __future__ import annotations

from pathlib import Path

from sc_ci import secrets
from sc_ci.config.loader import LoadedConfig
from sc_ci.errors import ConfigError, ScError
from sc_ci.services import oidc
from sc_ci.session import Session
from sc_ci.signing import identity, keys
from sc_ci.signing.plan import SigningPlan
from sc_ci.signing.signers import CertificateIdentity, Key, Keyless, key_from_secret
from sc_ci.tools.cosign import Cosign, SignOptions
from sc_ci.tools.sigstore_files import signing_config_has_tlog, signing_config_services

SIGSTORE = "security.signing.sigstore"


def plan(session: Session, cosign: Cosign) -> SigningPlan:
    """Decide key (or keyless token), verification key or identity, and Sigstore options from the loaded
    config. No signing tool runs here; keyless plans fetch the OIDC token once, for the whole run."""
    signing = session.loaded.security.signing
    options = sigstore_options(session.loaded)
    if signing.keyless:
        return _keyless(session, options)
    key = keys.must_have(keys.configured(session.loaded, "signing.privateKey", public=False),
                         "private key", "Pass --key or set security.signing.privateKey.")
    verify_key: Key | None = None
    public = keys.configured(session.loaded, "signing.publicKey", public=True)
    if signing.verify.enabled or not signing.force:  # the public key also tells whether it is already signed
        verify_key = public
        if verify_key is None:
            verify_key = key if key.is_kms else _derived_public_key(cosign, key, session.dry_run)
    check = None if signing.force else verify_key
    return SigningPlan(key, verify_key if signing.verify.enabled else None, options, check_existing=check)


def _keyless(session: Session, options: SignOptions) -> SigningPlan:
    """One token per run (masked before use), the identity its certificate will carry, and the plan."""
    source = session.ci.oidc
    if not source.available:  # fail before cosign, which would otherwise hang in a device flow
        raise ScError("keyless signing needs an OIDC identity token, and none is available",
                      why=source.detail, fix=source.fix)
    secrets.need_ci_masking()  # GitHub: ::add-mask:: the token the moment it exists
    token = None if session.dry_run else oidc.obtain(session.ci, session.env)  # the run's one token
    verify = session.loaded.security.signing.verify
    expected: CertificateIdentity | None
    try:
        expected = identity.expected(session.ci, verify, claims=oidc.claims(token) if token else None)
    except ConfigError:
        if verify.enabled:
            raise
        expected = None
    check = None if session.loaded.security.signing.force else expected
    return SigningPlan(Keyless(token, oidc.describe(source.kind)), expected if verify.enabled else None, options,
                       identity=expected, check_existing=check)


def sigstore_options(loaded: LoadedConfig) -> SignOptions:
    """signing.sigstore.* (plus signing.storage and signing.recursive) as cosign options: files resolved
    against the project root and checked to exist; a signing config is read once for the URLs cosign v2
    (and v3 writing the legacy format) needs."""
    signing = loaded.security.signing
    cfg = signing.sigstore
    signing_config = _file(loaded, "signingConfig", cfg.signing_config)
    config_fulcio = config_rekor = None
    if signing_config is not None:
        try:
            config_fulcio, config_rekor = signing_config_services(Path(signing_config))
            has_tlog = signing_config_has_tlog(Path(signing_config))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{signing_config} is not a Sigstore signing config (JSON)",
                              path=f"{SIGSTORE}.signingConfig", why=str(exc),
                              fix="Make one with `cosign signing-config create --fulcio=\"url=…,api-version=1,"
                                  "start-time=…,operator=…\" --out signing_config.json`.") from exc
        if has_tlog and not cfg.transparency_log:
            raise ConfigError("the signing config names a transparency log, but transparencyLog is false",
                              path=f"{SIGSTORE}.signingConfig",
                              why="cosign v3 uploads to every Rekor the signing config lists",
                              fix="Make a signing config without Rekor (`cosign signing-config create` with no "
                                  "--rekor), or set transparencyLog: true.")
    return SignOptions(tlog=cfg.transparency_log, ct_log=cfg.certificate_transparency, fulcio_url=cfg.fulcio_url,
                       rekor_url=cfg.rekor_url, trusted_root=_file(loaded, "trustedRoot", cfg.trusted_root),
                       signing_config=signing_config, tuf_mirror=cfg.tuf_mirror,
                       tuf_root=_file(loaded, "tufRoot", cfg.tuf_root), config_fulcio_url=config_fulcio,
                       config_rekor_url=config_rekor, storage=signing.storage, recursive=signing.recursive)


def _file(loaded: LoadedConfig, key: str, value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = loaded.project_root / path
    if not path.is_file():
        raise ConfigError(f"file {value} does not exist", path=f"{SIGSTORE}.{key}",
                          fix="Give the path to the file (relative paths are relative to the project root).")
    return str(path)


def _derived_public_key(cosign: Cosign, key: Key, dry_run: bool) -> Key:
    if dry_run:
        return Key("<public key of " + key.label + ">", {}, f"public key of {key.label}")
    derived = key_from_secret(cosign.public_key(key), public=True)
    return Key(derived.ref, derived.env, f"public key of {key.label}")


def verification_plan(session: Session, given: identity.Given | None = None) -> SigningPlan:
    """A verify-only plan: a public key (flag/config, or a KMS private key), else the keyless identity
    (given on the command line, configured, or derived from the CI context). Fetches no token."""
    loaded, given = session.loaded, given or identity.Given()
    options = sigstore_options(loaded)
    if not given.any:
        key = keys.configured(loaded, "signing.publicKey", public=True)
        private = keys.configured(loaded, "signing.privateKey", public=False)
        if key is None and private is not None and private.is_kms:
            key = private
        if key is not None:
            return SigningPlan(key, key, options)
        if private is not None or not loaded.security.signing.keyless:
            raise ConfigError("no public key to verify with",
                              why="signing is key-based here, and only the private key is configured",
                              fix="Pass --key cosign.pub (or env://VAR, a KMS URI), or set "
                                  "security.signing.publicKey.")
    expected = identity.expected(session.ci, loaded.security.signing.verify, given=given)
    return SigningPlan(Keyless(None, "verification only"), expected, options, identity=expected)
