"""Provenance per platform: realistic CI environments in, the exact SLSA v1 statement out, schema-valid."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from sc_ci import secrets
from sc_ci.ci import CIContext, Platform, detect
from sc_ci.ci.interface import OIDCKind, OIDCSource
from sc_ci.imageref import ImageRef
from sc_ci.provenance import envvars, github, statement
from sc_ci.provenance.interface import DOCS, ProvenanceError
from sc_ci.provenance.statement import Options, Timings

SHA = "9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
DIGEST = "sha256:" + "ab" * 32
IMAGE = ImageRef("registry.example.com", "acme/app", "1.0", DIGEST)
TIMINGS = Timings(datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC), datetime(2026, 3, 1, 10, 4, 30, 500000, tzinfo=UTC))
STARTED, FINISHED = "2026-03-01T10:00:00Z", "2026-03-01T10:04:30Z"
SUBJECT = {"name": "registry.example.com/acme/app", "digest": {"sha256": "ab" * 32}}

# Planted secrets: none of these values may appear in any statement.
GH_REQUEST_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvIn0.c2lnbmF0dXJl"
GITHUB_TOKEN = "ghs_PLANTEDinstallationtoken0001"
CI_JOB_TOKEN = "glcbt-PLANTED-job-token-0001"
CI_JOB_JWT = "eyJraWQiOiJQTEFOVEVEIn0.eyJpc3MiOiJnaXRsYWIuY29tIn0.UExBTlRFRHNpZw"
REGISTRY_PASSWORD = "PLANTED-registry-password"
GIT_PASSWORD = "ghp_PLANTEDjenkinsbotpassword0001"
BK_AGENT_TOKEN = "bkaj_PLANTEDagentaccesstoken0001"
CIRCLE_OIDC = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJjaXJjbGUifQ.UExBTlRFRA"
ALL_SECRETS = (GH_REQUEST_TOKEN, GITHUB_TOKEN, CI_JOB_TOKEN, CI_JOB_JWT, REGISTRY_PASSWORD, GIT_PASSWORD,
               BK_AGENT_TOKEN, CIRCLE_OIDC)

GITHUB_ENV = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_API_URL": "https://api.github.com",
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
    "GITHUB_WORKFLOW": "Release",
    "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/heads/main",
    "GITHUB_WORKFLOW_SHA": SHA,
    "GITHUB_RUN_ID": "9876543210",
    "GITHUB_RUN_NUMBER": "42",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_EVENT_PATH": "/home/runner/work/_temp/_github_workflow/event.json",
    "GITHUB_JOB": "release",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_ACTOR_ID": "583231",
    "GITHUB_TRIGGERING_ACTOR": "octocat",
    "GITHUB_OUTPUT": "/home/runner/work/_temp/_runner_file_commands/set_output_0b1d",
    "GITHUB_STEP_SUMMARY": "/home/runner/work/_temp/_runner_file_commands/step_summary_0b1d",
    "GITHUB_WORKSPACE": "/home/runner/work/app/app",
    "RUNNER_ENVIRONMENT": "github-hosted",
    "RUNNER_OS": "Linux",
    "RUNNER_ARCH": "X64",
    "RUNNER_NAME": "GitHub Actions 12",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": GH_REQUEST_TOKEN,
    "GITHUB_TOKEN": GITHUB_TOKEN,
}

GITLAB_ENV = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_SERVER_URL": "https://gitlab.com",
    "CI_SERVER_FQDN": "gitlab.com",
    "CI_SERVER_VERSION": "17.9.0-pre",
    "CI_PROJECT_ID": "45678901",
    "CI_PROJECT_PATH": "acme/platform/app",
    "CI_PROJECT_NAMESPACE": "acme/platform",
    "CI_PROJECT_URL": "https://gitlab.com/acme/platform/app",
    "CI_PROJECT_DIR": "/builds/acme/platform/app",
    "CI_DEFAULT_BRANCH": "main",
    "CI_COMMIT_SHA": SHA,
    "CI_COMMIT_BRANCH": "main",
    "CI_COMMIT_REF_NAME": "main",
    "CI_COMMIT_REF_PROTECTED": "true",
    "CI_COMMIT_MESSAGE": "Release 1.0",
    "CI_PIPELINE_ID": "1234567890",
    "CI_PIPELINE_IID": "321",
    "CI_PIPELINE_SOURCE": "push",
    "CI_PIPELINE_URL": "https://gitlab.com/acme/platform/app/-/pipelines/1234567890",
    "CI_JOB_ID": "7654321098",
    "CI_JOB_NAME": "sign-image",
    "CI_JOB_STAGE": "release",
    "CI_JOB_URL": "https://gitlab.com/acme/platform/app/-/jobs/7654321098",
    "CI_JOB_STARTED_AT": "2026-03-01T09:58:12Z",
    "CI_JOB_TOKEN": CI_JOB_TOKEN,
    "CI_JOB_JWT_V2": CI_JOB_JWT,
    "CI_REPOSITORY_URL": f"https://gitlab-ci-token:{CI_JOB_TOKEN}@gitlab.com/acme/platform/app.git",
    "CI_REGISTRY": "registry.gitlab.com",
    "CI_REGISTRY_USER": "gitlab-ci-token",
    "CI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
    "CI_RUNNER_ID": "12270859",
    "CI_RUNNER_DESCRIPTION": "3-blue.saas-linux-small-amd64.runners-manager.gitlab.com/default",
    "CI_RUNNER_EXECUTABLE_ARCH": "linux/amd64",
    "CI_RUNNER_VERSION": "17.8.3",
    "CI_RUNNER_TAGS": '["saas-linux-small-amd64"]',
    "GITLAB_USER_LOGIN": "jdoe",
}

JENKINS_ENV = {
    "JENKINS_URL": "https://ci.example.com/",
    "JENKINS_HOME": "/var/jenkins_home",
    "BUILD_URL": "https://ci.example.com/job/acme/job/app/job/main/57/",
    "JOB_URL": "https://ci.example.com/job/acme/job/app/job/main/",
    "JOB_NAME": "acme/app/main",
    "JOB_BASE_NAME": "main",
    "BUILD_NUMBER": "57",
    "BUILD_ID": "57",
    "BUILD_TAG": "jenkins-acme-app-main-57",
    "BRANCH_NAME": "main",
    "GIT_BRANCH": "main",
    "GIT_COMMIT": SHA,
    "GIT_URL": f"https://jenkins-bot:{GIT_PASSWORD}@github.com/acme/app.git",
    "NODE_NAME": "linux-agent-1",
    "WORKSPACE": "/home/jenkins/agent/workspace/acme_app_main",
    "CI": "true",
}

CIRCLECI_ENV = {
    "CI": "true",
    "CIRCLECI": "true",
    "CIRCLE_BRANCH": "main",
    "CIRCLE_BUILD_NUM": "1234",
    "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/app/1234",
    "CIRCLE_JOB": "publish-image",
    "CIRCLE_NODE_INDEX": "0",
    "CIRCLE_NODE_TOTAL": "1",
    "CIRCLE_OIDC_TOKEN": CIRCLE_OIDC,
    "CIRCLE_OIDC_TOKEN_V2": CIRCLE_OIDC,
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
    "CIRCLE_WORKING_DIRECTORY": "~/project",
}

BUILDKITE_ENV = {
    "CI": "true",
    "BUILDKITE": "true",
    "BUILDKITE_AGENT_ACCESS_TOKEN": BK_AGENT_TOKEN,
    "BUILDKITE_AGENT_NAME": "agent-linux-1",
    "BUILDKITE_BRANCH": "main",
    "BUILDKITE_BUILD_CHECKOUT_PATH": "/var/lib/buildkite-agent/builds/agent-linux-1/acme/app",
    "BUILDKITE_BUILD_ID": "0190b0b4-2222-4a3b-8c4d-222222222222",
    "BUILDKITE_BUILD_NUMBER": "88",
    "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/app/builds/88",
    "BUILDKITE_COMMIT": SHA,
    "BUILDKITE_JOB_ID": "0190b0b4-3333-4c5d-9e6f-333333333333",
    "BUILDKITE_LABEL": ":docker: Sign and attest",
    "BUILDKITE_ORGANIZATION_SLUG": "acme",
    "BUILDKITE_PIPELINE_SLUG": "app",
    "BUILDKITE_PULL_REQUEST": "false",
    "BUILDKITE_REPO": "git@github.com:acme/app.git",
    "BUILDKITE_RETRY_COUNT": "0",
    "BUILDKITE_SOURCE": "webhook",
    "BUILDKITE_STEP_KEY": "sign",
    "BUILDKITE_TAG": "",
}

ENVS: dict[str, dict[str, str]] = {
    "github": GITHUB_ENV, "gitlab": GITLAB_ENV, "jenkins": JENKINS_ENV, "circleci": CIRCLECI_ENV,
    "buildkite": BUILDKITE_ENV,
}

GIT_SOURCE = {"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"gitCommit": SHA}}

EXPECTED: dict[str, dict[str, Any]] = {
    "github": {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": "https://github.com/acme/app",
                                                "path": ".github/workflows/release.yml"}},
            "internalParameters": {"github": {"event_name": "push", "repository_id": "612345678",
                                              "repository_owner_id": "98765432",
                                              "runner_environment": "github-hosted"}},
            "resolvedDependencies": [GIT_SOURCE],
        },
        "runDetails": {
            "builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"},
            "metadata": {"invocationId": "https://github.com/acme/app/actions/runs/9876543210/attempts/2",
                         "startedOn": STARTED, "finishedOn": FINISHED},
        },
    },
    "gitlab": {
        "buildDefinition": {
            "buildType": "https://docs.gitlab.com/ci/pipeline_security/slsa/provenance_v1",
            "externalParameters": {"source": "https://gitlab.com/acme/platform/app", "entryPoint": "sign-image"},
            "internalParameters": {"name": "3-blue.saas-linux-small-amd64.runners-manager.gitlab.com/default",
                                   "architecture": "linux/amd64", "job": "7654321098"},
            "resolvedDependencies": [{"uri": "git+https://gitlab.com/acme/platform/app@main",
                                      "digest": {"gitCommit": SHA}}],
        },
        "runDetails": {
            "builder": {"id": "https://gitlab.com/acme/platform/app/-/runners/12270859",
                        "version": {"gitlab-runner": "17.8.3"}},
            "metadata": {"invocationId": "https://gitlab.com/acme/platform/app/-/jobs/7654321098",
                         "startedOn": "2026-03-01T09:58:12Z", "finishedOn": FINISHED},
        },
    },
    "jenkins": {
        "buildDefinition": {
            "buildType": f"{DOCS}#buildtype-jenkins-v1",
            "externalParameters": {"source": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main"},
                                   "job": {"name": "acme/app/main"}},
            "internalParameters": {"jenkins": {"build_number": "57", "build_tag": "jenkins-acme-app-main-57",
                                               "node_name": "linux-agent-1", "branch_name": "main"}},
            "resolvedDependencies": [GIT_SOURCE],
        },
        "runDetails": {
            "builder": {"id": "https://ci.example.com/job/acme/job/app/job/main/"},
            "metadata": {"invocationId": "https://ci.example.com/job/acme/job/app/job/main/57/",
                         "startedOn": STARTED, "finishedOn": FINISHED},
        },
    },
    "circleci": {
        "buildDefinition": {
            "buildType": f"{DOCS}#buildtype-circleci-v1",
            "externalParameters": {"source": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main"},
                                   "job": {"name": "publish-image", "project": "acme/app"}},
            "internalParameters": {"circleci": {
                "build_num": "1234", "workflow_id": "5e7d2a9c-8b1f-4f3a-9c6d-2e1b0a9f8e7d",
                "workflow_job_id": "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
                "pipeline_id": "c0ffee00-1111-4222-8333-444455556666",
                "project_id": "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "organization_id": "4f6e0e3c-3b5a-4b8e-9d51-8f7f2d1c0a11"}},
            "resolvedDependencies": [GIT_SOURCE],
        },
        "runDetails": {
            "builder": {"id": "https://circleci.com/gh/acme/app"},
            "metadata": {"invocationId": "https://circleci.com/gh/acme/app/1234",
                         "startedOn": STARTED, "finishedOn": FINISHED},
        },
    },
    "buildkite": {
        "buildDefinition": {
            "buildType": f"{DOCS}#buildtype-buildkite-v1",
            "externalParameters": {"source": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main"},
                                   "pipeline": {"organization": "acme", "slug": "app", "step": "sign"}},
            "internalParameters": {"buildkite": {"build_number": "88",
                                                 "job_id": "0190b0b4-3333-4c5d-9e6f-333333333333",
                                                 "source": "webhook", "retry_count": "0",
                                                 "build_id": "0190b0b4-2222-4a3b-8c4d-222222222222"}},
            "resolvedDependencies": [GIT_SOURCE],
        },
        "runDetails": {
            "builder": {"id": "https://buildkite.com/acme/app"},
            "metadata": {"invocationId": "https://buildkite.com/acme/app/builds/88#0190b0b4-3333-4c5d-9e6f-333333333333",
                         "startedOn": STARTED, "finishedOn": FINISHED},
        },
    },
}

# Every field the in-toto Statement v1 and SLSA v1.0 specifications define, per object.
SPEC_FIELDS = {
    "statement": {"_type", "subject", "predicateType", "predicate"},
    "predicate": {"buildDefinition", "runDetails"},
    "buildDefinition": {"buildType", "externalParameters", "internalParameters", "resolvedDependencies"},
    "runDetails": {"builder", "metadata", "byproducts"},
    "builder": {"id", "version", "builderDependencies"},
    "metadata": {"invocationId", "startedOn", "finishedOn"},
    "descriptor": {"name", "uri", "digest", "content", "downloadLocation", "mediaType", "annotations"},
}


def no_cli(name: str) -> str | None:
    return None


def build(env: Mapping[str, str], options: Options | None = None) -> dict[str, Any]:
    options = options or Options()
    return statement.statement(IMAGE, detect(env, no_cli), TIMINGS, options)


def fields_outside_spec(stmt: Mapping[str, Any]) -> list[str]:
    """Names sc-ci wrote that the specifications do not define (schemas allow them; we never write them)."""
    pred = stmt["predicate"]
    found = [f"statement.{k}" for k in set(stmt) - SPEC_FIELDS["statement"]]
    found += [f"predicate.{k}" for k in set(pred) - SPEC_FIELDS["predicate"]]
    found += [f"buildDefinition.{k}" for k in set(pred["buildDefinition"]) - SPEC_FIELDS["buildDefinition"]]
    found += [f"runDetails.{k}" for k in set(pred["runDetails"]) - SPEC_FIELDS["runDetails"]]
    found += [f"builder.{k}" for k in set(pred["runDetails"]["builder"]) - SPEC_FIELDS["builder"]]
    found += [f"metadata.{k}" for k in set(pred["runDetails"].get("metadata", {})) - SPEC_FIELDS["metadata"]]
    for desc in [*stmt["subject"], *pred["buildDefinition"].get("resolvedDependencies", [])]:
        found += [f"descriptor.{k}" for k in set(desc) - SPEC_FIELDS["descriptor"]]
    return found


@pytest.mark.parametrize("platform", list(ENVS))
def test_statement_per_platform(platform: str, attestation_schemas: Any) -> None:
    stmt = build(ENVS[platform])
    assert stmt == {"_type": "https://in-toto.io/Statement/v1", "subject": [SUBJECT],
                    "predicateType": "https://slsa.dev/provenance/v1", "predicate": EXPECTED[platform]}
    attestation_schemas.check(stmt)
    assert fields_outside_spec(stmt) == []


def test_github_matches_the_actions_toolkit_mapping() -> None:
    """The toolkit's buildSLSAProvenancePredicate, field by field, from the same facts (its OIDC claims
    carry what the runner's environment carries)."""
    claims = {"workflow_ref": GITHUB_ENV["GITHUB_WORKFLOW_REF"], "repository": "acme/app", "ref": "refs/heads/main",
              "sha": SHA, "event_name": "push", "repository_id": "612345678", "repository_owner_id": "98765432",
              "runner_environment": "github-hosted", "job_workflow_ref": GITHUB_ENV["GITHUB_WORKFLOW_REF"],
              "run_id": "9876543210", "run_attempt": "2"}
    server = "https://github.com"
    path, _, ref = claims["workflow_ref"].replace(f"{claims['repository']}/", "").partition("@")
    toolkit = {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": ref, "repository": f"{server}/{claims['repository']}",
                                                "path": path}},
            "internalParameters": {"github": {k: claims[k] for k in ("event_name", "repository_id",
                                                                     "repository_owner_id", "runner_environment")}},
            "resolvedDependencies": [{"uri": f"git+{server}/{claims['repository']}@{claims['ref']}",
                                      "digest": {"gitCommit": claims["sha"]}}],
        },
        "runDetails": {
            "builder": {"id": f"{server}/{claims['job_workflow_ref']}"},
            "metadata": {"invocationId": f"{server}/{claims['repository']}/actions/runs/{claims['run_id']}"
                                         f"/attempts/{claims['run_attempt']}"},
        },
    }
    ours = build(GITHUB_ENV)["predicate"]
    metadata = ours["runDetails"]["metadata"]
    assert (metadata.pop("startedOn"), metadata.pop("finishedOn")) == (STARTED, FINISHED)  # ours adds these two
    assert ours == toolkit


