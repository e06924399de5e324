"""The expectations of a verify run, each from the first source that has it — the command line, the config
(`security.signing.verify`, `security.verify`, `security.scan`), the release manifest's own record (untrusted:
the evidence says so), the CI context — decided before any tool runs; what cannot be decided is exit 2."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sc_ci.config.model import duration_seconds, is_severity
from sc_ci.errors import ConfigError, UsageError
from sc_ci.session import Session
from sc_ci.signing import identity as identity_mod
from sc_ci.signing import keys
from sc_ci.signing.signers import key_from_reference
from sc_ci.verify import slsa
from sc_ci.verify.expect import Expectations, Match, Pin, Signer
from sc_ci.verify.manifest import ReleaseRecord

MANIFEST = "release.json"
UNTRUSTED = f"{MANIFEST} (as the release recorded it: pin it to trust it)"


@dataclass(frozen=True)
class Given:
    """What the command line asked for (None: not given)."""

    key: str | None = None
    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None
    source_repo: str | None = None
    source_ref: str | None = None
    git_sha: str | None = None
    builder_id: str | None = None
    build_signer: str | None = None
    runner_environment: str | None = None
    trusted_builders: tuple[str, ...] = ()
    max_scan_age: str | None = None
    fail_on: str | None = None
    rescan: bool | None = None
    sbom_formats: tuple[str, ...] = ()


def _configured(session: Session, path: str) -> str | None:
    """Where a config key was set (None: it was not)."""
    if session.loaded.origin(path) == "default":
        return None
    return f"security.{path} ({session.loaded.describe_origin(path)})"


def _pin(candidates: Sequence[tuple[str | None, str]], match: Match = "exact") -> Pin | None:
    for value, source in candidates:
        if value:
            return Pin(value.strip(), source, match)
    return None


def signer(session: Session, given: Given, record: ReleaseRecord | None) -> Signer:
    """Who must have signed: a key (flag, config), or a keyless identity and issuer (flags, config, the
    manifest's record, the CI context)."""
    loaded = session.loaded
    if given.key:
        key = key_from_reference(given.key, session.env, public=True)
        return Signer("key", "--key", key, key.label)
    keyless_flags = any((given.identity, given.identity_regexp, given.issuer, given.issuer_regexp))
    public = keys.configured(loaded, "signing.publicKey", public=True)
    if public is not None and not keyless_flags:
        return Signer("key", _configured(session, "signing.publicKey") or "security.signing.publicKey", public,
                      public.label)
    recorded = dict(record.signer) if record else {}
    if recorded.get("kind") == "key" and not keyless_flags:
        fingerprint = recorded.get("publicKeySha256") or "not recorded"
        raise UsageError("the release was signed with a key, and no public key was given to verify it with",
                         why=f"release.json records the key {str(recorded.get('key') or '?')[:200]!r} "
                             f"(public key {fingerprint})",
                         fix="Pass the public key: sc-ci release verify --key cosign.pub (or env://VAR, a KMS URI), "
                             "or set security.signing.publicKey.")
    verify = loaded.security.signing.verify
    ci_identity: str | None = None
    ci_issuer: str | None = None
    try:
        expected = identity_mod.expected(session.ci, verify)
        ci_identity, ci_issuer = expected.identity, expected.issuer
    except ConfigError:
        pass
    ci_source = f"the {session.ci.platform.value} context"
    who = _pin([(given.identity, "--certificate-identity")]) or _pin(
        [(given.identity_regexp, "--certificate-identity-regexp")], "regexp")
    if who is None and not (given.identity or given.identity_regexp):
        who = _pin([(verify.identity, _configured(session, "signing.verify.identity") or "")]) or _pin(
            [(verify.identity_regexp, _configured(session, "signing.verify.identityRegexp") or "")], "regexp") or _pin(
            [(recorded.get("identity"), UNTRUSTED)]) or _pin([(recorded.get("identityRegexp"), UNTRUSTED)],
                                                              "regexp") or _pin([(ci_identity, ci_source)])
    by = _pin([(given.issuer, "--certificate-oidc-issuer")]) or _pin(
        [(given.issuer_regexp, "--certificate-oidc-issuer-regexp")], "regexp")
    if by is None:
        by = _pin([(verify.oidc_issuer, _configured(session, "signing.verify.oidcIssuer") or "")]) or _pin(
            [(recorded.get("issuer"), UNTRUSTED)]) or _pin([(recorded.get("issuerRegexp"), UNTRUSTED)],
                                                           "regexp") or _pin([(ci_issuer, ci_source)])
    if who is None or by is None:
        missing = " and ".join(n for n, v in (("identity", who), ("OIDC issuer", by)) if v is None)
        raise UsageError(f"no certificate {missing} to verify the release's keyless signatures against",
                         why="none was given, configured or recorded in the release manifest",
                         fix=identity_mod.FIX.replace("sc-ci image verify --image IMAGE", "sc-ci release verify"))
    build = dict(record.build) if record else {}
    pins = {
        "sourceRepositoryURI": _pin([(given.source_repo, "--source-repo"),
                                     (verify.source_repository,
                                      _configured(session, "signing.verify.sourceRepository") or ""),
                                     (build.get("sourceRepo"), UNTRUSTED)], "repository"),
        "sourceRepositoryDigest": _pin([(given.git_sha, "--git-sha"), (build.get("gitSha"), UNTRUSTED)], "commit"),
        "sourceRepositoryRef": _pin([(given.source_ref, "--source-ref"),
                                     (verify.source_ref, _configured(session, "signing.verify.sourceRef") or ""),
                                     (build.get("ref"), UNTRUSTED)], "ref"),
        "buildSignerURI": _pin([(given.build_signer, "--build-signer"),
                                (verify.build_signer, _configured(session, "signing.verify.buildSigner") or "")]),
        "runnerEnvironment": _pin([(given.runner_environment, "--runner-environment"),
                                   (verify.runner_environment,
                                    _configured(session, "signing.verify.runnerEnvironment") or "")]),
    }
    return Signer("keyless", who.source if who.source == by.source else f"{who.source}; issuer: {by.source}",
                  identity=who, issuer=by, certificate={k: v for k, v in pins.items() if v is not None})


def expectations(session: Session, given: Given, record: ReleaseRecord | None) -> Expectations:
    """Everything the verify steps check, with where each value came from."""
    loaded = session.loaded
    security = loaded.security
    build = dict(record.build) if record else {}
    verify = security.signing.verify
    builder_id = _pin([(given.builder_id, "--builder-id"),
                       (security.verify.builder_id, _configured(session, "verify.builderId") or ""),
                       (build.get("builderId"), UNTRUSTED)])
    source_repo = _pin([(given.source_repo, "--source-repo"),
                        (verify.source_repository, _configured(session, "signing.verify.sourceRepository") or ""),
                        (build.get("sourceRepo"), UNTRUSTED)], "repository")
    source_ref = _pin([(given.source_ref, "--source-ref"),
                       (verify.source_ref, _configured(session, "signing.verify.sourceRef") or ""),
                       (build.get("ref"), UNTRUSTED)], "ref")
    git_sha = _pin([(given.git_sha, "--git-sha"), (build.get("gitSha"), UNTRUSTED)], "commit")
    builders = given.trusted_builders or security.verify.trusted_builders
    source = "--trusted-builder" if given.trusted_builders else (
        _configured(session, "verify.trustedBuilders") or "default (this project's reusable workflow at a tag)")
    trusted = tuple(Pin(b, source, "glob") for b in (builders or (slsa.DEFAULT_TRUSTED,)))
    age_text = given.max_scan_age or security.verify.max_scan_age
    try:
        max_age = timedelta(seconds=duration_seconds(age_text))
    except ValueError as exc:
        raise UsageError(f"--max-scan-age {age_text[:40]!r} is not a duration", why=str(exc),
                         fix="--max-scan-age 7d  (units w d h m s, e.g. 36h or 1w2d)") from exc
    fail_on = None
    if given.fail_on:
        if not is_severity(given.fail_on):
            raise UsageError(f"--fail-on {given.fail_on[:40]!r} is not a severity",
                             fix="--fail-on critical|high|medium|low")
        fail_on = Pin(given.fail_on.lower(), "--fail-on")
    elif security.scan.fail_on is not None and _configured(session, "scan.failOn"):
        fail_on = Pin(security.scan.fail_on, _configured(session, "scan.failOn") or "")
    if given.sbom_formats:
        formats, formats_source = given.sbom_formats, "--sbom-format"
    elif record is not None:
        formats, formats_source = record.sbom_formats, MANIFEST
    elif security.sbom.enabled and security.sbom.to_registry:
        formats, formats_source = security.sbom.formats, "security.sbom"
    else:
        formats, formats_source = (), "none (the release made none)"
    rescan = given.rescan if given.rescan is not None else security.verify.rescan
    release = {k: v for k, v in (("version", record.version if record else ""),
                                 ("stack", record.stack if record else ""),
                                 ("environment", record.environment if record else ""),
                                 ("tag", record.tag if record else "")) if v}
    return Expectations(signer(session, given, record), builder_id, source_repo, source_ref, git_sha, trusted,
                        tuple(formats), formats_source, max_age, fail_on, rescan, release)
