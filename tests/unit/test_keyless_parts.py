"""Keyless signing's pure parts: cosign argv per major and Sigstore setting, the identity to verify against,
failure classification on cosign's own messages, the signing.sigstore.* rules, token files, trust files."""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sc_ci import ci
from sc_ci.config import load
from sc_ci.config.model import VerifyConfig
from sc_ci.errors import ConfigError, ScError, StepFailed, VerificationFailed
from sc_ci.runner import Completed
from sc_ci.secrets import Secret
from sc_ci.signing import identity
from sc_ci.signing.plan import SigningPlan
from sc_ci.signing.setup import sigstore_options
from sc_ci.signing.signers import CertificateIdentity, Key, Keyless
from sc_ci.tools.cosign import TOKEN_PLACEHOLDER, Cosign, SignOptions, consumer_command, token_file
from sc_ci.tools.cosign_failures import classify
from sc_ci.tools.sigstore_files import legacy_trust, signing_config_services

IMG = "registry.example.com/app@sha256:" + "a" * 64
TOKEN = Keyless(Secret("eyJ.test.token", "t"), "test")
WHO = CertificateIdentity(identity="https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main",
                          issuer="https://token.actions.githubusercontent.com")
PRIVATE = SignOptions(tlog=False, ct_log=False, trusted_root="/trust/tr.json", signing_config="/trust/sc.json",
                      config_fulcio_url="https://fulcio.example.com")
V3, V2 = Cosign(Path("/bin/cosign"), "v3.1.2", {}), Cosign(Path("/bin/cosign"), "v2.6.4", {})


def _tail(argv: list[str]) -> list[str]:
    """argv without the binary, the subcommand and the image."""
    return argv[2:-1]


# ---- signing argv ---------------------------------------------------------------------------------------------


def test_keyless_sign_uses_a_token_file_never_the_token() -> None:
    argv = V3.sign_argv(IMG, TOKEN, SignOptions(), "/tmp/x/token")
    assert argv == ["/bin/cosign", "sign", "--yes", "--identity-token", "/tmp/x/token", IMG]
    assert "eyJ.test.token" not in " ".join(V3.sign_argv(IMG, TOKEN, SignOptions()))
    assert TOKEN_PLACEHOLDER in V3.sign_argv(IMG, TOKEN, SignOptions())


def test_private_sigstore_v3_prefers_the_signing_config() -> None:
    assert _tail(V3.sign_argv(IMG, TOKEN, PRIVATE, "T")) == [
        "--yes", "--identity-token", "T", "--signing-config", "/trust/sc.json", "--trusted-root", "/trust/tr.json"]


def test_private_sigstore_v2_takes_the_urls_of_the_signing_config() -> None:
    assert _tail(V2.sign_argv(IMG, TOKEN, PRIVATE, "T")) == [
        "--yes", "--identity-token", "T", "--fulcio-url=https://fulcio.example.com", "--tlog-upload=false",
        "--insecure-skip-verify=true", "--trusted-root", "/trust/tr.json"]


def test_service_urls_per_major() -> None:
    urls = SignOptions(fulcio_url="https://f.example", rekor_url="https://r.example")
    assert _tail(V3.sign_argv(IMG, TOKEN, urls, "T"))[3:] == [
        "--use-signing-config=false", "--fulcio-url=https://f.example", "--rekor-url=https://r.example"]
    assert _tail(V2.sign_argv(IMG, TOKEN, urls, "T"))[3:] == [
        "--fulcio-url=https://f.example", "--rekor-url=https://r.example"]
    no_log = SignOptions(tlog=False, fulcio_url="https://f.example")
    assert _tail(V3.sign_argv(IMG, TOKEN, no_log, "T"))[3:] == [
        "--use-signing-config=false", "--fulcio-url=https://f.example", "--tlog-upload=false"]


