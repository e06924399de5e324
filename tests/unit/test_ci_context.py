"""CI detection: realistic environments of each platform in, every CIContext field checked."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import sc_ci.ci
from sc_ci.ci import CIContext, OIDCKind, OIDCSource, Platform, detect
from sc_ci.ci._common import strip_credentials, web_url

SHA = "9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
SHA_TAG = "1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d"

# Planted secrets: none of these values may show up anywhere in a context.
GH_REQUEST_TOKEN = "eyJSECRET-actions-request-token"
SIGSTORE_TOKEN = "eyJSECRET-sigstore-id-token"
GITHUB_TOKEN = "ghs_SECRETinstallationtoken0001"
CI_JOB_TOKEN = "glcbt-SECRET-job-token"
REGISTRY_PASSWORD = "SECRET-registry-password"
BK_AGENT_TOKEN = "bkaj_SECRETagentaccesstoken"
CIRCLE_TOKEN = "eyJSECRET-circle-oidc"
CIRCLE_TOKEN_V2 = "eyJSECRET-circle-oidc-v2"
GIT_PASSWORD = "ghp_SECRETjenkinsbotpassword"


def no_cli(name: str) -> str | None:
    return None


def all_cli(name: str) -> str | None:
    return f"/usr/local/bin/{name}"


def forbid_which(name: str) -> str | None:
    raise AssertionError(f"which({name!r}) must not be called for this platform")


def assert_context(ctx: CIContext, **expected: Any) -> None:
    """Every CIContext field except `oidc` must equal `expected`, or be None ({} for extra)."""
    for f in dataclasses.fields(CIContext):
        if f.name == "oidc":
            continue
        want = expected.pop(f.name, {} if f.name == "extra" else None)
        got = getattr(ctx, f.name)
        assert (dict(got) if f.name == "extra" else got) == want, f.name
    assert not expected, f"unknown fields in the expectation: {sorted(expected)}"


def assert_oidc(src: OIDCSource, kind: OIDCKind, *, env_var: str | None, path: str | None = None) -> None:
    assert src.kind is kind
    assert src.available is (kind is not OIDCKind.NONE)
    assert src.env_var == env_var
    assert src.path == path
    assert src.detail
    if src.available:
        assert src.fix == ""
    else:
        assert src.fix


# --------------------------------------------------------------------------- GitHub Actions

GITHUB_PUSH_MAIN = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_API_URL": "https://api.github.com",
    "GITHUB_GRAPHQL_URL": "https://api.github.com/graphql",
    "GITHUB_REPOSITORY": "acme/app",
    "GITHUB_REPOSITORY_ID": "612345678",
    "GITHUB_REPOSITORY_OWNER": "acme",
    "GITHUB_REPOSITORY_OWNER_ID": "98765432",
    "GITHUB_SHA": SHA,
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
    "GITHUB_REF_TYPE": "branch",
    "GITHUB_REF_PROTECTED": "true",
    "GITHUB_HEAD_REF": "",
    "GITHUB_BASE_REF": "",
    "GITHUB_WORKFLOW": "Release",
    "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/heads/main",
    "GITHUB_WORKFLOW_SHA": SHA,
    "GITHUB_RUN_ID": "9876543210",
    "GITHUB_RUN_NUMBER": "42",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_EVENT_PATH": "/home/runner/work/_temp/_github_workflow/event.json",
    "GITHUB_JOB": "release",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_ACTOR_ID": "583231",
    "GITHUB_TRIGGERING_ACTOR": "octocat",
    "GITHUB_ACTION": "__acme_sc-security-action",
    "GITHUB_ENV": "/home/runner/work/_temp/_runner_file_commands/set_env_0b1d",
    "GITHUB_OUTPUT": "/home/runner/work/_temp/_runner_file_commands/set_output_0b1d",
    "GITHUB_STEP_SUMMARY": "/home/runner/work/_temp/_runner_file_commands/step_summary_0b1d",
    "GITHUB_WORKSPACE": "/home/runner/work/app/app",
    "RUNNER_ENVIRONMENT": "github-hosted",
    "RUNNER_OS": "Linux",
    "RUNNER_ARCH": "X64",
    "RUNNER_TEMP": "/home/runner/work/_temp",
    "ACTIONS_ID_TOKEN_REQUEST_URL": (
        "https://pipelinesghubeus6.actions.githubusercontent.com/abc/00000000-0000-0000-0000-000000000000"
        "/_apis/distributedtask/hubs/Actions/plans/1/jobs/2/idtoken?api-version=2.0"
    ),
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": GH_REQUEST_TOKEN,
    "GITHUB_TOKEN": GITHUB_TOKEN,
}

# A tag push, seen from inside the container action (the runner remaps paths under /github).
GITHUB_TAG_CONTAINER = {
    **GITHUB_PUSH_MAIN,
    "GITHUB_SHA": SHA_TAG,
    "GITHUB_REF": "refs/tags/v1.2.0",
    "GITHUB_REF_NAME": "v1.2.0",
    "GITHUB_REF_TYPE": "tag",
    "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/tags/v1.2.0",
    "GITHUB_WORKFLOW_SHA": SHA_TAG,
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_OUTPUT": "/github/file_commands/set_output_7f3a",
    "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary_7f3a",
    "GITHUB_WORKSPACE": "/github/workspace",
    "RUNNER_ENVIRONMENT": "self-hosted",
}

# A pull request from a fork: no id-token, refs/pull/N/merge, head/base refs set.
GITHUB_FORK_PR = {
    key: value for key, value in GITHUB_PUSH_MAIN.items() if not key.startswith("ACTIONS_ID_TOKEN")
} | {
    "GITHUB_EVENT_NAME": "pull_request",
    "GITHUB_REF": "refs/pull/17/merge",
    "GITHUB_REF_NAME": "17/merge",
    "GITHUB_REF_TYPE": "branch",
    "GITHUB_HEAD_REF": "feature/login",
    "GITHUB_BASE_REF": "main",
    "GITHUB_WORKFLOW": "CI",
    "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/ci.yml@refs/pull/17/merge",
    "GITHUB_ACTOR": "contributor",
    "GITHUB_ACTOR_ID": "111",
}


def test_github_push_to_main() -> None:
    ctx = detect(GITHUB_PUSH_MAIN, forbid_which)
    identity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
    assert_context(
        ctx,
        platform=Platform.GITHUB,
        builder_id=identity,
        server_url="https://github.com",
        repository="acme/app",
        repo_url="https://github.com/acme/app",
        commit=SHA,
        ref="refs/heads/main",
        workflow="Release",
        workflow_ref="acme/app/.github/workflows/release.yml@refs/heads/main",
        run_id="9876543210",
        run_attempt="1",
        run_url="https://github.com/acme/app/actions/runs/9876543210/attempts/1",
        signer_identity=identity,
        signer_issuer="https://token.actions.githubusercontent.com",
        output_file="/home/runner/work/_temp/_runner_file_commands/set_output_0b1d",
        summary_file="/home/runner/work/_temp/_runner_file_commands/step_summary_0b1d",
        workspace="/home/runner/work/app/app",
        extra={
            "event_name": "push",
            "repository_id": "612345678",
            "repository_owner": "acme",
            "repository_owner_id": "98765432",
            "runner_environment": "github-hosted",
            "job": "release",
            "actor": "octocat",
            "actor_id": "583231",
            "run_number": "42",
            "ref_name": "main",
            "ref_type": "branch",
            "workflow_sha": SHA,
        },
    )
    assert_oidc(ctx.oidc, OIDCKind.GITHUB_ACTIONS, env_var="ACTIONS_ID_TOKEN_REQUEST_URL")
    assert "public Fulcio" not in ctx.oidc.detail
    assert ctx.is_ci


def test_github_tag_in_container_action() -> None:
    ctx = detect(GITHUB_TAG_CONTAINER, forbid_which)
    identity = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0"
    assert_context(
        ctx,
        platform=Platform.GITHUB,
        builder_id=identity,
        server_url="https://github.com",
        repository="acme/app",
        repo_url="https://github.com/acme/app",
        commit=SHA_TAG,
        ref="refs/tags/v1.2.0",
        workflow="Release",
        workflow_ref="acme/app/.github/workflows/release.yml@refs/tags/v1.2.0",
        run_id="9876543210",
        run_attempt="2",
        run_url="https://github.com/acme/app/actions/runs/9876543210/attempts/2",
        signer_identity=identity,
        signer_issuer="https://token.actions.githubusercontent.com",
        output_file="/github/file_commands/set_output_7f3a",
        summary_file="/github/file_commands/step_summary_7f3a",
        workspace="/github/workspace",
        extra={
            "event_name": "push",
            "repository_id": "612345678",
            "repository_owner": "acme",
            "repository_owner_id": "98765432",
            "runner_environment": "self-hosted",
            "job": "release",
            "actor": "octocat",
            "actor_id": "583231",
            "run_number": "42",
            "ref_name": "v1.2.0",
            "ref_type": "tag",
            "workflow_sha": SHA_TAG,
        },
    )
    assert_oidc(ctx.oidc, OIDCKind.GITHUB_ACTIONS, env_var="ACTIONS_ID_TOKEN_REQUEST_URL")


def test_github_pull_request_from_fork_has_no_token_and_says_why() -> None:
    ctx = detect(GITHUB_FORK_PR, forbid_which)
    identity = "https://github.com/acme/app/.github/workflows/ci.yml@refs/pull/17/merge"
    assert_context(
        ctx,
        platform=Platform.GITHUB,
        builder_id=identity,
        server_url="https://github.com",
        repository="acme/app",
        repo_url="https://github.com/acme/app",
        commit=SHA,
        ref="refs/pull/17/merge",
        workflow="CI",
        workflow_ref="acme/app/.github/workflows/ci.yml@refs/pull/17/merge",
        run_id="9876543210",
        run_attempt="1",
        run_url="https://github.com/acme/app/actions/runs/9876543210/attempts/1",
        signer_identity=identity,
        signer_issuer="https://token.actions.githubusercontent.com",
        output_file="/home/runner/work/_temp/_runner_file_commands/set_output_0b1d",
        summary_file="/home/runner/work/_temp/_runner_file_commands/step_summary_0b1d",
        workspace="/home/runner/work/app/app",
        extra={
            "event_name": "pull_request",
            "repository_id": "612345678",
            "repository_owner": "acme",
            "repository_owner_id": "98765432",
            "runner_environment": "github-hosted",
            "job": "release",
            "actor": "contributor",
            "actor_id": "111",
            "run_number": "42",
            "ref_name": "17/merge",
            "ref_type": "branch",
            "workflow_sha": SHA,
            "head_ref": "feature/login",
            "base_ref": "main",
        },
    )
    assert_oidc(ctx.oidc, OIDCKind.NONE, env_var=None)
    assert "permissions:\n  id-token: write\n  contents: read" in ctx.oidc.fix
    assert "forks never get a token" in ctx.oidc.fix
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" in ctx.oidc.detail


@pytest.mark.parametrize(
    "missing", ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"], ids=["no-url", "no-token"]
)
def test_github_needs_both_request_variables(missing: str) -> None:
    env = {k: v for k, v in GITHUB_PUSH_MAIN.items() if k != missing}
    assert detect(env).oidc.kind is OIDCKind.NONE


def test_github_without_id_token_falls_back_to_sigstore_id_token() -> None:
    ctx = detect(GITHUB_FORK_PR | {"SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN})
    assert_oidc(ctx.oidc, OIDCKind.ENV_TOKEN, env_var="SIGSTORE_ID_TOKEN")


def test_github_ambient_token_wins_over_sigstore_id_token() -> None:
    ctx = detect(GITHUB_PUSH_MAIN | {"SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN})
    assert ctx.oidc.kind is OIDCKind.GITHUB_ACTIONS


def test_github_without_id_token_falls_back_to_token_file() -> None:
    ctx = detect(GITHUB_FORK_PR | {"SC_CI_OIDC_TOKEN_FILE": "/run/secrets/oidc-token"})
    assert_oidc(
        ctx.oidc, OIDCKind.TOKEN_FILE, env_var="SC_CI_OIDC_TOKEN_FILE", path="/run/secrets/oidc-token"
    )


def test_github_enterprise_server_uses_services_token_issuer() -> None:
    env = GITHUB_PUSH_MAIN | {
        "GITHUB_SERVER_URL": "https://github.example.com",
        "GITHUB_API_URL": "https://github.example.com/api/v3",
    }
    ctx = detect(env)
    assert ctx.server_url == "https://github.example.com"
    assert ctx.signer_issuer == "https://github.example.com/_services/token"
    assert ctx.signer_identity == (
        "https://github.example.com/acme/app/.github/workflows/release.yml@refs/heads/main"
    )
    assert ctx.repo_url == "https://github.example.com/acme/app"
    assert ctx.run_url == "https://github.example.com/acme/app/actions/runs/9876543210/attempts/1"
    assert ctx.oidc.kind is OIDCKind.GITHUB_ACTIONS
    assert "public Fulcio does not trust issuer https://github.example.com/_services/token" in ctx.oidc.detail


def test_ghe_com_tenant_uses_its_own_token_issuer() -> None:
    ctx = detect(GITHUB_PUSH_MAIN | {"GITHUB_SERVER_URL": "https://octocorp.ghe.com/"})
    assert ctx.server_url == "https://octocorp.ghe.com"
    assert ctx.signer_issuer == "https://token.actions.octocorp.ghe.com"
    assert ctx.builder_id == "https://octocorp.ghe.com/acme/app/.github/workflows/release.yml@refs/heads/main"


def test_github_server_url_defaults_to_github_com() -> None:
    env = {k: v for k, v in GITHUB_PUSH_MAIN.items() if k != "GITHUB_SERVER_URL"}
    ctx = detect(env)
    assert ctx.server_url == "https://github.com"
    assert ctx.signer_issuer == "https://token.actions.githubusercontent.com"


def test_github_run_url_without_attempt_omits_attempts() -> None:
    env = {k: v for k, v in GITHUB_PUSH_MAIN.items() if k != "GITHUB_RUN_ATTEMPT"}
    ctx = detect(env)
    assert ctx.run_url == "https://github.com/acme/app/actions/runs/9876543210"
    assert ctx.run_attempt is None


# --------------------------------------------------------------------------- GitLab CI

GITLAB_BRANCH = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_SERVER": "yes",
    "CI_SERVER_URL": "https://gitlab.com",
    "CI_SERVER_HOST": "gitlab.com",
    "CI_SERVER_PORT": "443",
    "CI_SERVER_PROTOCOL": "https",
    "CI_SERVER_FQDN": "gitlab.com",
    "CI_SERVER_NAME": "GitLab",
    "CI_API_V4_URL": "https://gitlab.com/api/v4",
    "CI_PROJECT_ID": "45678901",
    "CI_PROJECT_NAME": "app",
    "CI_PROJECT_NAMESPACE": "acme/platform",
    "CI_PROJECT_PATH": "acme/platform/app",
    "CI_PROJECT_URL": "https://gitlab.com/acme/platform/app",
    "CI_PROJECT_DIR": "/builds/acme/platform/app",
    "CI_DEFAULT_BRANCH": "main",
    "CI_CONFIG_PATH": ".gitlab-ci.yml",
    "CI_COMMIT_SHA": SHA,
    "CI_COMMIT_SHORT_SHA": SHA[:8],
    "CI_COMMIT_REF_NAME": "main",
    "CI_COMMIT_REF_SLUG": "main",
    "CI_COMMIT_BRANCH": "main",
    "CI_COMMIT_REF_PROTECTED": "true",
    "CI_PIPELINE_ID": "1234567890",
    "CI_PIPELINE_IID": "321",
    "CI_PIPELINE_SOURCE": "push",
    "CI_PIPELINE_URL": "https://gitlab.com/acme/platform/app/-/pipelines/1234567890",
    "CI_JOB_ID": "7654321098",
    "CI_JOB_NAME": "sign-image",
    "CI_JOB_STAGE": "release",
    "CI_JOB_URL": "https://gitlab.com/acme/platform/app/-/jobs/7654321098",
    "CI_JOB_TOKEN": CI_JOB_TOKEN,
    "CI_REPOSITORY_URL": f"https://gitlab-ci-token:{CI_JOB_TOKEN}@gitlab.com/acme/platform/app.git",
    "CI_REGISTRY": "registry.gitlab.com",
    "CI_REGISTRY_IMAGE": "registry.gitlab.com/acme/platform/app",
    "CI_REGISTRY_USER": "gitlab-ci-token",
    "CI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
    "CI_RUNNER_ID": "12270859",
    "CI_RUNNER_DESCRIPTION": "3-blue.saas-linux-small-amd64.runners-manager.gitlab.com/default",
    "CI_RUNNER_TAGS": '["saas-linux-small-amd64"]',
    "GITLAB_USER_LOGIN": "jdoe",
    "GITLAB_USER_ID": "1001",
    "SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN,
}

GITLAB_SELF_MANAGED_TAG = {
    key: value for key, value in GITLAB_BRANCH.items() if key not in ("CI_COMMIT_BRANCH", "SIGSTORE_ID_TOKEN")
} | {
    "CI_SERVER_URL": "https://gitlab.example.com:8443",
    "CI_SERVER_HOST": "gitlab.example.com",
    "CI_SERVER_PORT": "8443",
    "CI_SERVER_FQDN": "gitlab.example.com:8443",
    "CI_API_V4_URL": "https://gitlab.example.com:8443/api/v4",
    "CI_PROJECT_ID": "77",
    "CI_PROJECT_NAMESPACE": "platform",
    "CI_PROJECT_PATH": "platform/app",
    "CI_PROJECT_URL": "https://gitlab.example.com:8443/platform/app",
    "CI_PROJECT_DIR": "/builds/platform/app",
    "CI_CONFIG_PATH": "ci/release.gitlab-ci.yml",
    "CI_COMMIT_SHA": SHA_TAG,
    "CI_COMMIT_TAG": "v2.0.0",
    "CI_COMMIT_REF_NAME": "v2.0.0",
    "CI_COMMIT_REF_SLUG": "v2-0-0",
    "CI_PIPELINE_ID": "5150",
    "CI_PIPELINE_IID": "9",
    "CI_PIPELINE_URL": "https://gitlab.example.com:8443/platform/app/-/pipelines/5150",
    "CI_JOB_ID": "90210",
    "CI_JOB_URL": "https://gitlab.example.com:8443/platform/app/-/jobs/90210",
    "CI_REPOSITORY_URL": f"https://gitlab-ci-token:{CI_JOB_TOKEN}@gitlab.example.com:8443/platform/app.git",
    "CI_RUNNER_ID": "3",
    "GITLAB_USER_LOGIN": "release-bot",
}

GITLAB_MERGE_REQUEST = {k: v for k, v in GITLAB_BRANCH.items() if k != "CI_COMMIT_BRANCH"} | {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_COMMIT_REF_NAME": "feature/login",
    "CI_COMMIT_REF_SLUG": "feature-login",
    "CI_COMMIT_REF_PROTECTED": "false",
    "CI_MERGE_REQUEST_IID": "12",
    "CI_MERGE_REQUEST_REF_PATH": "refs/merge-requests/12/head",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/login",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
    "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
}


def test_gitlab_branch_pipeline_on_gitlab_com() -> None:
    ctx = detect(GITLAB_BRANCH, forbid_which)
    assert_context(
        ctx,
        platform=Platform.GITLAB,
        builder_id="https://gitlab.com/acme/platform/app/-/runners/12270859",
        server_url="https://gitlab.com",
        repository="acme/platform/app",
        repo_url="https://gitlab.com/acme/platform/app",
        commit=SHA,
        ref="refs/heads/main",
        workflow=".gitlab-ci.yml",
        workflow_ref="gitlab.com/acme/platform/app//.gitlab-ci.yml@refs/heads/main",
        run_id="1234567890",
        run_url="https://gitlab.com/acme/platform/app/-/pipelines/1234567890",
        job_url="https://gitlab.com/acme/platform/app/-/jobs/7654321098",
        signer_identity="https://gitlab.com/acme/platform/app//.gitlab-ci.yml@refs/heads/main",
        signer_issuer="https://gitlab.com",
        workspace="/builds/acme/platform/app",
        extra={
            "pipeline_source": "push",
            "pipeline_iid": "321",
            "job_id": "7654321098",
            "job_name": "sign-image",
            "job_stage": "release",
            "runner_id": "12270859",
            "runner_description": "3-blue.saas-linux-small-amd64.runners-manager.gitlab.com/default",
            "project_id": "45678901",
            "namespace": "acme/platform",
            "ref_name": "main",
            "ref_protected": "true",
            "user_login": "jdoe",
        },
    )
    assert_oidc(ctx.oidc, OIDCKind.GITLAB_ID_TOKEN, env_var="SIGSTORE_ID_TOKEN")
    assert "public Fulcio" not in ctx.oidc.detail


def test_gitlab_self_managed_tag_pipeline_without_id_token() -> None:
    ctx = detect(GITLAB_SELF_MANAGED_TAG, forbid_which)
    config_uri = "gitlab.example.com:8443/platform/app//ci/release.gitlab-ci.yml@refs/tags/v2.0.0"
    assert_context(
        ctx,
        platform=Platform.GITLAB,
        builder_id="https://gitlab.example.com:8443/platform/app/-/runners/3",
        server_url="https://gitlab.example.com:8443",
        repository="platform/app",
        repo_url="https://gitlab.example.com:8443/platform/app",
        commit=SHA_TAG,
        ref="refs/tags/v2.0.0",
        workflow="ci/release.gitlab-ci.yml",
        workflow_ref=config_uri,
        run_id="5150",
        run_url="https://gitlab.example.com:8443/platform/app/-/pipelines/5150",
        job_url="https://gitlab.example.com:8443/platform/app/-/jobs/90210",
        signer_identity=f"https://{config_uri}",
        signer_issuer="https://gitlab.example.com:8443",
        workspace="/builds/platform/app",
        extra={
            "pipeline_source": "push",
            "pipeline_iid": "9",
            "job_id": "90210",
            "job_name": "sign-image",
            "job_stage": "release",
            "runner_id": "3",
            "runner_description": "3-blue.saas-linux-small-amd64.runners-manager.gitlab.com/default",
            "project_id": "77",
            "namespace": "platform",
            "ref_name": "v2.0.0",
            "ref_protected": "true",
            "user_login": "release-bot",
        },
    )
    assert_oidc(ctx.oidc, OIDCKind.NONE, env_var=None)
    assert "id_tokens:\n  SIGSTORE_ID_TOKEN:\n    aud: sigstore" in ctx.oidc.fix
    assert "project's own .gitlab-ci.yml" in ctx.oidc.fix
    assert "not in an included file" in ctx.oidc.fix


def test_gitlab_merge_request_pipeline_uses_source_branch_ref() -> None:
    ctx = detect(GITLAB_MERGE_REQUEST)
    assert ctx.ref == "refs/heads/feature/login"
    assert (
        ctx.signer_identity == "https://gitlab.com/acme/platform/app//.gitlab-ci.yml@refs/heads/feature/login"
    )
    assert ctx.extra["pipeline_source"] == "merge_request_event"
    assert ctx.extra["merge_request_iid"] == "12"
    assert ctx.extra["merge_request_source_branch"] == "feature/login"
    assert ctx.extra["merge_request_target_branch"] == "main"
    assert "merge-requests" not in (ctx.ref or "")


def test_gitlab_before_16_10_derives_host_from_server_url() -> None:
    env = {k: v for k, v in GITLAB_SELF_MANAGED_TAG.items() if k != "CI_SERVER_FQDN"}
    assert detect(env).signer_identity == (
        "https://gitlab.example.com:8443/platform/app//ci/release.gitlab-ci.yml@refs/tags/v2.0.0"
    )


def test_gitlab_self_managed_id_token_warns_public_fulcio_will_not_trust_it() -> None:
    ctx = detect(GITLAB_SELF_MANAGED_TAG | {"SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN})
    assert_oidc(ctx.oidc, OIDCKind.GITLAB_ID_TOKEN, env_var="SIGSTORE_ID_TOKEN")
    assert "public Fulcio does not trust issuer https://gitlab.example.com:8443" in ctx.oidc.detail


def test_gitlab_token_file_when_no_id_token() -> None:
    ctx = detect(GITLAB_SELF_MANAGED_TAG | {"SC_CI_OIDC_TOKEN_FILE": "/tmp/oidc.jwt"})
    assert_oidc(ctx.oidc, OIDCKind.TOKEN_FILE, env_var="SC_CI_OIDC_TOKEN_FILE", path="/tmp/oidc.jwt")


def test_gitlab_blank_sigstore_token_is_not_a_token() -> None:
    ctx = detect(GITLAB_BRANCH | {"SIGSTORE_ID_TOKEN": "  "})
    assert ctx.oidc.kind is OIDCKind.NONE


# --------------------------------------------------------------------------- Jenkins

JENKINS_MULTIBRANCH_MAIN = {
    "JENKINS_URL": "https://ci.example.com/",
    "JENKINS_HOME": "/var/jenkins_home",
    "HUDSON_URL": "https://ci.example.com/",
    "BUILD_URL": "https://ci.example.com/job/acme/job/app/job/main/57/",
    "JOB_URL": "https://ci.example.com/job/acme/job/app/job/main/",
    "JOB_NAME": "acme/app/main",
    "JOB_BASE_NAME": "main",
    "JOB_DISPLAY_URL": "https://ci.example.com/job/acme/job/app/job/main/display/redirect",
    "BUILD_NUMBER": "57",
    "BUILD_ID": "57",
    "BUILD_DISPLAY_NAME": "#57",
    "BUILD_TAG": "jenkins-acme-app-main-57",
    "BRANCH_NAME": "main",
    "BRANCH_IS_PRIMARY": "true",
    "GIT_BRANCH": "main",
    "GIT_COMMIT": SHA,
    "GIT_PREVIOUS_COMMIT": SHA_TAG,
    "GIT_URL": "https://github.com/acme/app.git",
    "NODE_NAME": "linux-agent-1",
    "NODE_LABELS": "linux docker",
    "EXECUTOR_NUMBER": "0",
    "WORKSPACE": "/home/jenkins/agent/workspace/acme_app_main",
    "CI": "true",
}

JENKINS_MULTIBRANCH_PR = {k: v for k, v in JENKINS_MULTIBRANCH_MAIN.items() if k != "BRANCH_IS_PRIMARY"} | {
    "BUILD_URL": "https://ci.example.com/job/acme/job/app/job/PR-12/3/",
    "JOB_URL": "https://ci.example.com/job/acme/job/app/job/PR-12/",
    "JOB_NAME": "acme/app/PR-12",
    "JOB_BASE_NAME": "PR-12",
    "BUILD_NUMBER": "3",
    "BUILD_ID": "3",
    "BUILD_TAG": "jenkins-acme-app-PR-12-3",
    "BRANCH_NAME": "PR-12",
    "GIT_BRANCH": "PR-12",
    "CHANGE_ID": "12",
    "CHANGE_URL": "https://github.com/acme/app/pull/12",
    "CHANGE_TITLE": "Add login",
    "CHANGE_AUTHOR": "contributor",
    "CHANGE_BRANCH": "feature/login",
    "CHANGE_TARGET": "main",
    "GIT_URL": f"https://jenkins-bot:{GIT_PASSWORD}@github.com/acme/app.git",
    "WORKSPACE": "/home/jenkins/agent/workspace/acme_app_PR-12",
}

JENKINS_MULTIBRANCH_TAG = JENKINS_MULTIBRANCH_MAIN | {
    "BUILD_URL": "https://ci.example.com/job/acme/job/app/job/v1.0.0/1/",
    "JOB_URL": "https://ci.example.com/job/acme/job/app/job/v1.0.0/",
    "JOB_NAME": "acme/app/v1.0.0",
    "JOB_BASE_NAME": "v1.0.0",
    "BUILD_NUMBER": "1",
    "BUILD_TAG": "jenkins-acme-app-v1.0.0-1",
    "BRANCH_NAME": "v1.0.0",
    "GIT_BRANCH": "v1.0.0",
    "TAG_NAME": "v1.0.0",
    "TAG_TIMESTAMP": "1718000000000",
    "GIT_COMMIT": SHA_TAG,
}

JENKINS_FREESTYLE = {
    "JENKINS_HOME": "/var/lib/jenkins",
    "BUILD_URL": "http://jenkins.internal:8080/job/team/job/app-release/88/",
    "JOB_NAME": "team/app-release",
    "BUILD_NUMBER": "88",
    "BUILD_TAG": "jenkins-team-app-release-88",
    "GIT_BRANCH": "origin/release/1.x",
    "GIT_COMMIT": SHA,
    "GIT_URL": "git@git.example.com:team/app.git",
    "WORKSPACE": "/var/lib/jenkins/workspace/team/app-release",
}


def test_jenkins_multibranch_branch_build() -> None:
    ctx = detect(JENKINS_MULTIBRANCH_MAIN, forbid_which)
    assert_context(
        ctx,
        platform=Platform.JENKINS,
        builder_id="https://ci.example.com/job/acme/job/app/job/main/",
        server_url="https://ci.example.com",
        repository="acme/app",
        repo_url="https://github.com/acme/app",
        commit=SHA,
        ref="refs/heads/main",
        workflow="acme/app/main",
        run_id="57",
        run_url="https://ci.example.com/job/acme/job/app/job/main/57/",
        workspace="/home/jenkins/agent/workspace/acme_app_main",
        extra={
            "build_number": "57",
            "build_tag": "jenkins-acme-app-main-57",
            "job_base_name": "main",
            "node_name": "linux-agent-1",
            "branch_name": "main",
        },
    )
    assert_oidc(ctx.oidc, OIDCKind.NONE, env_var=None)
    fix = ctx.oidc.fix
    assert "no public Fulcio issuer" in fix
    assert (
        "signing:\n    enabled: true\n    keyless: false\n    privateKey: ${secret:cosign-private-key}" in fix
    )
    for uri in ("awskms://", "gcpkms://projects/", "azurekms://", "hashivault://"):
        assert uri in fix


def test_jenkins_multibranch_pull_request_strips_git_credentials() -> None:
    ctx = detect(JENKINS_MULTIBRANCH_PR)
    assert_context(
        ctx,
        platform=Platform.JENKINS,
        builder_id="https://ci.example.com/job/acme/job/app/job/PR-12/",
        server_url="https://ci.example.com",
        repository="acme/app",
        repo_url="https://github.com/acme/app",
        commit=SHA,
        ref="refs/heads/feature/login",
        workflow="acme/app/PR-12",
        run_id="3",
        run_url="https://ci.example.com/job/acme/job/app/job/PR-12/3/",
        workspace="/home/jenkins/agent/workspace/acme_app_PR-12",
        extra={
            "build_number": "3",
            "build_tag": "jenkins-acme-app-PR-12-3",
            "job_base_name": "PR-12",
            "node_name": "linux-agent-1",
            "branch_name": "PR-12",
            "change_id": "12",
            "change_branch": "feature/login",
            "change_target": "main",
        },
    )
    text = repr(ctx)
    assert GIT_PASSWORD not in text
    assert "jenkins-bot" not in text


def test_jenkins_multibranch_tag_build() -> None:
    ctx = detect(JENKINS_MULTIBRANCH_TAG)
    assert ctx.ref == "refs/tags/v1.0.0"
    assert ctx.commit == SHA_TAG
    assert ctx.run_id == "1"
    assert ctx.builder_id == "https://ci.example.com/job/acme/job/app/job/v1.0.0/"
    assert ctx.extra["tag_name"] == "v1.0.0"


def test_jenkins_freestyle_without_jenkins_url() -> None:
    ctx = detect(JENKINS_FREESTYLE)
    assert_context(
        ctx,
        platform=Platform.JENKINS,
        builder_id=None,  # neither JENKINS_URL nor JOB_URL: no trustworthy base URL
        repository="team/app",
        repo_url="https://git.example.com/team/app",
        commit=SHA,
        ref="refs/heads/release/1.x",
        workflow="team/app-release",
        run_id="88",
        run_url="http://jenkins.internal:8080/job/team/job/app-release/88/",
        workspace="/var/lib/jenkins/workspace/team/app-release",
        extra={"build_number": "88", "build_tag": "jenkins-team-app-release-88"},
    )


def test_jenkins_builder_id_built_from_job_name_when_job_url_is_missing() -> None:
    env = {k: v for k, v in JENKINS_FREESTYLE.items()} | {"JENKINS_URL": "http://jenkins.internal:8080/"}
    ctx = detect(env)
    assert ctx.server_url == "http://jenkins.internal:8080"
    assert ctx.builder_id == "http://jenkins.internal:8080/job/team/job/app-release"


def test_jenkins_run_id_falls_back_to_build_tag() -> None:
    env = {k: v for k, v in JENKINS_FREESTYLE.items() if k != "BUILD_NUMBER"}
    assert detect(env).run_id == "jenkins-team-app-release-88"


def test_jenkins_uses_sigstore_id_token_when_given() -> None:
    ctx = detect(JENKINS_MULTIBRANCH_MAIN | {"SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN})
    assert_oidc(ctx.oidc, OIDCKind.ENV_TOKEN, env_var="SIGSTORE_ID_TOKEN")


def test_jenkins_home_alone_is_not_jenkins() -> None:
    assert detect({"JENKINS_HOME": "/var/jenkins_home"}).platform is Platform.LOCAL


# --------------------------------------------------------------------------- CircleCI

CIRCLECI_BRANCH = {
    "CI": "true",
    "CIRCLECI": "true",
    "CIRCLE_BRANCH": "main",
    "CIRCLE_BUILD_NUM": "1234",
    "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/app/1234",
    "CIRCLE_JOB": "publish-image",
    "CIRCLE_NODE_INDEX": "0",
    "CIRCLE_NODE_TOTAL": "1",
    "CIRCLE_OIDC_TOKEN": CIRCLE_TOKEN,
    "CIRCLE_OIDC_TOKEN_V2": CIRCLE_TOKEN_V2,
    "CIRCLE_ORGANIZATION_ID": "4f6e0e3c-3b5a-4b8e-9d51-8f7f2d1c0a11",
    "CIRCLE_PROJECT_ID": "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "CIRCLE_PIPELINE_ID": "c0ffee00-1111-4222-8333-444455556666",
    "CIRCLE_PROJECT_REPONAME": "app",
    "CIRCLE_PROJECT_USERNAME": "acme",
    "CIRCLE_REPOSITORY_URL": "git@github.com:acme/app.git",
    "CIRCLE_SHA1": SHA,
    "CIRCLE_USERNAME": "jdoe",
    "CIRCLE_WORKFLOW_ID": "5e7d2a9c-8b1f-4f3a-9c6d-2e1b0a9f8e7d",
    "CIRCLE_WORKFLOW_JOB_ID": "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
    "CIRCLE_WORKFLOW_WORKSPACE_ID": "5e7d2a9c-8b1f-4f3a-9c6d-2e1b0a9f8e7d",
    "CIRCLE_WORKING_DIRECTORY": "~/project",
    "CIRCLE_SHELL_ENV": "/tmp/.bash_env-abc",
}

CIRCLECI_TAG = {k: v for k, v in CIRCLECI_BRANCH.items() if k != "CIRCLE_BRANCH"} | {
    "CIRCLE_TAG": "v3.1.0",
    "CIRCLE_SHA1": SHA_TAG,
    "CIRCLE_BUILD_NUM": "1240",
    "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/app/1240",
}


def test_circleci_branch_with_cli_and_oidc() -> None:
    calls: list[str] = []

    def which(name: str) -> str | None:
        calls.append(name)
        return "/usr/local/bin/circleci" if name == "circleci" else None

    ctx = detect(CIRCLECI_BRANCH, which)
    assert_context(
        ctx,
        platform=Platform.CIRCLECI,
        builder_id="https://circleci.com/gh/acme/app",
        server_url="https://circleci.com",
        repository="acme/app",
        repo_url="https://github.com/acme/app",
        commit=SHA,
        ref="refs/heads/main",
        workflow="publish-image",
        run_id="5e7d2a9c-8b1f-4f3a-9c6d-2e1b0a9f8e7d",
        run_url="https://circleci.com/gh/acme/app/1234",
        job_url="https://circleci.com/gh/acme/app/1234",
        signer_issuer="https://oidc.circleci.com/org/4f6e0e3c-3b5a-4b8e-9d51-8f7f2d1c0a11",
        workspace="~/project",
        extra={
            "build_num": "1234",
            "job": "publish-image",
            "workflow_id": "5e7d2a9c-8b1f-4f3a-9c6d-2e1b0a9f8e7d",
            "workflow_job_id": "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
            "pipeline_id": "c0ffee00-1111-4222-8333-444455556666",
            "project_id": "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "organization_id": "4f6e0e3c-3b5a-4b8e-9d51-8f7f2d1c0a11",
            "actor": "jdoe",
        },
    )
    assert_oidc(ctx.oidc, OIDCKind.CIRCLECI_CLI, env_var="CIRCLE_OIDC_TOKEN_V2")
    assert """circleci run oidc get --claims '{"aud":"sigstore"}'""" in ctx.oidc.detail
    assert calls == ["circleci"]


def test_circleci_tag_build() -> None:
    ctx = detect(CIRCLECI_TAG, all_cli)
    assert ctx.ref == "refs/tags/v3.1.0"
    assert ctx.commit == SHA_TAG
    assert ctx.builder_id == "https://circleci.com/gh/acme/app"
    assert ctx.run_url == "https://circleci.com/gh/acme/app/1240"


def test_circleci_without_cli_gives_the_mint_command() -> None:
    ctx = detect(CIRCLECI_BRANCH, no_cli)
    assert_oidc(ctx.oidc, OIDCKind.NONE, env_var=None)
    assert """circleci run oidc get --claims '{"aud":"sigstore"}'""" in ctx.oidc.fix
    assert "SIGSTORE_ID_TOKEN" in ctx.oidc.fix
    assert "wrong audience" in ctx.oidc.fix
    assert "not on PATH" in ctx.oidc.detail


def test_circleci_v1_token_only_still_means_oidc_is_on() -> None:
    env = {k: v for k, v in CIRCLECI_BRANCH.items() if k != "CIRCLE_OIDC_TOKEN_V2"}
    assert_oidc(detect(env, all_cli).oidc, OIDCKind.CIRCLECI_CLI, env_var="CIRCLE_OIDC_TOKEN")


def test_circleci_with_cli_but_oidc_off_has_no_source() -> None:
    env = {k: v for k, v in CIRCLECI_BRANCH.items() if not k.startswith("CIRCLE_OIDC_TOKEN")}
    ctx = detect(env, all_cli)
    assert ctx.oidc.kind is OIDCKind.NONE
    assert "not enabled" in ctx.oidc.detail


def test_circleci_without_cli_uses_sigstore_id_token() -> None:
    ctx = detect(CIRCLECI_BRANCH | {"SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN}, no_cli)
    assert_oidc(ctx.oidc, OIDCKind.ENV_TOKEN, env_var="SIGSTORE_ID_TOKEN")


# --------------------------------------------------------------------------- Buildkite

BUILDKITE_BRANCH = {
    "CI": "true",
    "BUILDKITE": "true",
    "BUILDKITE_AGENT_ACCESS_TOKEN": BK_AGENT_TOKEN,
    "BUILDKITE_AGENT_ID": "0190b0b4-1d2e-4f50-9a7b-111111111111",
    "BUILDKITE_AGENT_NAME": "agent-linux-1",
    "BUILDKITE_BRANCH": "main",
    "BUILDKITE_BUILD_CHECKOUT_PATH": "/var/lib/buildkite-agent/builds/agent-linux-1/acme/app",
    "BUILDKITE_BUILD_CREATOR": "Jane Doe",
    "BUILDKITE_BUILD_ID": "0190b0b4-2222-4a3b-8c4d-222222222222",
    "BUILDKITE_BUILD_NUMBER": "88",
    "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/app/builds/88",
    "BUILDKITE_COMMIT": SHA,
    "BUILDKITE_JOB_ID": "0190b0b4-3333-4c5d-9e6f-333333333333",
    "BUILDKITE_LABEL": ":docker: Sign and attest",
    "BUILDKITE_MESSAGE": "Merge pull request #11",
    "BUILDKITE_ORGANIZATION_SLUG": "acme",
    "BUILDKITE_PIPELINE_SLUG": "app",
    "BUILDKITE_PIPELINE_NAME": "App",
    "BUILDKITE_PULL_REQUEST": "false",
    "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "",
    "BUILDKITE_REPO": "git@github.com:acme/app.git",
    "BUILDKITE_RETRY_COUNT": "0",
    "BUILDKITE_SOURCE": "webhook",
    "BUILDKITE_STEP_KEY": "sign",
    "BUILDKITE_TAG": "",
}

BUILDKITE_TAG = BUILDKITE_BRANCH | {
    "BUILDKITE_BRANCH": "v4.0.0",
    "BUILDKITE_TAG": "v4.0.0",
    "BUILDKITE_COMMIT": SHA_TAG,
    "BUILDKITE_BUILD_NUMBER": "89",
    "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/app/builds/89",
}


def test_buildkite_branch_with_agent() -> None:
    ctx = detect(BUILDKITE_BRANCH, all_cli)
    assert_context(
        ctx,
        platform=Platform.BUILDKITE,
        builder_id="https://buildkite.com/acme/app",
        server_url="https://buildkite.com",
        repository="acme/app",
        repo_url="https://github.com/acme/app",
        commit=SHA,
        ref="refs/heads/main",
        workflow="app",
        run_id="0190b0b4-2222-4a3b-8c4d-222222222222",
        run_url="https://buildkite.com/acme/app/builds/88",
        job_url="https://buildkite.com/acme/app/builds/88#0190b0b4-3333-4c5d-9e6f-333333333333",
        signer_identity="https://buildkite.com/acme/app",
        signer_issuer="https://agent.buildkite.com",
        workspace="/var/lib/buildkite-agent/builds/agent-linux-1/acme/app",
        extra={
            "build_number": "88",
            "job_id": "0190b0b4-3333-4c5d-9e6f-333333333333",
            "organization_slug": "acme",
            "pipeline_slug": "app",
            "source": "webhook",
            "step_key": "sign",
            "retry_count": "0",
        },
    )
    assert_oidc(ctx.oidc, OIDCKind.BUILDKITE_AGENT, env_var="BUILDKITE_AGENT_ACCESS_TOKEN")


def test_buildkite_tag_build() -> None:
    ctx = detect(BUILDKITE_TAG, all_cli)
    assert ctx.ref == "refs/tags/v4.0.0"
    assert ctx.commit == SHA_TAG
    assert ctx.run_url == "https://buildkite.com/acme/app/builds/89"
    assert ctx.extra["build_number"] == "89"


def test_buildkite_pull_request_build() -> None:
    env = BUILDKITE_BRANCH | {
        "BUILDKITE_BRANCH": "feature/login",
        "BUILDKITE_PULL_REQUEST": "11",
        "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "main",
        "BUILDKITE_PULL_REQUEST_REPO": "https://github.com/contributor/app.git",
    }
    ctx = detect(env, all_cli)
    assert ctx.ref == "refs/heads/feature/login"
    assert ctx.extra["pull_request"] == "11"
    assert ctx.extra["pull_request_base_branch"] == "main"


def test_buildkite_ui_build_on_head_has_no_commit() -> None:
    ctx = detect(BUILDKITE_BRANCH | {"BUILDKITE_COMMIT": "HEAD", "BUILDKITE_SOURCE": "ui"}, all_cli)
    assert ctx.commit is None
    assert ctx.extra["commit_ref"] == "HEAD"


@pytest.mark.parametrize(
    ("env", "which", "missing"),
    [
        (BUILDKITE_BRANCH, no_cli, "buildkite-agent on PATH"),
        (
            {k: v for k, v in BUILDKITE_BRANCH.items() if k != "BUILDKITE_AGENT_ACCESS_TOKEN"},
            all_cli,
            "BUILDKITE_AGENT_ACCESS_TOKEN",
        ),
    ],
    ids=["no-agent-binary", "no-agent-token"],
)
def test_buildkite_without_agent_or_token_gives_fix(env: Mapping[str, str], which: Any, missing: str) -> None:
    ctx = detect(env, which)
    assert_oidc(ctx.oidc, OIDCKind.NONE, env_var=None)
    assert missing in ctx.oidc.detail
    assert "buildkite-agent oidc request-token --audience sigstore" in ctx.oidc.fix


# --------------------------------------------------------------------------- local


def test_local_with_nothing() -> None:
    ctx = detect({"HOME": "/home/dev", "PATH": "/usr/bin", "CI": "true"}, forbid_which)
    assert_context(ctx, platform=Platform.LOCAL)
    assert_oidc(ctx.oidc, OIDCKind.NONE, env_var=None)
    assert not ctx.is_ci
    fix = ctx.oidc.fix
    assert "run in CI with OIDC" in fix
    assert "set SIGSTORE_ID_TOKEN" in fix
    assert "key-based signing" in fix
    assert "keyless: false" in fix


def test_local_with_sigstore_id_token() -> None:
    ctx = detect({"SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN})
    assert_context(ctx, platform=Platform.LOCAL)
    assert_oidc(ctx.oidc, OIDCKind.ENV_TOKEN, env_var="SIGSTORE_ID_TOKEN")


def test_local_with_token_file() -> None:
    ctx = detect({"SC_CI_OIDC_TOKEN_FILE": "/home/dev/.sigstore/token"})
    assert_oidc(
        ctx.oidc, OIDCKind.TOKEN_FILE, env_var="SC_CI_OIDC_TOKEN_FILE", path="/home/dev/.sigstore/token"
    )
    assert "/home/dev/.sigstore/token" in ctx.oidc.detail


def test_env_token_wins_over_token_file() -> None:
    ctx = detect({"SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN, "SC_CI_OIDC_TOKEN_FILE": "/tmp/t"})
    assert ctx.oidc.kind is OIDCKind.ENV_TOKEN


# --------------------------------------------------------------------------- detection order


@pytest.mark.parametrize(
    ("env", "platform"),
    [
        ({"GITHUB_ACTIONS": "true", "GITLAB_CI": "true", "BUILDKITE": "true"}, Platform.GITHUB),
        ({"GITLAB_CI": "true", "BUILDKITE": "true", "CIRCLECI": "true"}, Platform.GITLAB),
        ({"BUILDKITE": "true", "CIRCLECI": "true", "JENKINS_URL": "https://ci/"}, Platform.BUILDKITE),
        ({"CIRCLECI": "true", "JENKINS_URL": "https://ci/"}, Platform.CIRCLECI),
        ({"JENKINS_URL": "https://ci/"}, Platform.JENKINS),
        ({"JENKINS_HOME": "/var/jenkins_home", "BUILD_URL": "https://ci/job/x/1/"}, Platform.JENKINS),
        ({"GITHUB_ACTIONS": "false", "GITLAB_CI": "true"}, Platform.GITLAB),
        ({"GITHUB_ACTIONS": "True"}, Platform.GITHUB),
        ({"GITHUB_ACTIONS": "1"}, Platform.LOCAL),
        ({"CI": "true", "GITHUB_REPOSITORY": "acme/app"}, Platform.LOCAL),
        ({}, Platform.LOCAL),
    ],
    ids=[
        "github-first",
        "gitlab-before-buildkite",
        "buildkite-before-circleci",
        "circleci-before-jenkins",
        "jenkins-url",
        "jenkins-home-and-build-url",
        "github-false",
        "case-insensitive",
        "only-true-counts",
        "generic-ci",
        "empty",
    ],
)
def test_detection_order(env: Mapping[str, str], platform: Platform) -> None:
    assert detect(env, no_cli).platform is platform


# --------------------------------------------------------------------------- secrets never copied

ALL_SECRETS = (
    GH_REQUEST_TOKEN,
    SIGSTORE_TOKEN,
    GITHUB_TOKEN,
    CI_JOB_TOKEN,
    REGISTRY_PASSWORD,
    BK_AGENT_TOKEN,
    CIRCLE_TOKEN,
    CIRCLE_TOKEN_V2,
    GIT_PASSWORD,
)
PLANTED = {
    "SIGSTORE_ID_TOKEN": SIGSTORE_TOKEN,
    "GITHUB_TOKEN": GITHUB_TOKEN,
    "CI_JOB_TOKEN": CI_JOB_TOKEN,
    "CI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
}


@pytest.mark.parametrize(
    "env",
    [
        GITHUB_PUSH_MAIN | PLANTED,
        GITHUB_FORK_PR | PLANTED,
        GITLAB_BRANCH | PLANTED,
        GITLAB_SELF_MANAGED_TAG | PLANTED,
        JENKINS_MULTIBRANCH_PR | PLANTED,
        CIRCLECI_BRANCH | PLANTED,
        BUILDKITE_BRANCH | PLANTED,
        {"ACTIONS_ID_TOKEN_REQUEST_TOKEN": GH_REQUEST_TOKEN} | PLANTED,
    ],
    ids=["github", "github-pr", "gitlab", "gitlab-tag", "jenkins", "circleci", "buildkite", "local"],
)
@pytest.mark.parametrize("which", [no_cli, all_cli], ids=["no-cli", "cli"])
def test_token_values_never_reach_the_context(env: Mapping[str, str], which: Any) -> None:
    ctx = detect(env, which)
    text = repr(ctx) + str(dataclasses.asdict(ctx))
    leaked = [secret for secret in ALL_SECRETS if secret in text]
    assert leaked == []
    assert ctx.oidc.env_var in (None, *env.keys())  # a name from env, never a value


# --------------------------------------------------------------------------- purity and helpers


def test_no_module_reads_os_environ() -> None:
    package = Path(sc_ci.ci.__file__).parent
    sources = sorted(package.glob("*.py"))
    assert len(sources) >= 9
    for source in sources:
        text = source.read_text()
        tree = ast.parse(text)
        names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names |= {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
        }
        assert not names & {"environ", "environb", "getenv", "putenv"}, source.name
        docstring = ast.get_docstring(tree, clean=False)
        assert docstring, f"{source.name} must open with a docstring"
        assert "\n" not in docstring, f"{source.name}: the docstring must be one line"


def test_detect_does_not_mutate_env() -> None:
    env = dict(GITHUB_PUSH_MAIN)
    detect(env)
    assert env == GITHUB_PUSH_MAIN


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:pass@github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("https://x-access-token:ghs_abc@github.com/acme/app", "https://github.com/acme/app"),
        ("https://ghp_tokenonly@github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("ssh://git:pw@git.example.com:2222/a/b.git", "ssh://git.example.com:2222/a/b.git"),
        ("git@github.com:acme/app.git", "git@github.com:acme/app.git"),
        ("deploy:pw@git.example.com:acme/app.git", "git.example.com:acme/app.git"),
        ("https://github.com/acme/app", "https://github.com/acme/app"),
    ],
)
def test_strip_credentials(url: str, clean: str) -> None:
    assert strip_credentials(url) == clean


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:acme/app.git", "https://github.com/acme/app"),
        ("ssh://git@git.example.com:2222/group/sub/app.git", "https://git.example.com/group/sub/app"),
        ("https://bot:secret@gitlab.example.com:8443/g/app.git", "https://gitlab.example.com:8443/g/app"),
        ("http://gitea.local:3000/team/app", "http://gitea.local:3000/team/app"),
        ("git://git.example.com/app.git", "https://git.example.com/app"),
        ("not a url", None),
    ],
)
def test_web_url(remote: str, url: str | None) -> None:
    assert web_url(remote) == url