@pytest.mark.parametrize(("workflow_ref", "path", "ref"), [
    ("acme/app/.github/workflows/release.yml@refs/heads/main", ".github/workflows/release.yml", "refs/heads/main"),
    ("acme/app/.github/workflows/publish.yaml@refs/tags/pkg@1.2.0", ".github/workflows/publish.yaml",
     "refs/tags/pkg@1.2.0"),
    ("acme/app/.github/workflows/ci.yml@refs/pull/17/merge", ".github/workflows/ci.yml", "refs/pull/17/merge"),
])
def test_github_workflow_ref_split(workflow_ref: str, path: str, ref: str) -> None:
    assert github.workflow_path_and_ref(workflow_ref, "acme/app") == (path, ref)


def test_github_enterprise_server_and_tag_with_at_sign(attestation_schemas: Any) -> None:
    env = GITHUB_ENV | {"GITHUB_SERVER_URL": "https://github.example.com", "GITHUB_REF": "refs/tags/pkg@1.2.0",
                        "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/tags/pkg@1.2.0"}
    stmt = build(env)
    pred = stmt["predicate"]
    assert pred["buildDefinition"]["externalParameters"] == {"workflow": {
        "ref": "refs/tags/pkg@1.2.0", "repository": "https://github.example.com/acme/app",
        "path": ".github/workflows/release.yml"}}
    assert pred["buildDefinition"]["resolvedDependencies"] == [
        {"uri": "git+https://github.example.com/acme/app@refs/tags/pkg@1.2.0", "digest": {"gitCommit": SHA}}]
    assert pred["runDetails"]["builder"]["id"] == \
        "https://github.example.com/acme/app/.github/workflows/release.yml@refs/tags/pkg@1.2.0"
    attestation_schemas.check(stmt)


