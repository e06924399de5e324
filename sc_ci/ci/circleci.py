"""CircleCI context from the job's built-in environment variables."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping

from sc_ci.ci import oidc
from sc_ci.ci._common import (
    Which,
    branch_ref,
    get,
    is_true,
    origin,
    pick,
    strip_credentials,
    tag_ref,
    web_url,
)
from sc_ci.ci.interface import CIContext, OIDCKind, OIDCSource, Platform

OIDC_TOKEN_VARS = ("CIRCLE_OIDC_TOKEN_V2", "CIRCLE_OIDC_TOKEN")
ISSUER_PREFIX = "https://oidc.circleci.com/org/"

_EXTRA = (
    ("build_num", "CIRCLE_BUILD_NUM"),
    ("job", "CIRCLE_JOB"),
    ("workflow_id", "CIRCLE_WORKFLOW_ID"),
    ("workflow_job_id", "CIRCLE_WORKFLOW_JOB_ID"),
    ("pipeline_id", "CIRCLE_PIPELINE_ID"),
    ("project_id", "CIRCLE_PROJECT_ID"),
    ("organization_id", "CIRCLE_ORGANIZATION_ID"),
    ("actor", "CIRCLE_USERNAME"),
    ("pr_number", "CIRCLE_PR_NUMBER"),
    ("pull_request", "CIRCLE_PULL_REQUEST"),
)


def matches(env: Mapping[str, str]) -> bool:
    return is_true(env, "CIRCLECI")


def oidc_source(env: Mapping[str, str], which: Which) -> OIDCSource:
    native = None
    enabled = next((name for name in OIDC_TOKEN_VARS if get(env, name)), None)
    if enabled and which("circleci"):
        native = OIDCSource(
            kind=OIDCKind.CIRCLECI_CLI,
            available=True,
            detail=f'`circleci run oidc get --claims \'{{"aud":"sigstore"}}\'` (OIDC on: {enabled} is set)',
            env_var=enabled,
        )
    if enabled is None:
        missing = "no CIRCLE_OIDC_TOKEN[_V2] in the job (OIDC tokens not enabled)"
    else:
        missing = f"{enabled} has the wrong audience and the circleci CLI is not on PATH to mint one"
    return oidc.resolve(env, native, missing=missing, fix=oidc.CIRCLECI_FIX)


def project_url(build_url: str | None, build_num: str | None) -> str | None:
    """The project's page: CIRCLE_BUILD_URL without its trailing job number."""
    if not build_url:
        return None
    trimmed = build_url.rstrip("/")
    if build_num:
        trimmed = re.sub(rf"/{re.escape(build_num)}$", "", trimmed)
    return trimmed


def detect(env: Mapping[str, str], which: Which = shutil.which) -> CIContext:
    owner, name = get(env, "CIRCLE_PROJECT_USERNAME"), get(env, "CIRCLE_PROJECT_REPONAME")
    build_url = strip_credentials(get(env, "CIRCLE_BUILD_URL"))
    tag = get(env, "CIRCLE_TAG")
    org_id = get(env, "CIRCLE_ORGANIZATION_ID")

    return CIContext(
        platform=Platform.CIRCLECI,
        oidc=oidc_source(env, which),
        builder_id=project_url(build_url, get(env, "CIRCLE_BUILD_NUM")),
        server_url=origin(build_url),
        repository=f"{owner}/{name}" if owner and name else None,
        repo_url=web_url(get(env, "CIRCLE_REPOSITORY_URL")),
        commit=get(env, "CIRCLE_SHA1"),
        ref=tag_ref(tag) if tag else branch_ref(get(env, "CIRCLE_BRANCH")),
        # CircleCI exposes no workflow name, only its id; the job name is the closest label.
        workflow=get(env, "CIRCLE_JOB"),
        run_id=get(env, "CIRCLE_WORKFLOW_ID"),
        run_url=build_url,
        job_url=build_url,
        # Fulcio's CircleCI identity names the pipeline definition id, which no env var carries.
        signer_identity=None,
        signer_issuer=f"{ISSUER_PREFIX}{org_id}" if org_id else None,
        workspace=get(env, "CIRCLE_WORKING_DIRECTORY"),
        extra=pick(env, _EXTRA),
    )
