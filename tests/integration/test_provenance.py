"""SLSA v1 provenance with the real cosign against the real registry, through the CLI, checked by plain
`cosign verify-attestation` (not sc-ci's code) and by the vendored JSON Schemas."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sc_ci.runner import base_env
from testbed.images import PushedImage
from testbed.keys import KeyPair
from testbed.registry import LocalRegistry

FreshImage = Callable[..., PushedImage]
SHA = "9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
OTHER_SHA = "1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d"
DOCS = "https://github.com/simple-container-com/sc-security-action/blob/main/docs/provenance.md"
# Variables that would make the child believe it runs in some CI (the suite itself may run in one).
_CI_MARKERS = ("GITHUB_", "RUNNER_", "ACTIONS_", "GITLAB_", "CI_", "BUILDKITE", "CIRCLE", "JENKINS_", "BUILD_",
               "JOB_", "GIT_", "SC_CI_", "INPUT_", "SIGSTORE_")


def sc_ci(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process, with only the CI variables the test gives."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(_CI_MARKERS) and k not in ("CI", "COSIGN_PASSWORD")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=full, text=True, capture_output=True,
                          timeout=300, check=False)


def plain_cosign_statements(cosign: Path, image: str, public: Path) -> list[dict[str, Any]]:
    """`cosign verify-attestation --type slsaprovenance1` run directly; its DSSE payloads decoded here."""
    result = subprocess.run([str(cosign), "verify-attestation", "--type", "slsaprovenance1", "--key", str(public),
                             "--insecure-ignore-tlog=true", image],
                            env=base_env(), text=True, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    envelopes = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert envelopes
    assert all(e["payloadType"] == "application/vnd.in-toto+json" for e in envelopes)
    return [json.loads(base64.b64decode(e["payload"])) for e in envelopes]


@pytest.fixture(scope="module")
def bases(registry: LocalRegistry) -> dict[str, PushedImage]:
    from testbed.images import push_image

    suffix = secrets.token_hex(4)
    return {"runtime": push_image(registry.host, "service-1", repository=f"bases/runtime-{suffix}", tag="3.20"),
            "multiarch": push_image(registry.host, "multiarch", repository=f"bases/multi-{suffix}", tag="1"),
            "tools": push_image(registry.host, "service-2", repository=f"bases/tools-{suffix}", tag="2")}


@pytest.fixture
def dockerfile(tmp_path: Path, registry: LocalRegistry, bases: dict[str, PushedImage]) -> Path:
    runtime, multi, tools = (bases[k].repository for k in ("runtime", "multiarch", "tools"))
    path = tmp_path / "Dockerfile"
    path.write_text(f"""\