def test_gitlab_tag_pipeline_on_self_managed_without_runner_details(attestation_schemas: Any) -> None:
    env = {k: v for k, v in GITLAB_ENV.items()
           if k not in ("CI_COMMIT_BRANCH", "CI_RUNNER_DESCRIPTION", "CI_RUNNER_EXECUTABLE_ARCH",
                        "CI_RUNNER_VERSION", "CI_JOB_STARTED_AT")} | {
        "CI_SERVER_URL": "https://GitLab.Example.com:8443",
        "CI_PROJECT_PATH": "platform/app",
        "CI_PROJECT_URL": "https://gitlab.example.com:8443/platform/app",
        "CI_COMMIT_TAG": "v2.0.0",
        "CI_COMMIT_REF_NAME": "v2.0.0",
        "CI_JOB_URL": "https://gitlab.example.com:8443/platform/app/-/jobs/90210",
        "CI_JOB_ID": "90210",
        "CI_RUNNER_ID": "3",
    }
    stmt = build(env)
    pred = stmt["predicate"]
    assert pred["buildDefinition"]["internalParameters"] == {"job": "90210"}
    assert pred["buildDefinition"]["resolvedDependencies"] == [
        {"uri": "git+https://gitlab.example.com:8443/platform/app@v2.0.0", "digest": {"gitCommit": SHA}}]
    # scheme and authority normalized to lower case (in-toto TypeURI)
    assert pred["runDetails"] == {
        "builder": {"id": "https://gitlab.example.com:8443/platform/app/-/runners/3"},
        "metadata": {"invocationId": "https://gitlab.example.com:8443/platform/app/-/jobs/90210",
                     "startedOn": STARTED, "finishedOn": FINISHED},
    }
    attestation_schemas.check(stmt)