def test_key_signing_argv_is_unchanged() -> None:
    key = Key("cosign.key")
    assert _tail(V3.sign_argv(IMG, key, SignOptions(tlog=False))) == [
        "--yes", "--key", "cosign.key", "--use-signing-config=false", "--tlog-upload=false"]
    assert _tail(V2.sign_argv(IMG, key, SignOptions(tlog=False))) == ["--yes", "--key", "cosign.key",
                                                                       "--tlog-upload=false"]
    assert _tail(V3.verify_argv(IMG, Key("cosign.pub"), SignOptions(tlog=False))) == [
        "--key", "cosign.pub", "--output", "json", "--insecure-ignore-tlog=true"]


def test_attest_argv_signs_like_sign() -> None:
    argv = V2.attest_argv(IMG, TOKEN, Path("p.json"), "slsaprovenance1", PRIVATE, "T")
    assert _tail(argv) == ["--yes", "--identity-token", "T", "--predicate", "p.json", "--type", "slsaprovenance1",
                           "--fulcio-url=https://fulcio.example.com", "--tlog-upload=false",
                           "--insecure-skip-verify=true", "--trusted-root", "/trust/tr.json"]


# ---- verification argv ----------------------------------------------------------------------------------------


def test_keyless_verify_argv_both_majors() -> None:
    expected = ["--certificate-identity", WHO.identity, "--certificate-oidc-issuer", WHO.issuer, "--output", "json",
                "--trusted-root", "/trust/tr.json", "--insecure-ignore-tlog=true", "--insecure-ignore-sct=true"]
    assert _tail(V3.verify_argv(IMG, WHO, PRIVATE)) == expected
    assert _tail(V2.verify_argv(IMG, WHO, PRIVATE)) == expected


def test_v2_verifies_against_a_private_rekor_url() -> None:
    opts = SignOptions(rekor_url="https://r.example")
    assert "--rekor-url=https://r.example" in V2.verify_argv(IMG, WHO, opts)
    assert not any(a.startswith("--rekor-url") for a in V3.verify_argv(IMG, WHO, opts))


def test_v2_verify_attestation_gets_ca_roots_instead_of_the_trusted_root() -> None:
    v2 = V2.verify_attestation_argv(IMG, WHO, "cyclonedx", PRIVATE)
    assert "--trusted-root" not in v2
    assert v2[v2.index("--ca-roots") + 1] == "<Fulcio roots of the trusted root>"
    assert "--trusted-root" in V3.verify_attestation_argv(IMG, WHO, "cyclonedx", PRIVATE)
    assert "--trusted-root" in V2.verify_attestation_argv(IMG, Key("k.pub"), "cyclonedx", PRIVATE)


def test_identity_regexps_and_consumer_command() -> None:
    who = CertificateIdentity(identity_regexp="^https://github.com/acme/", issuer_regexp=r"^https://token\.")
    assert who.flags() == ["--certificate-identity-regexp", "^https://github.com/acme/",
                           "--certificate-oidc-issuer-regexp", r"^https://token\."]
    assert consumer_command(IMG, who, SignOptions()) == (
        "cosign verify --certificate-identity-regexp '^https://github.com/acme/' "
        rf"--certificate-oidc-issuer-regexp '^https://token\.' {IMG}")
    assert consumer_command(IMG, WHO, PRIVATE, "slsaprovenance1").startswith(
        "cosign verify-attestation --type slsaprovenance1 --certificate-identity ")
    assert consumer_command(IMG, Key("env://X", label="inline"), SignOptions(tlog=False)) == (
        f"cosign verify --key cosign.pub --insecure-ignore-tlog=true {IMG}")


def test_cosign_env_carries_trust_settings_never_tokens() -> None:
    caller = {"PATH": "/bin", "TUF_ROOT": "/tuf", "SIGSTORE_ROOT_FILE": "/r.pem", "SIGSTORE_ID_TOKEN": "tok",
              "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "req", "TUF_MIRROR": "https://old.example"}
    env = Cosign(Path("/bin/cosign"), "3.1.2", caller).env_for(
        TOKEN, None, SignOptions(tuf_mirror="https://tuf.example", tuf_root="/root.json"))
    assert env["TUF_ROOT"] == "/tuf"
    assert env["SIGSTORE_ROOT_FILE"] == "/r.pem"
    assert env["TUF_MIRROR"] == "https://tuf.example"  # the config wins over the caller's
    assert env["TUF_ROOT_JSON"] == "/root.json"
    assert "SIGSTORE_ID_TOKEN" not in env
    assert "ACTIONS_ID_TOKEN_REQUEST_TOKEN" not in env


# ---- the expected identity ------------------------------------------------------------------------------------

GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/app",
          "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/heads/main"}
