"""GitLab CI context (gitlab.com and self-managed) from the job's predefined variables."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from urllib.parse import urlsplit

from sc_ci.ci import oidc
from sc_ci.ci._common import Which, branch_ref, first, get, is_true, join_url, pick, tag_ref
from sc_ci.ci.interface import CIContext, OIDCKind, OIDCSource, Platform

DEFAULT_CONFIG_PATH = ".gitlab-ci.yml"

_EXTRA = (
    ("pipeline_source", "CI_PIPELINE_SOURCE"),
    ("pipeline_iid", "CI_PIPELINE_IID"),
    ("job_id", "CI_JOB_ID"),
    ("job_name", "CI_JOB_NAME"),
    ("job_stage", "CI_JOB_STAGE"),
    ("runner_id", "CI_RUNNER_ID"),
    ("runner_description", "CI_RUNNER_DESCRIPTION"),
    ("runner_arch", "CI_RUNNER_EXECUTABLE_ARCH"),
    ("runner_version", "CI_RUNNER_VERSION"),
    ("job_started_at", "CI_JOB_STARTED_AT"),
    ("project_id", "CI_PROJECT_ID"),
    ("namespace", "CI_PROJECT_NAMESPACE"),
    ("ref_name", "CI_COMMIT_REF_NAME"),
    ("ref_protected", "CI_COMMIT_REF_PROTECTED"),
    ("user_login", "GITLAB_USER_LOGIN"),
    ("merge_request_iid", "CI_MERGE_REQUEST_IID"),
    ("merge_request_source_branch", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
    ("merge_request_target_branch", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
)


def matches(env: Mapping[str, str]) -> bool:
    return is_true(env, "GITLAB_CI")


def pipeline_ref(env: Mapping[str, str]) -> str | None:
    """The ref the way GitLab's ID token names it (`ref_path`, and in `ci_config_ref_uri`).

    Tag pipelines: refs/tags/<tag>. Merge-request pipelines: refs/heads/<source branch> (GitLab's
    Ci::Pipeline#source_ref_path uses the MR's source branch, not refs/merge-requests/...).
    Otherwise refs/heads/<CI_COMMIT_REF_NAME>.
    """
    tag = get(env, "CI_COMMIT_TAG")
    if tag:
        return tag_ref(tag)
    return branch_ref(first(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME"))


def config_ref_uri(env: Mapping[str, str], ref: str | None) -> str | None:
    """The token's `ci_config_ref_uri`: <fqdn>/<project path>//<config path>@<ref>.

    The host part is CI_SERVER_FQDN (host[:port], no scheme; GitLab 16.10+), else the host[:port]
    of CI_SERVER_URL.
    """
    project = get(env, "CI_PROJECT_PATH")
    fqdn = get(env, "CI_SERVER_FQDN") or urlsplit(get(env, "CI_SERVER_URL") or "").netloc
    if not (project and fqdn and ref):
        return None
    config = get(env, "CI_CONFIG_PATH") or DEFAULT_CONFIG_PATH
    return f"{fqdn}/{project}//{config}@{ref}"


def oidc_source(env: Mapping[str, str], issuer: str | None) -> OIDCSource:
    native = None
    if get(env, oidc.ENV_TOKEN_VAR):
        native = OIDCSource(
            kind=OIDCKind.GITLAB_ID_TOKEN,
            available=True,
            detail=f"GitLab ID token in {oidc.ENV_TOKEN_VAR} (job id_tokens)"
            + oidc.public_fulcio_note(issuer),
            env_var=oidc.ENV_TOKEN_VAR,
        )
    return oidc.resolve(
        env, native, missing=f"{oidc.ENV_TOKEN_VAR} is not set (no id_tokens in the job)", fix=oidc.GITLAB_FIX
    )


def detect(env: Mapping[str, str], which: Which = shutil.which) -> CIContext:
    server = (get(env, "CI_SERVER_URL") or "").rstrip("/") or None
    project = get(env, "CI_PROJECT_PATH")
    runner = get(env, "CI_RUNNER_ID")
    ref = pipeline_ref(env)
    config_uri = config_ref_uri(env, ref)

    return CIContext(
        platform=Platform.GITLAB,
        oidc=oidc_source(env, server),
        builder_id=join_url(server, project, "-/runners", runner) if server and project and runner else None,
        server_url=server,
        repository=project,
        repo_url=get(env, "CI_PROJECT_URL"),
        commit=get(env, "CI_COMMIT_SHA"),
        ref=ref,
        # The pipeline definition file, like GitHub's workflow file; the job name is extra["job_name"].
        workflow=get(env, "CI_CONFIG_PATH") or DEFAULT_CONFIG_PATH,
        workflow_ref=config_uri,
        run_id=get(env, "CI_PIPELINE_ID"),
        run_url=get(env, "CI_PIPELINE_URL"),
        job_url=get(env, "CI_JOB_URL"),
        signer_identity=f"https://{config_uri}" if config_uri else None,
        signer_issuer=server,
        workspace=get(env, "CI_PROJECT_DIR"),
        extra=pick(env, _EXTRA),
    )