def test_gitlab_job_start_after_finish_is_not_trusted() -> None:
    stmt = build(GITLAB_ENV | {"CI_JOB_STARTED_AT": "2026-03-01T11:00:00Z"})
    assert stmt["predicate"]["runDetails"]["metadata"]["startedOn"] == STARTED


def test_manual_mapping_outside_ci(attestation_schemas: Any) -> None:
    ctx = CIContext(platform=Platform.LOCAL, oidc=OIDCSource(OIDCKind.NONE, False, "none"),
                    repo_url="https://github.com/acme/app", repository="acme/app", commit=SHA,
                    workflow="release", builder_id="https://ci.example.com/release")
    stmt = statement.statement(IMAGE, ctx, TIMINGS)
    assert stmt["predicate"] == {
        "buildDefinition": {
            "buildType": f"{DOCS}#buildtype-manual-v1",
            "externalParameters": {"source": {"repository": "https://github.com/acme/app"},
                                   "workflow": {"name": "release"}},
            "resolvedDependencies": [{"uri": "git+https://github.com/acme/app", "digest": {"gitCommit": SHA}}],
        },
        "runDetails": {"builder": {"id": "https://ci.example.com/release"},
                       "metadata": {"startedOn": STARTED, "finishedOn": FINISHED}},
    }
    attestation_schemas.check(stmt)


