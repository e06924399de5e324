"""GitHub Actions context (github.com, GHE.com and GitHub Enterprise Server) from the runner's env."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from urllib.parse import urlsplit

from sc_ci.ci import oidc
from sc_ci.ci._common import Which, get, is_true, join_url, pick
from sc_ci.ci.interface import CIContext, OIDCKind, OIDCSource, Platform

DEFAULT_SERVER = "https://github.com"
DOTCOM_ISSUER = "https://token.actions.githubusercontent.com"
REQUEST_URL_VAR = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN_VAR = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 (a name, not a value)

_EXTRA = (
    ("event_name", "GITHUB_EVENT_NAME"),
    ("repository_id", "GITHUB_REPOSITORY_ID"),
    ("repository_owner", "GITHUB_REPOSITORY_OWNER"),
    ("repository_owner_id", "GITHUB_REPOSITORY_OWNER_ID"),
    ("runner_environment", "RUNNER_ENVIRONMENT"),
    ("job", "GITHUB_JOB"),
    ("actor", "GITHUB_ACTOR"),
    ("actor_id", "GITHUB_ACTOR_ID"),
    ("run_number", "GITHUB_RUN_NUMBER"),
    ("ref_name", "GITHUB_REF_NAME"),
    ("ref_type", "GITHUB_REF_TYPE"),
    ("workflow_sha", "GITHUB_WORKFLOW_SHA"),
    ("head_ref", "GITHUB_HEAD_REF"),
    ("base_ref", "GITHUB_BASE_REF"),
)


def matches(env: Mapping[str, str]) -> bool:
    return is_true(env, "GITHUB_ACTIONS")


def token_issuer(server_url: str) -> str:
    """The `iss` of Actions OIDC tokens for this server.

    github.com: token.actions.githubusercontent.com; GHE.com tenants: token.actions.<tenant>.ghe.com;
    GitHub Enterprise Server: <server>/_services/token. An enterprise that turned on the custom
    issuer (`include_enterprise_slug`) gets `/<slug>` appended, which the env cannot tell us.
    """
    host = (urlsplit(server_url).hostname or "").lower()
    if host == "github.com":
        return DOTCOM_ISSUER
    if host.endswith(".ghe.com"):
        return f"https://token.actions.{host}"
    return join_url(server_url, "_services/token")


def oidc_source(env: Mapping[str, str], issuer: str) -> OIDCSource:
    native = None
    if get(env, REQUEST_URL_VAR) and get(env, REQUEST_TOKEN_VAR):
        native = OIDCSource(
            kind=OIDCKind.GITHUB_ACTIONS,
            available=True,
            detail=f"GitHub Actions token exchange ({REQUEST_URL_VAR} + {REQUEST_TOKEN_VAR})"
            + oidc.public_fulcio_note(issuer),
            env_var=REQUEST_URL_VAR,
        )
    return oidc.resolve(
        env,
        native,
        missing=f"{REQUEST_URL_VAR} / {REQUEST_TOKEN_VAR} are not set (no id-token: write permission)",
        fix=oidc.GITHUB_FIX,
    )


def detect(env: Mapping[str, str], which: Which = shutil.which) -> CIContext:
    server = (get(env, "GITHUB_SERVER_URL") or DEFAULT_SERVER).rstrip("/")
    repository = get(env, "GITHUB_REPOSITORY")
    workflow_ref = get(env, "GITHUB_WORKFLOW_REF")
    run_id = get(env, "GITHUB_RUN_ID")
    attempt = get(env, "GITHUB_RUN_ATTEMPT")

    run_url = None
    if repository and run_id:
        run_url = join_url(server, repository, "actions/runs", run_id)
        if attempt:
            run_url = join_url(run_url, "attempts", attempt)
    # The token's job_workflow_ref differs from workflow_ref only inside a reusable workflow;
    # the env has no job_workflow_ref, so the caller's workflow_ref is the best stand-in.
    identity = join_url(server, workflow_ref) if workflow_ref else None
    issuer = token_issuer(server)

    return CIContext(
        platform=Platform.GITHUB,
        oidc=oidc_source(env, issuer),
        builder_id=identity,
        server_url=server,
        repository=repository,
        repo_url=join_url(server, repository) if repository else None,
        commit=get(env, "GITHUB_SHA"),
        ref=get(env, "GITHUB_REF"),
        workflow=get(env, "GITHUB_WORKFLOW"),
        workflow_ref=workflow_ref,
        run_id=run_id,
        run_attempt=attempt,
        run_url=run_url,
        signer_identity=identity,
        signer_issuer=issuer,
        output_file=get(env, "GITHUB_OUTPUT"),
        summary_file=get(env, "GITHUB_STEP_SUMMARY"),
        workspace=get(env, "GITHUB_WORKSPACE"),
        extra=pick(env, _EXTRA),
    )
