"""Where keyless signing's token comes from: GitHub's token exchange against a local endpoint that behaves like
GitHub's, the Buildkite and CircleCI CLIs (fakes: they are token endpoints), GitLab / env / file tokens, and
the checks that refuse a token before Fulcio would; with no source, sc-ci stops before cosign with the fix."""

from __future__ import annotations

import functools
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sc_ci import ci, retry, secrets
from sc_ci.errors import ScError
from sc_ci.services import oidc
from testbed.oidc_issuer import OIDCIssuer

RunScCi = Callable[..., subprocess.CompletedProcess[str]]
CLAIMS = {"job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main", "repository": "acme/app"}


@pytest.fixture(autouse=True)
def _clean_masker() -> Iterator[None]:
    secrets.reset_for_tests()
    yield
    secrets.reset_for_tests()


@pytest.fixture
def issuer() -> Iterator[OIDCIssuer]:
    with OIDCIssuer(path="/_services/token") as running:
        yield running


def _github_env(issuer: OIDCIssuer, request_token: str = "req-token-1234") -> dict[str, str]:  # noqa: S107
    return {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": issuer.origin, "GITHUB_REPOSITORY": "acme/app",
            "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.exchange_url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token,
            "NO_PROXY": "127.0.0.1"}


def _obtain(env: dict[str, str]) -> secrets.Secret:
    return oidc.obtain(ci.detect(env, which=lambda name: None), env)


# ---- GitHub Actions: the ACTIONS_ID_TOKEN_REQUEST_URL exchange ------------------------------------------------


def test_github_exchange_asks_for_audience_sigstore(issuer: OIDCIssuer) -> None:
    exchange = issuer.github_exchange("req-token-1234", CLAIMS)
    token = _obtain(_github_env(issuer))
    assert token.reveal() == exchange.minted[0]
    assert exchange.requests == [{"method": "GET", "audience": "sigstore", "api-version": "2.0", "authorized": "True"}]
    assert oidc.claims(token)["aud"] == "sigstore"
    assert oidc.claims(token)["job_workflow_ref"] == CLAIMS["job_workflow_ref"]
    # masked from the moment it exists, and so is the request bearer
    assert secrets.mask(f"x {token.reveal()} y req-token-1234") == "x *** y ***"


def test_github_5xx_is_retried(issuer: OIDCIssuer) -> None:
    exchange = issuer.github_exchange("req-token-1234", CLAIMS)
    exchange.failures = [503, 502]
    token = _obtain(_github_env(issuer))
    assert len(exchange.requests) == 3
    assert token.reveal() == exchange.minted[0]


def test_github_persistent_5xx_gives_up_with_a_clear_error(issuer: OIDCIssuer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "call", functools.partial(retry.call, initial=0.01, attempts=4))
    exchange = issuer.github_exchange("req-token-1234", CLAIMS)
    exchange.failures = [500] * 10
    with pytest.raises(ScError, match=r"kept failing \(HTTP 500\)"):
        _obtain(_github_env(issuer))
    assert len(exchange.requests) == 4  # retry.call's attempts, then the error


@pytest.mark.parametrize("status", [401, 403])
def test_github_refusal_names_the_permission(issuer: OIDCIssuer, status: int) -> None:
    exchange = issuer.github_exchange("req-token-1234", CLAIMS)
    exchange.failures = [status]
    with pytest.raises(ScError) as refused:
        _obtain(_github_env(issuer))
    assert f"refused the OIDC token request (HTTP {status})" in refused.value.what
    assert "permissions:\n  id-token: write" in refused.value.fix
    assert len(exchange.requests) == 1  # a 4xx is not retried


def test_github_wrong_request_token_is_refused(issuer: OIDCIssuer) -> None:
    issuer.github_exchange("the-right-one", CLAIMS)
    with pytest.raises(ScError, match=r"HTTP 401"):
        _obtain(_github_env(issuer, request_token="the-wrong-one"))


def test_github_without_id_token_permission_has_no_source(issuer: OIDCIssuer) -> None:
    env = _github_env(issuer)
    del env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    with pytest.raises(ScError) as none:
        _obtain(env)
    assert "needs an OIDC identity token, and none is available" in none.value.what
    assert "permissions:\n  id-token: write" in none.value.fix
    assert issuer.served == []


