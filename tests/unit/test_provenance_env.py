"""includeEnv: only allow-listed variables, and never one that looks like or is a secret."""

from __future__ import annotations

import pytest

from sc_ci import secrets
from sc_ci.ci.interface import Platform
from sc_ci.provenance import envvars

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJyZXBvOmFjbWUvYXBwIn0.c2lnbmF0dXJlLXBsYW50ZWQ"


def never(value: str) -> bool:
    return False


def test_only_allow_listed_names_are_kept() -> None:
    env = {"GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "9f2c4a1e", "HOME": "/home/runner",
           "PATH": "/usr/bin", "MY_APP_SETTING": "x", "GITHUB_EVENT_PATH": "/tmp/event.json", "GITHUB_HEAD_REF": " "}
    got = envvars.sanitize(env, Platform.GITHUB, is_secret=never)
    assert got.values == {"GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "9f2c4a1e"}
    assert got.dropped == {}


def test_result_is_sorted_by_name() -> None:
    env = {"RUNNER_OS": "Linux", "GITHUB_ACTOR": "octocat", "CI": "true"}
    assert list(envvars.sanitize(env, Platform.GITHUB, is_secret=never).values) == ["CI", "GITHUB_ACTOR", "RUNNER_OS"]


def test_outside_ci_nothing_is_recorded() -> None:
    assert envvars.sanitize({"CI": "true", "HOME": "/root"}, Platform.LOCAL).values == {}


@pytest.mark.parametrize("name", [
    "RELEASE_TOKEN", "GITHUB_TOKEN", "CI_JOB_TOKEN", "DB_PASSWORD", "REGISTRY_PASSWD", "API_KEY", "SIGNING_KEY",
    "CLIENT_SECRET", "AWS_SECRET_ACCESS_KEY", "GOOGLE_CREDENTIALS", "PRIVATE_DATA", "NPM_AUTH", "CI_JOB_JWT",
    "SESSION_ID", "client_secret_lower",
])
def test_secret_names_are_dropped_even_when_allow_listed(name: str) -> None:
    got = envvars.sanitize({name: "harmless-looking"}, Platform.GITHUB, allow={name}, is_secret=never)
    assert got.values == {}
    assert got.dropped == {name: "its name suggests a credential"}


def test_registered_secret_values_are_dropped() -> None:
    value = "PLANTED-registered-secret-3f9a"
    secrets.register(value)
    env = {"GITHUB_ACTOR": value, "GITHUB_REF": f"refs/heads/{value}", "GITHUB_JOB": "release"}
    got = envvars.sanitize(env, Platform.GITHUB)
    assert got.values == {"GITHUB_JOB": "release"}
    assert got.dropped == {"GITHUB_ACTOR": "its value is a registered secret",
                           "GITHUB_REF": "its value is a registered secret"}


@pytest.mark.parametrize(("value", "reason"), [
    ("https://gitlab-ci-token:glcbt-abc123@gitlab.com/acme/app.git", "its value is a URL with credentials"),
    ("https://x-access-token@github.com/acme/app", "its value is a URL with credentials"),
    ("ssh://git:pw@git.example.com:2222/acme/app", "its value is a URL with credentials"),
    (JWT, "its value looks like a JWT"),
    (f"Bearer {JWT}", "its value looks like a JWT"),
    ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "its value looks like a token or key"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "its value looks like a token or key"),
    ("glpat-AbCdEfGhIjKlMnOpQrSt", "its value looks like a token or key"),
    ("AKIAIOSFODNN7EXAMPLE", "its value looks like a token or key"),
    ("-----BEGIN EC " + "PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----",
     "its value looks like a token or key"),
    ("x" * 1025, "its value is longer than 1024 characters"),
])
def test_secret_looking_values_are_dropped(value: str, reason: str) -> None:
    got = envvars.sanitize({"GITHUB_HEAD_REF": value}, Platform.GITHUB, is_secret=never)
    assert got.values == {}
    assert got.dropped == {"GITHUB_HEAD_REF": reason}


@pytest.mark.parametrize("value", [
    "https://github.com/acme/app", "git@github.com:acme/app.git", "refs/heads/feature/eyJ-not-a-jwt",
    "octocat", "linux/amd64", "2026-03-01T10:00:00Z", "https://ci.example.com/job/acme/job/app/57/",
])
def test_ordinary_values_are_kept(value: str) -> None:
    assert envvars.reason_to_drop("GITHUB_HEAD_REF", value, never) is None


def test_platform_allow_lists_hold_no_secret_name() -> None:
    """The built-in lists never name a variable the name filter would reject (they would be dead entries)."""
    for platform, names in envvars.ALLOWED.items():
        assert [n for n in names if envvars.SECRET_NAME.search(n)] == [], platform


def test_reference_doc_lists_each_allow_list_exactly() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "provenance.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line.split("|")[2] for line in doc.splitlines()
            if line.startswith("| ") and line.count("|") == 3}
    titles = {Platform.GITHUB: "GitHub", Platform.GITLAB: "GitLab", Platform.JENKINS: "Jenkins",
              Platform.CIRCLECI: "CircleCI", Platform.BUILDKITE: "Buildkite"}
    for platform, title in titles.items():
        documented = {name.strip(" `") for name in rows[title].split(",")}
        assert documented == envvars.ALLOWED[platform], title
