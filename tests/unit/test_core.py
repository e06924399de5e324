"""Unit tests for the engine's plumbing: image refs, secrets and masking, runner, retry, reporters."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import pytest
import responses

from sc_ci import imageref, retry, runner, secrets
from sc_ci.errors import UsageError, VerificationFailed
from sc_ci.imageref import ImageRef
from sc_ci.log import get_logger, setup
from sc_ci.report import console, github
from sc_ci.results.step import Outcome, StepResult
from sc_ci.services import dockerconfig
from sc_ci.services.registry import RegistryClient, RegistryError, is_plain_http

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture(autouse=True)
def _clean_masker() -> None:
    secrets.reset_for_tests()


@pytest.mark.parametrize(("text", "expected"), [
    ("alpine", ImageRef("docker.io", "library/alpine")),
    ("alpine:3.20", ImageRef("docker.io", "library/alpine", "3.20")),
    ("ghcr.io/org/app:v1.2.3", ImageRef("ghcr.io", "org/app", "v1.2.3")),
    ("127.0.0.1:5000/demo/app", ImageRef("127.0.0.1:5000", "demo/app")),
    ("localhost/app:1", ImageRef("localhost", "app", "1")),
    (f"reg.io/a/b/c@{DIGEST}", ImageRef("reg.io", "a/b/c", None, DIGEST)),
    (f"reg.io/a:1@{DIGEST}", ImageRef("reg.io", "a", "1", DIGEST)),
    ("reg.io/my_app__x-y.z:latest", ImageRef("reg.io", "my_app__x-y.z", "latest")),
    ("[::1]:5000/app:1", ImageRef("[::1]:5000", "app", "1")),
])
def test_valid_references(text: str, expected: ImageRef) -> None:
    ref = imageref.parse(text)
    assert ref == expected
    assert imageref.parse(str(ref)) == ref


def test_by_digest_needs_a_digest() -> None:
    ref = imageref.parse("reg.io/app:1")
    with pytest.raises(ValueError, match="resolve it first"):
        _ = ref.by_digest
    assert ref.with_digest(DIGEST).by_digest == f"reg.io/app@{DIGEST}"
    with pytest.raises(UsageError):
        ref.with_digest("sha256:short")


def test_secret_hides_itself_and_masks_logs() -> None:
    s = secrets.Secret("hunter2-very-secret", "pw")
    assert "hunter2" not in f"{s} {s!r} {s:>30}"
    assert s.reveal() == "hunter2-very-secret"
    assert secrets.mask("x hunter2-very-secret y") == "x *** y"
    stream = io.StringIO()
    setup(0, stream)
    get_logger("t").info("password is %s", "hunter2-very-secret")
    assert "hunter2" not in stream.getvalue()
    assert "password is ***" in stream.getvalue()
    logging.getLogger("sc_ci").handlers.clear()


def test_multiline_secret_masks_each_line() -> None:
    pem = "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\nEEEEFFFFGGGG\n-----END KEY-----\n"
    secrets.register(pem)
    assert "AAAABBBB" not in secrets.mask("leaked line: AAAABBBBCCCCDDDD")


def test_listener_sees_past_and_future_secrets() -> None:
    secrets.register("first-secret-value")
    seen: list[str] = []
    secrets.on_new_secret(seen.append)
    secrets.register("second-secret-value")
    assert seen == ["first-secret-value", "second-secret-value"]


def test_runner_masks_and_keeps_env_explicit() -> None:
    secrets.register("s3cr3t-value")
    result = runner.run(["sh", "-c", 'echo "$ONLY" ; echo "s3cr3t-value on stderr" >&2; echo "${HOME_X:-unset}"'],
                        env={"PATH": "/usr/bin:/bin", "ONLY": "given"})
    assert result.stdout.split() == ["given", "unset"]
    assert result.stderr.strip() == "*** on stderr"
    assert result.ok


def test_runner_closes_stdin_and_times_out() -> None:
    started = time.monotonic()
    done = runner.run(["cat"], env=runner.base_env())  # would hang forever with an inherited TTY
    assert done.ok
    with pytest.raises(Exception, match=r"timed out after 0\.3s"):
        runner.run(["sleep", "10"], env=runner.base_env(), timeout=0.3)
    assert time.monotonic() - started < 5


def test_runner_missing_binary_is_a_tool_error() -> None:
    with pytest.raises(Exception, match="not found") as info:
        runner.run(["/nonexistent/cosign"], env={})
    assert "make tools" in info.value.fix  # type: ignore[attr-defined]


def test_base_env_keeps_loopback_off_proxies() -> None:
    env = runner.base_env({"PATH": "/bin", "NO_PROXY": "corp.example", "SECRET_TOKEN": "x"})
    assert env["NO_PROXY"] == "corp.example,127.0.0.1,localhost"
    assert "SECRET_TOKEN" not in env


def test_retry_only_transient() -> None:
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise retry.TransientError("503")
        return "ok"

    assert retry.call(flaky, initial=0.001, max_wait=0.01) == "ok"
    assert calls["n"] == 3

    def denied() -> None:
        calls["n"] += 1
        raise VerificationFailed("bad signature")

    calls["n"] = 0
    with pytest.raises(VerificationFailed):
        retry.call(denied, initial=0.001)
    assert calls["n"] == 1


@pytest.mark.parametrize(("text", "transient"), [
    ("dial tcp 127.0.0.1:5000: connect: connection refused", True),
    ("GET https://reg/v2/: 503 Service Unavailable", True),
    ("TOOMANYREQUESTS: too many requests", True),
    ("net/http: TLS handshake timeout", True),
    ("no signatures found", False),
    ("MANIFEST_UNKNOWN: manifest unknown", False),
])
def test_transient_text(text: str, transient: bool) -> None:
    assert retry.is_transient_text(text) is transient


@pytest.mark.parametrize(("host", "plain"), [
    ("127.0.0.1:5000", True), ("localhost:5000", True), ("[::1]:5000", True), ("127.9.9.9", True),
    ("registry.example.com", False), ("10.0.0.1:5000", False),
])
def test_plain_http_only_for_loopback(host: str, plain: bool) -> None:
    assert is_plain_http(host) is plain


@responses.activate
def test_registry_resolve_retries_5xx_then_uses_header_digest() -> None:
    url = "https://reg.example.com/v2/team/app/manifests/1.0"
    body = b'{"schemaVersion":2}'
    import hashlib
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    responses.get(url, status=503)
    responses.get(url, body=body, headers={"Docker-Content-Digest": digest,
                                           "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    ref = RegistryClient().resolve(imageref.parse("reg.example.com/team/app:1.0"))
    assert ref.digest == digest
    assert len(responses.calls) == 2


@responses.activate
def test_registry_bearer_challenge_with_credentials() -> None:
    url = "https://reg.example.com/v2/team/app/manifests/1.0"
    body = b"{}"
    import hashlib
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    responses.get(url, status=401, headers={
        "WWW-Authenticate": 'Bearer realm="https://auth.example.com/token",service="reg.example.com"'})
    responses.get("https://auth.example.com/token", json={"token": "tok-123"})
    responses.get(url, body=body, headers={"Docker-Content-Digest": digest})
    creds = {"reg.example.com": dockerconfig.Credential("bob", secrets.Secret("pw-for-bob"))}
    RegistryClient(credentials=creds, token_realm_hosts=frozenset({"auth.example.com"})).resolve(
        imageref.parse("reg.example.com/team/app:1.0"))  # a realm on another host: trusted explicitly
    token_call = responses.calls[1].request
    assert "scope=repository%3Ateam%2Fapp%3Apull" in (token_call.url or "")
    assert token_call.headers["Authorization"].startswith("Basic ")
    assert responses.calls[2].request.headers["Authorization"] == "Bearer tok-123"


@responses.activate
def test_registry_404_and_denied_explain_themselves() -> None:
    responses.get("https://reg.example.com/v2/a/manifests/1", status=404)
    responses.get("https://reg.example.com/v2/b/manifests/1", status=403)
    with pytest.raises(RegistryError, match="no such image"):
        RegistryClient().resolve(imageref.parse("reg.example.com/a:1"))
    with pytest.raises(RegistryError, match="access denied") as info:
        RegistryClient().resolve(imageref.parse("reg.example.com/b:1"))
    assert "SC_CI_REGISTRY_USERNAME" in info.value.fix


@responses.activate
def test_registry_digest_mismatch_is_refused() -> None:
    responses.get("https://reg.example.com/v2/a/manifests/1", body=b"{}",
                  headers={"Docker-Content-Digest": "sha256:" + "f" * 64})
    with pytest.raises(RegistryError, match="digest mismatch"):
        RegistryClient().resolve(imageref.parse("reg.example.com/a:1"))


def test_registry_unreachable_is_retried_then_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "BUDGET", 2)  # retried on a time budget (60 s by default)
    client = RegistryClient()
    with pytest.raises(RegistryError, match="cannot reach registry"):
        client.resolve(imageref.parse("127.0.0.1:9/none/app:1"))


def test_docker_config_read_and_private_copy(tmp_path: Path) -> None:
    import base64
    import json
    import stat
    cfg = tmp_path / "config.json"
    auth = base64.b64encode(b"alice:pw-alice").decode()
    cfg.write_text(json.dumps({"auths": {"https://reg.example.com/v1/": {"auth": auth}}, "credsStore": "x"}))
    env = {"DOCKER_CONFIG": str(tmp_path)}
    creds = dockerconfig.read_credentials(env)
    assert creds["reg.example.com"].username == "alice"
    extra = {"other.io": dockerconfig.Credential("ci", secrets.Secret("pw-ci-123"))}
    with dockerconfig.private_docker_config(extra, env) as directory:
        assert directory is not None
        written = Path(directory) / "config.json"
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        data = json.loads(written.read_text())
        assert set(data["auths"]) == {"https://reg.example.com/v1/", "other.io"}
        assert data["credsStore"] == "x"
    assert not Path(directory).exists()
    with dockerconfig.private_docker_config({}, env) as none:
        assert none is None


def _results() -> list[StepResult]:
    image = f"reg.io/app@{DIGEST}"
    return [StepResult("sign", image, Outcome.OK, "signed with cosign.key", 0.5),
            StepResult("verify", image, Outcome.FAILED, "no signature 100% | here", 0.1,
                       VerificationFailed("no sig", why="line1\nline2", fix="sign it")),
            StepResult("verify", image, Outcome.OK, "verified", 0.1, details={"command": "cosign verify x"})]


def test_console_render_and_report() -> None:
    out, err = io.StringIO(), io.StringIO()
    console.report(_results(), out, err)
    text = out.getvalue()
    assert "ok   sign    reg.io/app@sha256:0123456789ab…  signed with cosign.key (0.5s)" in text
    assert "FAIL verify" in text
    assert "cosign verify x" in text
    assert "error: no sig" in err.getvalue()


def test_github_outputs_escaping_and_summary(tmp_path: Path) -> None:
    secrets.register("token-abcdef")
    text = github.format_outputs({"single": "a=b", "multi": "l1\nl2 token-abcdef"})
    assert text.startswith("single=a=b\nmulti<<ghadelimiter_")
    assert "token-abcdef" not in text
    delim = text.split("multi<<", 1)[1].split("\n", 1)[0]
    assert text.rstrip("\n").endswith(delim)
    assert github.escape_data("50%\r\nx") == "50%25%0D%0Ax"
    assert github.escape_property("a:b,c") == "a%3Ab%2Cc"
    notes = github.error_annotations(_results())
    assert notes == ["::error title=sc-ci verify failed::error: no sig%0A  why: line1%0A       line2%0A  fix: sign it"]
    md = github.summary_markdown("t", _results())
    assert "| ❌ | verify |" in md
    assert "100% / here" in md
    summary = tmp_path / "summary.md"
    github.write_summary(str(summary), "x" * (2 * 1024 * 1024))
    assert summary.stat().st_size <= github.SUMMARY_LIMIT


def test_github_masking_is_emitted_first() -> None:
    out = io.StringIO()
    secrets.register("early-secret-1")
    github.install_masking(out)
    secrets.register("line-one-value\nline-two-value")
    lines = out.getvalue().splitlines()
    assert lines[0] == "::add-mask::early-secret-1"
    assert "::add-mask::line-one-value" in lines
    assert "::add-mask::line-two-value" in lines

