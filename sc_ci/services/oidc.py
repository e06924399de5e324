"""Keyless signing's OIDC identity token (audience `sigstore`): one function per source, `obtain()` picks one."""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from sc_ci import retry, runner
from sc_ci.ci import oidc as fixes
from sc_ci.ci._common import get
from sc_ci.ci.buildkite import AGENT_TOKEN_VAR
from sc_ci.ci.github import REQUEST_TOKEN_VAR, REQUEST_URL_VAR
from sc_ci.ci.interface import CIContext, OIDCKind
from sc_ci.errors import ScError
from sc_ci.log import get_logger
from sc_ci.runner import Completed
from sc_ci.secrets import Secret
from sc_ci.services.http import session

log = get_logger("oidc")

AUDIENCE = "sigstore"
TOKEN_NAME = "OIDC identity token"  # noqa: S105 (the Secret's label, not a value)
CLOCK_SKEW = 60  # seconds a token's iat/nbf may lie in the future (the issuer's clock runs ahead of ours)
MIN_LIFETIME = 30  # a token expiring within this many seconds is refused: Fulcio would reject it mid-run
HELPER_TIMEOUT = 60.0

GITLAB_AUDIENCE_FIX = """\
Give the job's ID token the audience `sigstore`:

id_tokens:
  SIGSTORE_ID_TOKEN:
    aud: sigstore"""

GENERIC_AUDIENCE_FIX = """\
Mint the token for the audience `sigstore`: GitHub Actions `&audience=sigstore` (sc-ci does this itself),
GitLab `id_tokens: {SIGSTORE_ID_TOKEN: {aud: sigstore}}`, Buildkite
`buildkite-agent oidc request-token --audience sigstore`, CircleCI
`circleci run oidc get --claims '{"aud":"sigstore"}'` (CIRCLE_OIDC_TOKEN itself has the wrong audience)."""


_DESCRIPTIONS = {
    OIDCKind.GITHUB_ACTIONS: "GitHub Actions OIDC token",
    OIDCKind.GITLAB_ID_TOKEN: "GitLab ID token",
    OIDCKind.BUILDKITE_AGENT: "Buildkite agent OIDC token",
    OIDCKind.CIRCLECI_CLI: "CircleCI OIDC token",
    OIDCKind.ENV_TOKEN: f"OIDC token from {fixes.ENV_TOKEN_VAR}",
    OIDCKind.TOKEN_FILE: f"OIDC token file ({fixes.TOKEN_FILE_VAR})",
}


def describe(kind: OIDCKind) -> str:
    """A short label for where the token came from (for summaries; no secret)."""
    return _DESCRIPTIONS.get(kind, "OIDC token")


def obtain(ci: CIContext, env: Mapping[str, str], *, now: float | None = None) -> Secret:
    """The token from the CI's source, masked from the moment it exists, checked (audience `sigstore`,
    not expired, not from the future). Fails before any signing tool runs when there is no source."""
    source = ci.oidc
    if not source.available:
        raise ScError("keyless signing needs an OIDC identity token, and none is available",
                      why=source.detail, fix=source.fix)
    log.debug("OIDC token from %s", source.detail)
    if source.kind is OIDCKind.TOKEN_FILE:
        token = file_token(Path(source.path or env.get(fixes.TOKEN_FILE_VAR, "")))
    else:
        fetch = _FETCHERS.get(source.kind)
        if fetch is None:
            raise ScError(f"no way to get an OIDC token from {source.kind}", fix=source.fix)
        token = fetch(env)
    check(token, describe(source.kind), kind=source.kind, now=now)
    return token


# ---- sources ----------------------------------------------------------------------------------------------