GITLAB = {"GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.example.com", "CI_PROJECT_PATH": "grp/proj",
          "CI_COMMIT_REF_NAME": "main"}


def test_github_identity_from_the_context() -> None:
    got = identity.expected(ci.detect(GITHUB), VerifyConfig())
    assert got == CertificateIdentity(
        identity="https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
        issuer="https://token.actions.githubusercontent.com")


def test_gitlab_identity_is_the_double_slash_config_ref() -> None:
    got = identity.expected(ci.detect(GITLAB), VerifyConfig())
    assert got.identity == "https://gitlab.example.com/grp/proj//.gitlab-ci.yml@refs/heads/main"
    assert got.issuer == "https://gitlab.example.com"


def test_a_reusable_workflow_is_named_by_the_token() -> None:
    claims = {"job_workflow_ref": "acme/shared/.github/workflows/sign.yml@refs/tags/v1",
              "iss": "https://token.actions.githubusercontent.com"}
    got = identity.expected(ci.detect(GITHUB), VerifyConfig(), claims=claims)
    assert got.identity == "https://github.com/acme/shared/.github/workflows/sign.yml@refs/tags/v1"


def test_configured_and_given_identities_win() -> None:
    verify = VerifyConfig.model_validate({"oidcIssuer": "https://issuer.example",
                                          "identityRegexp": "^https://github.com/acme/"})
    got = identity.expected(ci.detect(GITHUB), verify)
    assert got == CertificateIdentity(identity_regexp="^https://github.com/acme/", issuer="https://issuer.example")
    given = identity.Given(identity="someone@example.com", issuer_regexp="^https://")
    got = identity.expected(ci.detect(GITHUB), verify, given=given)
    assert got == CertificateIdentity(identity="someone@example.com", issuer_regexp="^https://")


def test_no_identity_outside_ci_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as missing:
        identity.expected(ci.detect({}), VerifyConfig())
    assert "no certificate identity or OIDC issuer" in missing.value.what
    assert "--certificate-identity" in missing.value.fix
    email = {"iss": "https://accounts.example", "email": "dev@example.com", "email_verified": True}
    got = identity.expected(ci.detect({}), VerifyConfig(), claims=email)
    assert got == CertificateIdentity(identity="dev@example.com", issuer="https://accounts.example")


def test_keyless_plan_without_identity_cannot_verify_attestations() -> None:
    plan = SigningPlan(TOKEN, None, SignOptions())
    with pytest.raises(ConfigError, match="no certificate identity"):
        plan.verifier()
    assert SigningPlan(TOKEN, None, SignOptions(), identity=WHO).verifier() is WHO
    assert SigningPlan(Key("k"), None, SignOptions()).verifier() == Key("k")


# ---- classification of cosign's messages ----------------------------------------------------------------------


def _failed(stderr: str, code: int = 1) -> Completed:
    return Completed(("cosign",), code, "", stderr, 0.1)


@pytest.mark.parametrize("stderr", [
    'Error: no matching attestations: failed to verify certificate identity: no matching CertificateIdentity found, '
    'last error: expected SAN value "https://evil", got "https://github.com/acme/app/x.yml@refs/heads/main"',
    "Error: no matching signatures: none of the expected identities matched what was in the certificate, got "
    "subjects [https://github.com/acme/app/x.yml@refs/heads/main] with issuer https://token.actions.githubusercontent.com",
])
def test_identity_mismatch_names_the_expected_identity(stderr: str) -> None:
    error = classify(_failed(stderr, 12), IMG, "verification", identity=WHO.label)
    assert isinstance(error, VerificationFailed)
    assert error.what == f"{IMG}: no signature was made by the expected {WHO.label}"
    assert "got" in error.why