def test_builder_id_from_config_replaces_the_detected_one() -> None:
    stmt = build(JENKINS_ENV, Options(builder_id="HTTPS://Jenkins.Example.com/release-builder"))
    assert stmt["predicate"]["runDetails"]["builder"] == {"id": "https://jenkins.example.com/release-builder"}


def test_include_materials_off_records_no_dependencies(attestation_schemas: Any) -> None:
    base = {"uri": "pkg:docker/alpine@3.20", "digest": {"sha256": "cd" * 32}}
    stmt = build(GITHUB_ENV, Options(include_materials=False, base_images=[base]))
    assert "resolvedDependencies" not in stmt["predicate"]["buildDefinition"]
    attestation_schemas.check(stmt)
    with_materials = build(GITHUB_ENV, Options(base_images=[base]))
    assert with_materials["predicate"]["buildDefinition"]["resolvedDependencies"] == [GIT_SOURCE, base]
    attestation_schemas.check(with_materials)


@pytest.mark.parametrize(("platform", "placement", "carriers"), [
    ("github", ("internalParameters", "env"), ("GITHUB_ACTOR", "GITHUB_RUN_NUMBER", "RUNNER_NAME")),
    ("gitlab", ("externalParameters", "variables"), ("GITLAB_USER_LOGIN", "CI_PIPELINE_IID", "CI_JOB_STAGE")),
    ("jenkins", ("internalParameters", "env"), ("JOB_BASE_NAME", "BUILD_ID", "CHANGE_URL")),
    ("circleci", ("internalParameters", "env"), ("CIRCLE_USERNAME", "CIRCLE_NODE_INDEX", "CIRCLE_PR_NUMBER")),
    ("buildkite", ("internalParameters", "env"),
     ("BUILDKITE_LABEL", "BUILDKITE_AGENT_NAME", "BUILDKITE_PULL_REQUEST_BASE_BRANCH")),
])
def test_include_env_records_allow_listed_variables_and_no_secret(
        platform: str, placement: tuple[str, str], carriers: tuple[str, str, str], attestation_schemas: Any) -> None:
    """Secrets planted in allow-listed variables the mapping itself does not read (so only the sanitizer
    stands between them and the provenance), and in secret-named variables."""
    masked = f"PLANTED-masked-{platform}-value"
    secrets.register(masked)  # e.g. a GitLab masked variable or an action input, registered at start-up
    ctx_platform = detect(ENVS[platform], no_cli).platform
    assert set(carriers) <= envvars.ALLOWED[ctx_platform]
    planted = {
        carriers[0]: masked,
        carriers[1]: CI_JOB_JWT,
        carriers[2]: f"https://deploy:{REGISTRY_PASSWORD}@git.example.com/acme/app.git",
        "RELEASE_TOKEN": "tok-PLANTED-release", "DB_PASSWORD": "pw-PLANTED-db", "SIGNING_KEY": "k-PLANTED-sign",
        "AWS_SECRET_ACCESS_KEY": "PLANTEDawssecretaccesskey",
    }
    env = ENVS[platform] | planted
    sanitized = envvars.sanitize(env, ctx_platform)
    stmt = build(env, Options(env=sanitized.values))
    recorded = stmt["predicate"]["buildDefinition"][placement[0]][placement[1]]
    assert recorded == sanitized.values
    assert recorded  # the benign allow-listed variables are there
    assert set(recorded) <= envvars.ALLOWED[ctx_platform]
    own = {"GIT_URL": "its value is a URL with credentials"} if platform == "jenkins" else {}  # JENKINS_ENV's
    assert sanitized.dropped == {carriers[0]: "its value is a registered secret",
                                 carriers[1]: "its value looks like a JWT",
                                 carriers[2]: "its value is a URL with credentials", **own}
    text = json.dumps(stmt)
    leaked = [s for s in (*ALL_SECRETS, masked, *planted.values()) if s in text]
    assert leaked == []
    attestation_schemas.check(stmt)