def test_github_body_without_value(issuer: OIDCIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    issuer.github_exchange("req-token-1234", CLAIMS)
    monkeypatch.setattr(issuer, "_github", lambda *args: (200, {"count": 0}))
    with pytest.raises(ScError, match="has no `value`"):
        _obtain(_github_env(issuer))


def test_request_url_query_is_kept_and_audience_replaced() -> None:
    url = "https://pipelines.actions.githubusercontent.com/abc/_apis/idtoken?api-version=2.0&audience=x"
    assert oidc.with_audience(url) == ("https://pipelines.actions.githubusercontent.com/abc/_apis/idtoken"
                                       "?api-version=2.0&audience=sigstore")


# ---- the other sources ----------------------------------------------------------------------------------------


def _fake_cli(directory: Path, name: str, expected_args: str, token: str) -> Path:
    """A fake token CLI: prints the token only when called with exactly `expected_args`; logs its call."""
    script = directory / name
    script.write_text(f'#!/bin/sh\necho "$*|$BUILDKITE_AGENT_ACCESS_TOKEN|$CIRCLE_OIDC_TOKEN" >> "{directory}/calls"\n'
                      f'if [ "$*" = \'{expected_args}\' ]; then printf "%s\\n" "{token}"; exit 0; fi\n'
                      'echo "unexpected arguments: $*" >&2; exit 3\n')
    script.chmod(0o755)
    return directory


def test_buildkite_agent_mints_the_token(issuer: OIDCIssuer, tmp_path: Path) -> None:
    token = issuer.mint({"organization_slug": "acme", "pipeline_slug": "app"})
    bindir = _fake_cli(tmp_path, "buildkite-agent", "oidc request-token --audience sigstore", token)
    env = {"BUILDKITE": "true", "BUILDKITE_AGENT_ACCESS_TOKEN": "agent-secret-77", "PATH": f"{bindir}:/usr/bin:/bin"}
    got = oidc.obtain(ci.detect(env, which=lambda name: str(bindir / name)), env)
    assert got.reveal() == token
    assert (tmp_path / "calls").read_text().startswith("oidc request-token --audience sigstore|agent-secret-77|")
    assert secrets.mask("agent-secret-77") == "***"


def test_circleci_cli_mints_a_token_with_audience_sigstore(issuer: OIDCIssuer, tmp_path: Path) -> None:
    token = issuer.mint({"oidc.circleci.com/project-id": "p1"})
    bindir = _fake_cli(tmp_path, "circleci", 'run oidc get --claims {"aud":"sigstore"}', token)
    builtin = issuer.mint({}, audience="circleci-org-id")  # the built-in token: wrong audience
    env = {"CIRCLECI": "true", "CIRCLE_OIDC_TOKEN": builtin, "PATH": f"{bindir}:/usr/bin:/bin"}
    got = oidc.obtain(ci.detect(env, which=lambda name: str(bindir / name)), env)
    assert got.reveal() == token
    assert secrets.mask(builtin) == "***"


def test_buildkite_agent_failure_is_explained(tmp_path: Path) -> None:
    bindir = _fake_cli(tmp_path, "buildkite-agent", "never", "x")
    env = {"BUILDKITE": "true", "BUILDKITE_AGENT_ACCESS_TOKEN": "agent-secret-77", "PATH": f"{bindir}:/usr/bin:/bin"}
    with pytest.raises(ScError) as failed:
        oidc.obtain(ci.detect(env, which=lambda name: str(bindir / name)), env)
    assert "buildkite-agent could not mint an OIDC token (exit 3)" in failed.value.what
    assert "unexpected arguments" in failed.value.why
    assert "mount-buildkite-agent: true" in failed.value.fix


def test_gitlab_id_token_and_its_audience(issuer: OIDCIssuer) -> None:
    env = {"GITLAB_CI": "true", "CI_SERVER_URL": issuer.origin, "SIGSTORE_ID_TOKEN": issuer.mint({})}
    assert _obtain(env).reveal() == env["SIGSTORE_ID_TOKEN"]
    env["SIGSTORE_ID_TOKEN"] = issuer.mint({}, audience="https://gitlab.com")
    with pytest.raises(ScError) as wrong:
        _obtain(env)
    assert "has audience 'https://gitlab.com', not `sigstore`" in wrong.value.what
    assert "id_tokens:\n  SIGSTORE_ID_TOKEN:\n    aud: sigstore" in wrong.value.fix


def test_token_file_anywhere(issuer: OIDCIssuer, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(issuer.mint({"email": "a@b.c"}) + "\n")
    env = {"SC_CI_OIDC_TOKEN_FILE": str(path)}
    assert _obtain(env).reveal() == path.read_text().strip()
    path.write_text("")
    with pytest.raises(ScError, match="is empty"):
        _obtain(env)


@pytest.mark.parametrize(("offsets", "message"), [
    ({"exp": -5}, "the OIDC token from SIGSTORE_ID_TOKEN expired at"),
    ({"exp": 10}, "the OIDC token from SIGSTORE_ID_TOKEN expires at"),
    ({"iat": 600, "nbf": 600}, "is not valid until"),
])
def test_tokens_that_cannot_work_are_refused(issuer: OIDCIssuer, offsets: dict[str, int], message: str) -> None:
    now = time.time()
    env = {"SIGSTORE_ID_TOKEN": issuer.mint({claim: now + offset for claim, offset in offsets.items()})}
    with pytest.raises(ScError, match=message):
        _obtain(env)


def test_not_a_jwt_is_refused() -> None:
    with pytest.raises(ScError, match="is not a JWT"):
        _obtain({"SIGSTORE_ID_TOKEN": "Bearer something"})


# ---- no source: fail before cosign, with the platform's fix ----------------------------------------------------

PLATFORMS = {
    "github": ({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/app"}, "permissions:\n         id-token: write"),
    "gitlab": ({"GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.com"}, "aud: sigstore"),
    "buildkite": ({"BUILDKITE": "true"}, "buildkite-agent oidc request-token --audience sigstore"),
    "circleci": ({"CIRCLECI": "true"}, "circleci run oidc get"),
    "jenkins": ({"JENKINS_URL": "https://jenkins.example.com/"}, "Jenkins has no public Fulcio issuer"),
}


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_no_token_source_fails_before_cosign(platform: str, run_sc_ci: RunScCi, tmp_path: Path) -> None:
    env, fix = PLATFORMS[platform]
    log = tmp_path / "argv.log"
    fake = tmp_path / "cosign"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\necho \'{json.dumps({"gitVersion": "v3.1.2"})}\'\n')
    fake.chmod(0o755)
    result = run_sc_ci("image", "sign", "-i", "127.0.0.1:1/app@sha256:" + "a" * 64,
                       env={**env, "SC_CI_COSIGN_PATH": str(fake), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "keyless signing needs an OIDC identity token, and none is available" in result.stderr
    assert fix in result.stderr
    assert not log.exists() or not [line for line in log.read_text().splitlines() if line.startswith("sign")]