@pytest.mark.parametrize(("stderr", "what", "fix"), [
    ("Error: signing [x]: signing digest: signing bundle: error signing bundle: Fulcio returned 400: "
     '{"code":3, "message":"There was an error processing the identity token", "details":[]}',
     "Fulcio rejected the OIDC identity token", "audience `sigstore`"),
    ('retrieving cert: POST http://127.0.0.1:5/api/v1/signingCert returned 400 Bad Request: "{\\"code\\":3, '
     '\\"message\\":\\"There was an error processing the identity token\\"}"',
     "Fulcio rejected the OIDC identity token", "NTP"),
    ('error signing bundle: Post "http://127.0.0.1:46541/api/v2/signingCert": dial tcp 127.0.0.1:46541: connect: '
     "connection refused", "could not get a signing certificate from Fulcio at http://127.0.0.1:46541", "fulcioUrl"),
    ('getting trusted root from TUF: tuf refresh failed: Get "https://tuf-repo-cdn.sigstore.dev/15.root.json": '
     "dial tcp: lookup tuf-repo-cdn.sigstore.dev: no such host", "could not fetch the Sigstore trust root over TUF",
     "tufMirror"),
])
def test_signing_failures_are_explained(stderr: str, what: str, fix: str) -> None:
    error = classify(_failed(stderr), IMG, "signing", fulcio_url=PRIVATE.config_fulcio_url)
    assert isinstance(error, StepFailed)
    assert what in error.what
    assert fix in error.fix


@pytest.mark.parametrize(("stderr", "what"), [
    ("no matching attestations: failed to verify signed certificate timestamp: only able to verify 0 SCT entries; "
     "unable to meet threshold of 1", "no SCT this verifier trusts"),
    ("no matching signatures: certificate does not include required embedded SCT and no detached SCT was set",
     "no SCT this verifier trusts"),
    ("no matching attestations: failed to verify leaf certificate: leaf certificate verification failed",
     "does not chain to a trusted Fulcio root"),
    ("no matching signatures: expected a signed timestamp to verify an expired certificate",
     "not valid at verification time"),
    ("x509: certificate has expired or is not yet valid: current time 2026-01-01T00:11:00Z is after "
     "2026-01-01T00:10:00Z", "not valid at verification time"),
    ("no matching attestations: failed to verify log inclusion: not enough verified log entries from transparency "
     "log: 0 < 1", "no transparency-log entry"),
])
def test_certificate_failures_are_explained(stderr: str, what: str) -> None:
    error = classify(_failed(stderr, 12), IMG, "verification", identity=WHO.label)
    assert isinstance(error, VerificationFailed)
    assert what in error.what


def test_a_digest_containing_403_is_not_an_access_denial() -> None:
    error = classify(_failed("Error: signing x@sha256:ab403cd: provenance predicate: required field missing"),
                     IMG, "attesting")
    assert "denied" not in error.what
    denied = classify(_failed("GET https://r/v2/: unexpected status code 401 Unauthorized"), IMG, "signing")
    assert "the registry denied access" in denied.what


# ---- signing.sigstore.* ---------------------------------------------------------------------------------------

SIGSTORE = "SC_CI_SECURITY__SIGNING__SIGSTORE__"