def github(env: Mapping[str, str]) -> Secret:
    """GitHub Actions: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=sigstore with the request bearer → `value`."""
    url, bearer = get(env, REQUEST_URL_VAR), get(env, REQUEST_TOKEN_VAR)
    if url is None or bearer is None:
        raise ScError("keyless signing needs an OIDC identity token, and none is available",
                      why=f"{REQUEST_URL_VAR} / {REQUEST_TOKEN_VAR} are not set (no id-token: write permission)",
                      fix=fixes.GITHUB_FIX)
    request_token = Secret(bearer, REQUEST_TOKEN_VAR)
    target = with_audience(url)
    headers = {"Authorization": f"bearer {request_token.reveal()}", "Accept": "application/json; api-version=2.0"}
    with session() as http:

        def fetch() -> requests.Response:
            response = http.get(target, headers=headers)
            if retry.is_transient_status(response.status_code):
                response.raise_for_status()  # 408/429/5xx: retried with backoff
            return response

        try:
            response = retry.call(fetch)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            raise ScError(f"GitHub's OIDC token service kept failing (HTTP {status})", why=str(exc),
                          fix="A GitHub outage: re-run the job (see https://www.githubstatus.com).") from exc
        except requests.RequestException as exc:
            raise ScError("could not reach GitHub's OIDC token service", why=str(exc),
                          fix=f"Check the runner's network and proxy settings for {urlsplit(url).netloc}.") from exc
    if response.status_code in (401, 403):
        raise ScError(f"GitHub refused the OIDC token request (HTTP {response.status_code})",
                      why="the job's request token was not accepted: the job lacks `id-token: write`, or the "
                          "request token expired (it lives only as long as the job)",
                      fix=fixes.GITHUB_FIX)
    if not response.ok:
        raise ScError(f"GitHub's OIDC token request failed (HTTP {response.status_code})",
                      why=response.text[:300], fix=fixes.GITHUB_FIX)
    try:
        body = response.json()
    except ValueError as exc:
        raise ScError("GitHub's OIDC token response is not JSON", why=response.text[:200],
                      fix="Re-run the job; if it persists, report it to GitHub support.") from exc
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip():
        shape = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise ScError("GitHub's OIDC token response has no `value`", why=f"response fields: {shape}",
                      fix="Re-run the job; if it persists, report it to GitHub support.")
    return Secret(value.strip(), TOKEN_NAME)


def gitlab(env: Mapping[str, str]) -> Secret:
    """GitLab CI: the job's `id_tokens` entry SIGSTORE_ID_TOKEN (audience set in .gitlab-ci.yml)."""
    return _env_token(env, fixes.GITLAB_FIX)


def environment(env: Mapping[str, str]) -> Secret:
    """Any platform: SIGSTORE_ID_TOKEN, set by the user."""
    return _env_token(env, fixes.LOCAL_FIX)


def buildkite(env: Mapping[str, str]) -> Secret:
    """Buildkite: `buildkite-agent oidc request-token --audience sigstore` (needs the agent's access token)."""
    if get(env, AGENT_TOKEN_VAR):
        Secret(env[AGENT_TOKEN_VAR], AGENT_TOKEN_VAR)  # mask the agent's credential too
    argv = ["oidc", "request-token", "--audience", AUDIENCE]
    return _helper("buildkite-agent", argv, env, ("BUILDKITE",), fixes.BUILDKITE_FIX)


def circleci(env: Mapping[str, str]) -> Secret:
    """CircleCI: `circleci run oidc get --claims '{"aud":"sigstore"}'` (the built-in token has another audience)."""
    for name in ("CIRCLE_OIDC_TOKEN", "CIRCLE_OIDC_TOKEN_V2"):
        if get(env, name):
            Secret(env[name], name)
    argv = ["run", "oidc", "get", "--claims", json.dumps({"aud": AUDIENCE}, separators=(",", ":"))]
    return _helper("circleci", argv, env, ("CIRCLE",), fixes.CIRCLECI_FIX)


def file_token(path: Path) -> Secret:
    """A token in a file (SC_CI_OIDC_TOKEN_FILE); surrounding whitespace is dropped."""
    try:
        text = path.expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ScError(f"cannot read the OIDC token file {path}", why=str(exc),
                      fix=f"Point {fixes.TOKEN_FILE_VAR} at a readable file holding one token.") from exc
    if not text:
        raise ScError(f"the OIDC token file {path} is empty",
                      fix=f"Write the token (audience `sigstore`) to it before sc-ci runs, or unset "
                          f"{fixes.TOKEN_FILE_VAR}.")
    return Secret(text, TOKEN_NAME)


def _env_token(env: Mapping[str, str], fix: str) -> Secret:
    value = get(env, fixes.ENV_TOKEN_VAR)
    if value is None:
        raise ScError("keyless signing needs an OIDC identity token, and none is available",
                      why=f"{fixes.ENV_TOKEN_VAR} is not set", fix=fix)
    return Secret(value, TOKEN_NAME)


