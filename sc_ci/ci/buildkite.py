"""Buildkite context from the agent's job environment."""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from sc_ci.ci import oidc
from sc_ci.ci._common import (
    Which,
    branch_ref,
    get,
    git_sha,
    is_true,
    join_url,
    origin,
    pick,
    repo_slug,
    strip_credentials,
    tag_ref,
    web_url,
)
from sc_ci.ci.interface import CIContext, OIDCKind, OIDCSource, Platform

AGENT_TOKEN_VAR = "BUILDKITE_AGENT_ACCESS_TOKEN"  # noqa: S105 (a name, not a value)
ISSUER = "https://agent.buildkite.com"
FULCIO_URL = "https://buildkite.com"  # Fulcio's buildkite-job template: {url}/{org}/{pipeline}

_EXTRA = (
    ("build_number", "BUILDKITE_BUILD_NUMBER"),
    ("job_id", "BUILDKITE_JOB_ID"),
    ("organization_slug", "BUILDKITE_ORGANIZATION_SLUG"),
    ("pipeline_slug", "BUILDKITE_PIPELINE_SLUG"),
    ("source", "BUILDKITE_SOURCE"),
    ("step_key", "BUILDKITE_STEP_KEY"),
    ("retry_count", "BUILDKITE_RETRY_COUNT"),
    ("pull_request_base_branch", "BUILDKITE_PULL_REQUEST_BASE_BRANCH"),
)


def matches(env: Mapping[str, str]) -> bool:
    return is_true(env, "BUILDKITE")


def oidc_source(env: Mapping[str, str], which: Which) -> OIDCSource:
    has_token = get(env, AGENT_TOKEN_VAR) is not None
    has_agent = which("buildkite-agent") is not None
    native = None
    if has_token and has_agent:
        native = OIDCSource(
            kind=OIDCKind.BUILDKITE_AGENT,
            available=True,
            detail="`buildkite-agent oidc request-token --audience sigstore`",
            env_var=AGENT_TOKEN_VAR,
        )
    lacking = [
        name for name, ok in ((AGENT_TOKEN_VAR, has_token), ("buildkite-agent on PATH", has_agent)) if not ok
    ]
    return oidc.resolve(env, native, missing="missing: " + ", ".join(lacking), fix=oidc.BUILDKITE_FIX)


def detect(env: Mapping[str, str], which: Which = shutil.which) -> CIContext:
    build_url = strip_credentials(get(env, "BUILDKITE_BUILD_URL"))
    job_id = get(env, "BUILDKITE_JOB_ID")
    org, pipeline = get(env, "BUILDKITE_ORGANIZATION_SLUG"), get(env, "BUILDKITE_PIPELINE_SLUG")
    repo_url = web_url(get(env, "BUILDKITE_REPO"))
    tag = get(env, "BUILDKITE_TAG")
    pipeline_uri = join_url(FULCIO_URL, org, pipeline) if org and pipeline else None
    extra = pick(env, _EXTRA)
    pull_request = get(env, "BUILDKITE_PULL_REQUEST")
    if pull_request and pull_request != "false":
        extra["pull_request"] = pull_request
    commit = get(env, "BUILDKITE_COMMIT")
    if commit and git_sha(commit) is None:
        extra["commit_ref"] = commit  # e.g. HEAD on a build started from the UI

    return CIContext(
        platform=Platform.BUILDKITE,
        oidc=oidc_source(env, which),
        builder_id=pipeline_uri,
        server_url=origin(build_url),
        repository=repo_slug(repo_url),
        repo_url=repo_url,
        commit=git_sha(commit),
        ref=tag_ref(tag) if tag else branch_ref(get(env, "BUILDKITE_BRANCH")),
        workflow=pipeline,
        run_id=get(env, "BUILDKITE_BUILD_ID"),
        run_url=build_url,
        job_url=f"{build_url}#{job_id}" if build_url and job_id else None,
        signer_identity=pipeline_uri,
        signer_issuer=ISSUER,
        workspace=get(env, "BUILDKITE_BUILD_CHECKOUT_PATH"),
        extra=extra,
    )