@pytest.mark.parametrize(("env", "message"), [
    ({"REKORURL": "https://r.example", "TRANSPARENCYLOG": "false"}, "rekorUrl contradicts transparencyLog"),
    ({"SIGNINGCONFIG": "sc.json", "FULCIOURL": "https://f.example"}, "either the file or the URLs"),
    ({"TUFROOT": "root.json"}, "no tufMirror is set"),
    ({"FULCIOURL": "fulcio.example.com"}, "is not an http(s) URL"),
])
def test_impossible_sigstore_settings_are_rejected(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as rejected:
        load(env={SIGSTORE + k: v for k, v in env.items()})
    assert message in rejected.value.diagnostics()


def _signing_config(path: Path, rekor: bool) -> Path:
    data = {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [{"url": "https://fulcio.example.com", "majorApiVersion": 1,
                        "validFor": {"start": "2024-01-01T00:00:00Z"}}],
            "rekorTlogUrls": [{"url": "https://rekor.example.com", "majorApiVersion": 1}] if rekor else []}
    path.write_text(json.dumps(data))
    return path


def test_sigstore_files_resolve_against_the_project_root(tmp_path: Path) -> None:
    _signing_config(tmp_path / "sc.json", rekor=True)
    (tmp_path / "tr.json").write_text("{}")
    loaded = load(env={SIGSTORE + "SIGNINGCONFIG": "sc.json", SIGSTORE + "TRUSTEDROOT": "tr.json",
                       SIGSTORE + "TUFMIRROR": "https://tuf.example"}, project_root=tmp_path)
    opts = sigstore_options(loaded)
    assert opts.signing_config == str(tmp_path / "sc.json")
    assert opts.trusted_root == str(tmp_path / "tr.json")
    assert (opts.config_fulcio_url, opts.config_rekor_url) == ("https://fulcio.example.com", "https://rekor.example.com")
    assert opts.env() == {"TUF_MIRROR": "https://tuf.example"}
    assert signing_config_services(tmp_path / "sc.json") == ("https://fulcio.example.com", "https://rekor.example.com")


def test_sigstore_files_are_checked_before_any_tool_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        sigstore_options(load(env={SIGSTORE + "TRUSTEDROOT": "missing.json"}, project_root=tmp_path))
    _signing_config(tmp_path / "sc.json", rekor=True)
    with pytest.raises(ConfigError, match="names a transparency log, but transparencyLog is false"):
        sigstore_options(load(env={SIGSTORE + "SIGNINGCONFIG": "sc.json", SIGSTORE + "TRANSPARENCYLOG": "false"},
                              project_root=tmp_path))
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(ConfigError, match="is not a Sigstore signing config"):
        sigstore_options(load(env={SIGSTORE + "SIGNINGCONFIG": "bad.json"}, project_root=tmp_path))


# ---- token files and trust files ------------------------------------------------------------------------------


def test_token_file_is_private_and_removed_on_every_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    secret = Secret("eyJtoken.payload.signature", "t")
    seen: list[Path] = []
    with token_file(secret) as path:
        seen.append(path)
        assert path.read_text() == secret.reveal()  # no trailing newline: cosign reads the file as is
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent.parent == tmp_path

    def fail_while_cosign_runs() -> None:
        with token_file(secret) as path:
            seen.append(path)
            raise ScError("boom")

    with pytest.raises(ScError, match="boom"):
        fail_while_cosign_runs()
    assert len(seen) == 2
    assert not any(p.exists() for p in seen)
    assert os.listdir(tmp_path) == []


def _cert(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
          issuer_key: ec.EllipticCurvePrivateKey | None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    return builder.sign(issuer_key or key, hashes.SHA256())


def test_trusted_root_becomes_v2_ca_files_and_log_keys(tmp_path: Path) -> None:
    root_key, mid_key, log_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("root", root_key, None, None)
    mid = _cert("intermediate", mid_key, root, root_key)

    def der(cert: x509.Certificate) -> str:
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    spki = base64.b64encode(log_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    trusted = tmp_path / "trusted_root.json"
    trusted.write_text(json.dumps({
        "certificateAuthorities": [{"certChain": {"certificates": [{"rawBytes": der(mid)}, {"rawBytes": der(root)}]}}],
        "tlogs": [{"publicKey": {"rawBytes": spki}}], "ctlogs": []}))
    with legacy_trust(trusted, tlog=True, ct_log=True) as legacy:
        roots = x509.load_pem_x509_certificates(Path(legacy.ca_roots).read_bytes())
        assert [c.subject for c in roots] == [root.subject]
        assert legacy.ca_intermediates is not None
        assert x509.load_pem_x509_certificates(Path(legacy.ca_intermediates).read_bytes())[0] == mid
        rekor = Path(legacy.env["SIGSTORE_REKOR_PUBLIC_KEY"]).read_bytes()
        assert serialization.load_pem_public_key(rekor) == log_key.public_key()
        assert "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE" not in legacy.env
        directory = Path(legacy.ca_roots).parent
    assert not directory.exists()
    with legacy_trust(trusted, tlog=False, ct_log=False) as legacy:
        assert legacy.env == {}