def _helper(name: str, args: list[str], env: Mapping[str, str], prefixes: tuple[str, ...], fix: str) -> Secret:
    """Run a CI's token CLI with the base environment plus its own variables; its stdout is the token."""
    binary = shutil.which(name, path=env.get("PATH", os.defpath))
    if binary is None:
        raise ScError(f"{name} is not on PATH, so no OIDC token can be minted", fix=fix)
    child_env = {**runner.base_env(env), **{k: v for k, v in env.items() if k.startswith(prefixes)}}

    def attempt() -> Completed:
        result = runner.run([binary, *args], env=child_env, timeout=HELPER_TIMEOUT)
        if not result.ok and retry.is_transient_text(result.stderr):
            raise retry.TransientError(result.tail(3))
        return result

    try:
        result = retry.call(attempt)
    except retry.TransientError as exc:
        raise ScError(f"{name} could not mint an OIDC token", why=str(exc), fix=fix) from exc
    token = result.stdout.strip()
    if not result.ok or not token:
        raise ScError(f"{name} could not mint an OIDC token (exit {result.returncode})",
                      why=result.tail(5) or "it printed no token", fix=fix)
    return Secret(token, TOKEN_NAME)


_FETCHERS: dict[OIDCKind, Callable[[Mapping[str, str]], Secret]] = {
    OIDCKind.GITHUB_ACTIONS: github,
    OIDCKind.GITLAB_ID_TOKEN: gitlab,
    OIDCKind.BUILDKITE_AGENT: buildkite,
    OIDCKind.CIRCLECI_CLI: circleci,
    OIDCKind.ENV_TOKEN: environment,
}


# ---- checks -----------------------------------------------------------------------------------------------


def with_audience(url: str, audience: str = AUDIENCE) -> str:
    """The request URL with `audience=…` (replacing any), keeping GitHub's `api-version` query."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "audience"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("audience", audience)])))


def claims(token: Secret) -> dict[str, object]:
    """The token's payload, decoded without verifying the signature (Fulcio verifies it). {} if not a JWT."""
    parts = token.reveal().split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return payload if isinstance(payload, dict) else {}


def check(token: Secret, source: str, *, kind: OIDCKind = OIDCKind.ENV_TOKEN, now: float | None = None) -> None:
    """Refuse, before Fulcio does (with its one generic message), a token that cannot work: not a JWT,
    audience other than `sigstore`, expired or expiring, or issued in the future (clock skew). `source`
    names the token in messages ("GitHub Actions OIDC token")."""
    payload = claims(token)
    if not payload:
        raise ScError(f"the {source} is not a JWT",
                      why="expected three base64url parts separated by dots, the middle one JSON",
                      fix="Give the raw ID token (no `Bearer ` prefix, no quotes, no JSON wrapper).")
    audience = payload.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if AUDIENCE not in audiences:
        fix = GITLAB_AUDIENCE_FIX if kind is OIDCKind.GITLAB_ID_TOKEN else GENERIC_AUDIENCE_FIX
        raise ScError(f"the {source} has audience {audience!r}, not `{AUDIENCE}`",
                      why="Fulcio only issues certificates for tokens minted for the `sigstore` audience", fix=fix)
    current = time.time() if now is None else now
    expires = _number(payload.get("exp"))
    if expires is not None and expires - current < MIN_LIFETIME:
        raise ScError(f"the {source} {'expired' if expires <= current else 'expires'} at "
                      f"{_iso(expires)} (now {_iso(current)})",
                      why="ID tokens live minutes: this one was minted too long ago, or this machine's clock runs "
                          "ahead",
                      fix="Fetch the token right before sc-ci runs (sc-ci fetches it once per run and shares it "
                          "across images, so a run must sign within the token's lifetime); sync the clock (NTP).")
    for field in ("nbf", "iat"):
        start = _number(payload.get(field))
        if start is not None and start - current > CLOCK_SKEW:
            raise ScError(f"the {source} is not valid until {_iso(start)} (now {_iso(current)})",
                          why=f"its `{field}` is {int(start - current)}s in the future: this machine's clock is "
                              "behind the issuer's",
                          fix="Sync this machine's clock (NTP); Fulcio rejects tokens from the future too.")


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