@pytest.mark.parametrize(("platform", "drop", "named"), [
    ("github", "GITHUB_WORKFLOW_REF", "GITHUB_WORKFLOW_REF"),
    ("github", "GITHUB_SHA", "GITHUB_SHA"),
    ("gitlab", "CI_RUNNER_ID", "CI_RUNNER_ID"),
    ("jenkins", "GIT_URL", "GIT_URL"),
    ("circleci", "CIRCLE_SHA1", "CIRCLE_SHA1"),
    ("buildkite", "BUILDKITE_COMMIT", "BUILDKITE_COMMIT"),
])
def test_missing_ci_facts_name_the_variable(platform: str, drop: str, named: str) -> None:
    env = {k: v for k, v in ENVS[platform].items() if k != drop}
    with pytest.raises(ProvenanceError) as err:
        build(env)
    assert named in err.value.what
    assert "--source-repo" in err.value.fix


def test_buildkite_build_of_head_needs_the_commit() -> None:
    """A build started from the UI has BUILDKITE_COMMIT=HEAD: not a commit id, so not recorded as one."""
    with pytest.raises(ProvenanceError, match="BUILDKITE_COMMIT"):
        build(BUILDKITE_ENV | {"BUILDKITE_COMMIT": "HEAD"})
    ctx = dataclasses.replace(detect(BUILDKITE_ENV | {"BUILDKITE_COMMIT": "HEAD"}, no_cli), commit=SHA)
    assert statement.statement(IMAGE, ctx, TIMINGS)["predicate"] == EXPECTED["buildkite"]


