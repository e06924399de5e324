"""Provenance verification on decoded statements: which cover the digest, and do they match expectations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sc_ci.ci.interface import CIContext, OIDCKind, OIDCSource, Platform
from sc_ci.imageref import ImageRef
from sc_ci.provenance import check, statement
from sc_ci.provenance.check import Expectations, Facts, Mismatch

SHA = "9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
OTHER_SHA = "1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d"
DIGEST = "sha256:" + "ab" * 32
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NONE = OIDCSource(OIDCKind.NONE, False, "none")

GITHUB = CIContext(Platform.GITHUB, NONE, builder_id="https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main",
                   server_url="https://github.com", repository="acme/app", repo_url="https://github.com/acme/app",
                   commit=SHA, ref="refs/heads/main", workflow_ref="acme/app/.github/workflows/r.yml@refs/heads/main",
                   run_id="1", run_url="https://github.com/acme/app/actions/runs/1/attempts/1")
GITLAB = CIContext(Platform.GITLAB, NONE, builder_id="https://gitlab.com/g/app/-/runners/7", repository="g/app",
                   repo_url="https://gitlab.com/g/app", commit=SHA, ref="refs/heads/main",
                   job_url="https://gitlab.com/g/app/-/jobs/9", extra={"ref_name": "main", "job_name": "build"})
JENKINS = CIContext(Platform.JENKINS, NONE, builder_id="https://ci.example.com/job/app/", repo_url="https://github.com/acme/app",
                    commit=SHA, ref="refs/tags/v1@rc", workflow="app", run_url="https://ci.example.com/job/app/3/")


def predicate(ctx: CIContext, **options: Any) -> dict[str, Any]:
    return statement.predicate(ctx, statement.Timings(NOW, NOW), statement.Options(**options))


@pytest.mark.parametrize("ctx", [GITHUB, GITLAB, JENKINS], ids=["github", "gitlab", "jenkins"])
def test_facts_read_back_what_the_builder_wrote(ctx: CIContext) -> None:
    found = check.facts(predicate(ctx))
    assert (found.builder_id, found.source_repo, found.git_sha) == (ctx.builder_id, ctx.repo_url, SHA)


@pytest.mark.parametrize("ctx", [GITHUB, GITLAB, JENKINS], ids=["github", "gitlab", "jenkins"])
def test_without_materials_the_source_comes_from_the_parameters_and_no_commit_is_known(ctx: CIContext) -> None:
    found = check.facts(predicate(ctx, include_materials=False))
    assert (found.source_repo, found.git_sha) == (ctx.repo_url, None)


def test_facts_of_a_malformed_predicate_are_unknown() -> None:
    assert check.facts({"buildDefinition": "x", "runDetails": {"builder": []}}) == Facts(None, None, None, None, None)


def test_expectations_met() -> None:
    found = check.facts(predicate(GITHUB))
    assert check.mismatches(found, Expectations("github.com/acme/app", GITHUB.builder_id, SHA.upper())) == []
    assert check.mismatches(found, Expectations()) == []


def test_each_mismatch_names_field_expected_and_actual() -> None:
    found = check.facts(predicate(GITHUB))
    got = check.mismatches(found, Expectations("https://github.com/evil/app", "https://github.com/x", OTHER_SHA))
    assert got == [Mismatch("source repository", "https://github.com/evil/app", "https://github.com/acme/app"),
                   Mismatch("builder id", "https://github.com/x", GITHUB.builder_id),
                   Mismatch("git commit", OTHER_SHA, SHA)]
    assert str(got[2]) == f"git commit: expected '{OTHER_SHA}', got '{SHA}'"


def test_expected_commit_without_a_recorded_one_is_a_mismatch() -> None:
    found = check.facts(predicate(GITHUB, include_materials=False))
    [mismatch] = check.mismatches(found, Expectations(git_sha=SHA))
    assert str(mismatch) == f"git commit: expected '{SHA}', got nothing (the provenance does not record it)"


@pytest.mark.parametrize(("expected", "actual", "same"), [
    ("https://github.com/acme/app", "https://github.com/acme/app", True),
    ("github.com/acme/app", "https://github.com/acme/app", True),
    ("https://GitHub.com/acme/app.git", "https://github.com/acme/app", True),
    ("git@github.com:acme/app.git", "https://github.com/acme/app", True),
    ("https://github.com/acme/app/", "git+https://github.com/acme/app", True),
    ("https://github.com/acme/app2", "https://github.com/acme/app", False),
    ("https://github.com/Acme/App", "https://github.com/acme/app", False),  # paths compare as written
    ("https://gitlab.com/acme/app", "https://github.com/acme/app", False),
])
def test_same_repository(expected: str, actual: str, same: bool) -> None:
    assert check.same_repository(expected, actual) is same


def test_builder_ids_compare_with_normalized_scheme_and_host() -> None:
    found = Facts(None, "https://ci.example.com/job/app/", None, None, None)
    assert check.mismatches(found, Expectations(builder_id="HTTPS://CI.example.com/job/app/")) == []
    assert check.mismatches(found, Expectations(builder_id="https://ci.example.com/job/App/")) != []


def test_ref_with_at_sign_does_not_confuse_the_source() -> None:
    dep = {"buildDefinition": {"resolvedDependencies": [
        {"uri": "pkg:docker/alpine@3.20", "digest": {"sha256": "cd" * 32}},
        {"uri": "git+https://github.com/acme/app@refs/tags/v1@rc", "digest": {"gitCommit": SHA}}]}}
    assert check.facts(dep).source_repo == "https://github.com/acme/app"
    assert check.facts(dep).git_sha == SHA


def test_covering_keeps_provenance_for_the_digest_only() -> None:
    ours = {"predicateType": "https://slsa.dev/provenance/v1",
            "subject": [{"name": "r/a", "digest": {"sha256": "ab" * 32}}]}
    other_digest = {**ours, "subject": [{"name": "r/a", "digest": {"sha256": "cd" * 32}}]}
    other_type = {**ours, "predicateType": "https://slsa.dev/provenance/v0.2"}
    no_subject = {"predicateType": "https://slsa.dev/provenance/v1"}
    assert check.covering([other_digest, ours, other_type, no_subject], DIGEST) == [ours]


def test_statement_subject_matches_the_image() -> None:
    stmt = statement.statement(ImageRef("127.0.0.1:5000", "team/app", "1", DIGEST), GITHUB,
                               statement.Timings(NOW, NOW))
    assert check.covering([stmt], DIGEST) == [stmt]
