"""The environment `metadata.includeEnv` records: allow-listed CI variables only, never a secret-looking one."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sc_ci import secrets
from sc_ci.ci.interface import Platform

#: Variables each CI sets that describe the build and hold no credential. Nothing else is ever copied.
ALLOWED: Mapping[Platform, frozenset[str]] = {
    Platform.GITHUB: frozenset({
        "CI", "GITHUB_ACTOR", "GITHUB_ACTOR_ID", "GITHUB_BASE_REF", "GITHUB_EVENT_NAME", "GITHUB_HEAD_REF",
        "GITHUB_JOB", "GITHUB_REF", "GITHUB_REF_NAME", "GITHUB_REF_PROTECTED", "GITHUB_REF_TYPE",
        "GITHUB_REPOSITORY", "GITHUB_REPOSITORY_ID", "GITHUB_REPOSITORY_OWNER", "GITHUB_REPOSITORY_OWNER_ID",
        "GITHUB_RUN_ATTEMPT", "GITHUB_RUN_ID", "GITHUB_RUN_NUMBER", "GITHUB_SERVER_URL", "GITHUB_SHA",
        "GITHUB_TRIGGERING_ACTOR", "GITHUB_WORKFLOW", "GITHUB_WORKFLOW_REF", "GITHUB_WORKFLOW_SHA",
        "RUNNER_ARCH", "RUNNER_ENVIRONMENT", "RUNNER_NAME", "RUNNER_OS",
    }),
    Platform.GITLAB: frozenset({
        "CI", "CI_COMMIT_BRANCH", "CI_COMMIT_REF_NAME", "CI_COMMIT_REF_PROTECTED", "CI_COMMIT_SHA",
        "CI_COMMIT_TAG", "CI_CONFIG_PATH", "CI_DEFAULT_BRANCH", "CI_JOB_ID", "CI_JOB_NAME", "CI_JOB_STAGE",
        "CI_JOB_STARTED_AT", "CI_JOB_URL", "CI_MERGE_REQUEST_IID", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "CI_PIPELINE_ID", "CI_PIPELINE_IID", "CI_PIPELINE_SOURCE",
        "CI_PIPELINE_URL", "CI_PROJECT_ID", "CI_PROJECT_PATH", "CI_PROJECT_URL", "CI_RUNNER_EXECUTABLE_ARCH",
        "CI_RUNNER_ID", "CI_RUNNER_VERSION", "CI_SERVER_URL", "CI_SERVER_VERSION", "GITLAB_USER_LOGIN",
    }),
    Platform.JENKINS: frozenset({
        "BRANCH_NAME", "BUILD_ID", "BUILD_NUMBER", "BUILD_TAG", "BUILD_URL", "CHANGE_BRANCH", "CHANGE_ID",
        "CHANGE_TARGET", "CHANGE_URL", "GIT_BRANCH", "GIT_COMMIT", "GIT_URL", "JENKINS_URL", "JOB_BASE_NAME",
        "JOB_NAME", "JOB_URL", "NODE_NAME", "TAG_NAME",
    }),
    Platform.CIRCLECI: frozenset({
        "CI", "CIRCLE_BRANCH", "CIRCLE_BUILD_NUM", "CIRCLE_BUILD_URL", "CIRCLE_JOB", "CIRCLE_NODE_INDEX",
        "CIRCLE_NODE_TOTAL", "CIRCLE_PIPELINE_ID", "CIRCLE_PROJECT_REPONAME", "CIRCLE_PROJECT_USERNAME",
        "CIRCLE_PR_NUMBER", "CIRCLE_PULL_REQUEST", "CIRCLE_REPOSITORY_URL", "CIRCLE_SHA1", "CIRCLE_TAG",
        "CIRCLE_USERNAME", "CIRCLE_WORKFLOW_ID", "CIRCLE_WORKFLOW_JOB_ID",
    }),
    Platform.BUILDKITE: frozenset({
        "BUILDKITE_AGENT_NAME", "BUILDKITE_BRANCH", "BUILDKITE_BUILD_ID", "BUILDKITE_BUILD_NUMBER",
        "BUILDKITE_BUILD_URL", "BUILDKITE_COMMIT", "BUILDKITE_JOB_ID", "BUILDKITE_LABEL",
        "BUILDKITE_ORGANIZATION_SLUG", "BUILDKITE_PIPELINE_SLUG", "BUILDKITE_PULL_REQUEST",
        "BUILDKITE_PULL_REQUEST_BASE_BRANCH", "BUILDKITE_REPO", "BUILDKITE_RETRY_COUNT", "BUILDKITE_SOURCE",
        "BUILDKITE_TAG", "CI",
    }),
    Platform.LOCAL: frozenset(),
}

#: A name holding any of these words is never copied, even when allow-listed.
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY|CREDENTIAL|PRIVATE|AUTH|JWT|COOKIE|SESSION|CERT",
                         re.IGNORECASE)
_CREDENTIAL_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s?#]*@")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_TOKEN_PREFIX = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{10,}|github_pat_\w{10,}|glpat-[\w-]{10,}|glcbt-[\w-]{6,}|gl[a-z]{2,4}-[\w-]{16,}"
    r"|xox[abprs]-[\w-]{10,}|AKIA[0-9A-Z]{16}|bk[a-z]{2}_[A-Za-z0-9]{10,})"
)
MAX_VALUE = 1024


@dataclass(frozen=True)
class Sanitized:
    """The variables kept, and the names left out with the reason (never the values)."""

    values: Mapping[str, str]
    dropped: Mapping[str, str] = field(default_factory=dict)


def registered_secret(value: str) -> bool:
    """Whether `value` is, or contains, a value registered as secret (masked in every log line)."""
    return secrets.mask(value) != value


def reason_to_drop(name: str, value: str, is_secret: Callable[[str], bool] = registered_secret) -> str | None:
    """Why the variable must not be recorded, or None when it may be."""
    if SECRET_NAME.search(name):
        return "its name suggests a credential"
    if is_secret(value):
        return "its value is a registered secret"
    if _CREDENTIAL_URL.search(value):
        return "its value is a URL with credentials"
    if _JWT.search(value):
        return "its value looks like a JWT"
    if _TOKEN_PREFIX.search(value) or "-----BEGIN" in value:
        return "its value looks like a token or key"
    if len(value) > MAX_VALUE:
        return f"its value is longer than {MAX_VALUE} characters"
    return None


def sanitize(env: Mapping[str, str], platform: Platform, *, allow: Iterable[str] | None = None,
             is_secret: Callable[[str], bool] = registered_secret) -> Sanitized:
    """The allow-listed variables of `env` (the platform's list unless `allow` is given) that pass every
    secret check, sorted by name. Blank values are left out."""
    allowed = frozenset(ALLOWED[platform] if allow is None else allow)
    kept: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for name in sorted(allowed):
        value = env.get(name)
        if value is None or not value.strip():
            continue
        reason = reason_to_drop(name, value, is_secret)
        if reason is None:
            kept[name] = value
        else:
            dropped[name] = reason
    return Sanitized(kept, dropped)