def test_timestamps_are_utc_with_z() -> None:
    from datetime import timedelta, timezone

    local = datetime(2026, 3, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert statement.timestamp(local) == "2026-03-01T10:00:00Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        statement.timestamp(datetime(2026, 3, 1, 12, 0, 0))


def test_docker_hub_subject_is_named_like_cosign_names_it() -> None:
    hub = ImageRef("docker.io", "library/nginx", "1.27", DIGEST)
    assert statement.subject(hub) == {"name": "index.docker.io/library/nginx", "digest": {"sha256": "ab" * 32}}
    with pytest.raises(ValueError, match="no digest"):
        statement.subject(ImageRef("docker.io", "library/nginx", "1.27"))



@pytest.mark.parametrize(("platform", "variable", "field"), [
    ("jenkins", "BRANCH_NAME", "predicate.buildDefinition.externalParameters.source.ref"),
    ("gitlab", "CI_JOB_NAME", "predicate.buildDefinition.externalParameters.entryPoint"),
    ("github", "GITHUB_EVENT_NAME", "predicate.buildDefinition.internalParameters.github.event_name"),
])
def test_a_secret_in_a_recorded_ci_fact_fails_closed(platform: str, variable: str, field: str) -> None:
    """A CI fact the mapping records (not only includeEnv) that holds a registered secret: nothing is built."""
    value = f"PLANTED-secret-as-{variable.lower()}"
    secrets.register(value)
    with pytest.raises(ProvenanceError) as err:
        build(ENVS[platform] | {variable: value})
    assert field in err.value.what
    assert value not in err.value.diagnostics()


def test_reference_doc_defines_every_build_type() -> None:
    from pathlib import Path

    from sc_ci.provenance import buildkite, circleci, gitlab, jenkins, manual

    doc = (Path(__file__).parents[2] / "docs" / "provenance.md").read_text(encoding="utf-8")
    for module in (github, gitlab, jenkins, circleci, buildkite, manual):
        assert module.BUILD_TYPE in doc, module.__name__
        if module.BUILD_TYPE.startswith(DOCS):
            anchor = module.BUILD_TYPE.partition("#")[2]
            assert f'<a id="{anchor}"></a>' in doc, anchor