# syntax=docker/dockerfile:1
ARG REGISTRY={registry.host}
ARG RUNTIME_TAG
FROM --platform=linux/arm64 ${{REGISTRY}}/{multi}:1 AS build
ARG REGISTRY
COPY --from=${{REGISTRY}}/{tools}:2 /bin /tools
RUN make
FROM ${{REGISTRY}}/{runtime}:${{RUNTIME_TAG:-3.20}} AS runtime
COPY --from=build /out /app
FROM scratch
COPY --from=runtime / /
""")
    return path


def expected_bases(registry: LocalRegistry, bases: dict[str, PushedImage]) -> list[dict[str, Any]]:
    host = registry.host
    return [
        {"uri": f"pkg:docker/{bases['multiarch'].repository}@1?platform=linux%2Farm64&repository_url={host}",
         "digest": {"sha256": bases["multiarch"].digest.removeprefix("sha256:")}},
        {"uri": f"pkg:docker/{bases['tools'].repository}@2?repository_url={host}",
         "digest": {"sha256": bases["tools"].digest.removeprefix("sha256:")}},
        {"uri": f"pkg:docker/{bases['runtime'].repository}@3.20?repository_url={host}",
         "digest": {"sha256": bases["runtime"].digest.removeprefix("sha256:")}},
    ]


GITHUB = {
    "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/app",
    "GITHUB_REPOSITORY_ID": "612345678", "GITHUB_REPOSITORY_OWNER_ID": "98765432", "GITHUB_SHA": SHA,
    "GITHUB_REF": "refs/heads/main", "GITHUB_WORKFLOW": "Release",
    "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/heads/main", "GITHUB_RUN_ID": "9876543210",
    "GITHUB_RUN_ATTEMPT": "1", "GITHUB_EVENT_NAME": "push", "RUNNER_ENVIRONMENT": "github-hosted",
}
GITLAB = {
    "CI": "true", "GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.example.com", "CI_PROJECT_PATH": "acme/app",
    "CI_PROJECT_URL": "https://gitlab.example.com/acme/app", "CI_COMMIT_SHA": SHA, "CI_COMMIT_REF_NAME": "main",
    "CI_COMMIT_BRANCH": "main", "CI_PIPELINE_ID": "5150", "CI_JOB_ID": "90210", "CI_JOB_NAME": "release",
    "CI_JOB_URL": "https://gitlab.example.com/acme/app/-/jobs/90210", "CI_RUNNER_ID": "3",
    "CI_PIPELINE_SOURCE": "push",
}
JENKINS = {
    "JENKINS_URL": "https://ci.example.com/", "BUILD_URL": "https://ci.example.com/job/app/57/",
    "JOB_URL": "https://ci.example.com/job/app/", "JOB_NAME": "app", "BUILD_NUMBER": "57", "GIT_COMMIT": SHA,
    "GIT_BRANCH": "origin/main", "GIT_URL": "https://jenkins-bot:PLANTED-jenkins-pw@github.com/acme/app.git",
}
CIRCLECI = {
    "CI": "true", "CIRCLECI": "true", "CIRCLE_BRANCH": "main", "CIRCLE_BUILD_NUM": "1234",
    "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/app/1234", "CIRCLE_JOB": "publish",
    "CIRCLE_PROJECT_USERNAME": "acme", "CIRCLE_PROJECT_REPONAME": "app",
    "CIRCLE_REPOSITORY_URL": "git@github.com:acme/app.git", "CIRCLE_SHA1": SHA,
    "CIRCLE_WORKFLOW_ID": "5e7d2a9c-8b1f-4f3a-9c6d-2e1b0a9f8e7d",
}
BUILDKITE = {
    "CI": "true", "BUILDKITE": "true", "BUILDKITE_BRANCH": "main", "BUILDKITE_BUILD_ID": "0190b0b4-2222",
    "BUILDKITE_BUILD_NUMBER": "88", "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/app/builds/88",
    "BUILDKITE_COMMIT": SHA, "BUILDKITE_JOB_ID": "0190b0b4-3333", "BUILDKITE_ORGANIZATION_SLUG": "acme",
    "BUILDKITE_PIPELINE_SLUG": "app", "BUILDKITE_REPO": "git@github.com:acme/app.git",
}
MANUAL_FLAGS = ("--source-repo", "https://github.com/acme/app", "--git-sha", SHA, "--workflow-name", "release",
                "--builder-id", "https://ci.example.com/release")

PLATFORMS: dict[str, tuple[dict[str, str], tuple[str, ...], str, str]] = {
    # name: (env, extra flags, buildType, builder id)
    "github": (GITHUB, (), "https://actions.github.io/buildtypes/workflow/v1",
               "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"),
    "gitlab": (GITLAB, (), "https://docs.gitlab.com/ci/pipeline_security/slsa/provenance_v1",
               "https://gitlab.example.com/acme/app/-/runners/3"),
    "jenkins": (JENKINS, (), f"{DOCS}#buildtype-jenkins-v1", "https://ci.example.com/job/app/"),
    "circleci": (CIRCLECI, (), f"{DOCS}#buildtype-circleci-v1", "https://circleci.com/gh/acme/app"),
    "buildkite": (BUILDKITE, (), f"{DOCS}#buildtype-buildkite-v1", "https://buildkite.com/acme/app"),
    "manual": ({}, MANUAL_FLAGS, f"{DOCS}#buildtype-manual-v1", "https://ci.example.com/release"),
}


def attach(image: PushedImage, keys: KeyPair, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return sc_ci("provenance", "attach", "-i", image.ref, "-k", str(keys.private), "--no-tlog", *flags,
                 env={**env, "COSIGN_PASSWORD": keys.password})


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_attached_provenance_is_accepted_by_plain_cosign_and_equals_what_was_generated(
        platform: str, fresh_image: FreshImage, keys: KeyPair, cosign: Path, dockerfile: Path, tmp_path: Path,
        registry: LocalRegistry, bases: dict[str, PushedImage], attestation_schemas: Any) -> None:
    env, flags, build_type, builder_id = PLATFORMS[platform]
    image = fresh_image()
    out = tmp_path / "out"
    result = attach(image, keys, env, *flags, "--dockerfile", str(dockerfile), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "ok   provenance" in result.stdout
    assert "attached and verified SLSA v1 provenance" in result.stdout
    assert (f"cosign verify-attestation --type slsaprovenance1 --key cosign.pub --insecure-ignore-tlog=true "
            f"{image.by_digest}") in result.stdout

    [generated_file] = out.glob("*.intoto.json")
    generated = json.loads(generated_file.read_text())
    attestation_schemas.check(generated)

    [signed] = plain_cosign_statements(cosign, image.by_digest, keys.public)
    attestation_schemas.check(signed)
    assert signed["_type"] == "https://in-toto.io/Statement/v1"  # (attest-blob --statement + attach: see cosign.py)
    assert signed == generated  # the signed statement is exactly the one generated
    assert signed["predicateType"] == generated["predicateType"] == "https://slsa.dev/provenance/v1"
    assert signed["subject"] == generated["subject"] == [
        {"name": f"{image.host}/{image.repository}", "digest": {"sha256": image.digest.removeprefix("sha256:")}}]
    assert signed["predicate"] == generated["predicate"]

    predicate = signed["predicate"]
    assert predicate["buildDefinition"]["buildType"] == build_type
    assert predicate["runDetails"]["builder"]["id"] == builder_id
    deps = predicate["buildDefinition"]["resolvedDependencies"]
    assert deps[0]["digest"] == {"gitCommit": SHA}
    assert deps[0]["uri"].startswith(("git+https://github.com/acme/app", "git+https://gitlab.example.com/acme/app"))
    assert deps[1:] == expected_bases(registry, bases)
    assert "PLANTED" not in json.dumps(signed)


def test_outside_ci_provenance_is_skipped_with_a_warning(fresh_image: FreshImage, keys: KeyPair,
                                                         cosign: Path) -> None:
    image = fresh_image()
    result = sc_ci("provenance", "attach", "-i", image.ref, "--no-tlog")  # no key needed to skip
    assert result.returncode == 0, result.stderr
    assert "skip provenance" in result.stdout
    assert "not running in CI" in result.stdout
    assert "WARNING provenance skipped" in result.stderr
    assert "--source-repo, --git-sha, --workflow-name and --builder-id" in result.stderr
    nothing = subprocess.run([str(cosign), "verify-attestation", "--type", "slsaprovenance1", "--key",
                              str(keys.public), "--insecure-ignore-tlog=true", image.by_digest],
                             env=base_env(), text=True, capture_output=True, timeout=120, check=False)
    assert nothing.returncode != 0


def test_outside_ci_partial_facts_are_a_usage_error(fresh_image: FreshImage, keys: KeyPair) -> None:
    image = fresh_image()
    result = attach(image, keys, {}, "--source-repo", "https://github.com/acme/app", "--git-sha", SHA)
    assert result.returncode == 2
    assert "provenance outside CI needs --workflow-name, --builder-id as well" in result.stderr


def test_missing_ci_facts_fail_before_cosign_runs(fresh_image: FreshImage, keys: KeyPair) -> None:
    image = fresh_image()
    env = {k: v for k, v in GITHUB.items() if k != "GITHUB_WORKFLOW_REF"}
    result = attach(image, keys, {**env, "SC_CI_COSIGN_PATH": "/nonexistent/cosign"})
    assert result.returncode == 1
    assert "error: cannot build GitHub Actions provenance: GITHUB_WORKFLOW_REF is not set" in result.stderr


def test_unresolvable_base_image_names_the_dockerfile_line(fresh_image: FreshImage, keys: KeyPair, tmp_path: Path,
                                                          registry: LocalRegistry) -> None:
    image = fresh_image()
    broken = tmp_path / "Dockerfile"
    broken.write_text(f"FROM {registry.host}/does/not-exist:1\n")
    result = attach(image, keys, GITHUB, "--dockerfile", str(broken))
    assert result.returncode == 1
    assert f"{broken}:1: cannot resolve base image {registry.host}/does/not-exist:1 to a digest" in result.stderr
    assert "includeMaterials: false" in result.stderr


def test_include_env_never_records_planted_secrets(fresh_image: FreshImage, keys: KeyPair, cosign: Path) -> None:
    image = fresh_image()
    job_token = "glcbt-PLANTED-" + secrets.token_hex(8)
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJQTEFOVEVEIjoxfQ." + secrets.token_hex(8)
    planted = {
        "GITLAB_USER_LOGIN": keys.password,  # the key password: registered as secret by sc-ci itself
        "CI_JOB_STAGE": jwt,  # a JWT in an allow-listed variable
        "CI_PIPELINE_URL": f"https://gitlab-ci-token:{job_token}@gitlab.example.com/acme/app/-/pipelines/5150",
        "CI_JOB_TOKEN": job_token, "CI_REGISTRY_PASSWORD": "PLANTED-registry-pw-" + secrets.token_hex(4),
        "CI_REPOSITORY_URL": f"https://gitlab-ci-token:{job_token}@gitlab.example.com/acme/app.git",
        "DEPLOY_API_KEY": "PLANTED-api-key", "SIGSTORE_ID_TOKEN": jwt,
    }
    result = attach(image, keys, {**GITLAB, **planted}, "--include-env", "-v")
    assert result.returncode == 0, result.stderr
    [signed] = plain_cosign_statements(cosign, image.by_digest, keys.public)
    variables = signed["predicate"]["buildDefinition"]["externalParameters"]["variables"]
    assert variables["CI_PIPELINE_ID"] == "5150"
    assert variables["CI_COMMIT_SHA"] == SHA
    text = json.dumps(signed)
    assert [name for name, value in planted.items() if value in text] == []
    assert "GITLAB_USER_LOGIN (its value is a registered secret)" in result.stderr
    assert "CI_JOB_STAGE (its value looks like a JWT)" in result.stderr
    assert keys.password not in result.stdout + result.stderr


def test_dry_run_attaches_nothing(fresh_image: FreshImage, keys: KeyPair, cosign: Path) -> None:
    image = fresh_image()
    result = attach(image, keys, GITHUB, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    assert "attest-blob --yes --key" in result.stdout  # cosign signs our in-toto Statement v1 …
    assert "--statement <in-toto Statement v1 of <provenance.json>>" in result.stdout
    assert "attach attestation --attestation <DSSE envelope of <provenance.json>>" in result.stdout  # … attached
    assert image.by_digest in result.stdout
    assert '"buildType": "https://actions.github.io/buildtypes/workflow/v1"' in result.stdout
    nothing = subprocess.run([str(cosign), "verify-attestation", "--type", "slsaprovenance1", "--key",
                              str(keys.public), "--insecure-ignore-tlog=true", image.by_digest],
                             env=base_env(), text=True, capture_output=True, timeout=120, check=False)
    assert nothing.returncode != 0


# ---------------------------------------------------------------------------------------------- verify


@pytest.fixture
def attested(fresh_image: FreshImage, keys: KeyPair) -> PushedImage:
    image = fresh_image()
    result = attach(image, keys, GITHUB)
    assert result.returncode == 0, result.stderr
    return image


def verify(image: PushedImage, public: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return sc_ci("provenance", "verify", "-i", image.ref, "-k", str(public), "--no-tlog", *flags)


def test_verify_with_matching_expectations(attested: PushedImage, keys: KeyPair) -> None:
    result = verify(attested, keys.public, "--source-repo", "https://github.com/acme/app", "--git-sha", SHA,
                    "--builder-id", "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main")
    assert result.returncode == 0, result.stderr
    assert "ok   verify-provenance" in result.stdout
    assert "source/builder/commit as expected" in result.stdout


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--source-repo", "https://github.com/evil/app",
     "source repository: expected 'https://github.com/evil/app', got 'https://github.com/acme/app'"),
    ("--builder-id", "https://github.com/acme/app/.github/workflows/other.yml@refs/heads/main",
     "builder id: expected 'https://github.com/acme/app/.github/workflows/other.yml@refs/heads/main', "
     "got 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main'"),
    ("--git-sha", OTHER_SHA, f"git commit: expected '{OTHER_SHA}', got '{SHA}'"),
])
def test_verify_mismatch_names_field_expected_and_actual(attested: PushedImage, keys: KeyPair, flag: str,
                                                         value: str, message: str) -> None:
    result = verify(attested, keys.public, flag, value)
    assert result.returncode == 1
    assert f"provenance does not match: {message}" in result.stdout
    assert f"provenance does not match: {message}" in result.stderr


def test_verify_with_the_wrong_key_fails(attested: PushedImage, other_keys: KeyPair) -> None:
    result = verify(attested, other_keys.public)
    assert result.returncode == 1
    assert "FAIL verify-provenance" in result.stdout


def test_verify_without_provenance_fails(fresh_image: FreshImage, keys: KeyPair) -> None:
    image = fresh_image()
    result = verify(image, keys.public)
    assert result.returncode == 1
    assert "FAIL verify-provenance" in result.stdout
    # cosign answers "no matching attestations" both when none exists and when the key differs
    assert f"error: {image.host}/{image.repository}@{image.digest}: no signature matches" in result.stderr


def test_verify_bad_git_sha_is_a_usage_error(attested: PushedImage, keys: KeyPair) -> None:
    result = verify(attested, keys.public, "--git-sha", "abc123")
    assert result.returncode == 2
    assert "--git-sha 'abc123' is not a full commit id" in result.stderr


def test_no_verify_attaches_without_reading_back(fresh_image: FreshImage, keys: KeyPair, cosign: Path) -> None:
    image = fresh_image()
    result = attach(image, keys, GITLAB, "--no-verify", "--no-materials")
    assert result.returncode == 0, result.stderr
    assert "attached SLSA v1 provenance (builder https://gitlab.example.com/acme/app/-/runners/3)" in result.stdout
    assert "verified" not in result.stdout.split("Verify it yourself")[0]
    [signed] = plain_cosign_statements(cosign, image.by_digest, keys.public)
    assert "resolvedDependencies" not in signed["predicate"]["buildDefinition"]
