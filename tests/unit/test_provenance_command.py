"""`sc-ci provenance attach` flag logic: explicit build facts in and outside CI (pure, no tools)."""

from __future__ import annotations

import pytest

from sc_ci.ci import Platform, detect
from sc_ci.errors import UsageError
from sc_ci.provenance.facts import apply
from sc_ci.provenance.interface import Explicit

SHA = "9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
LOCAL = detect({})
BUILDKITE = detect({"BUILDKITE": "true", "BUILDKITE_COMMIT": "HEAD", "BUILDKITE_REPO": "git@github.com:acme/app.git",
                    "BUILDKITE_ORGANIZATION_SLUG": "acme", "BUILDKITE_PIPELINE_SLUG": "app"}, lambda name: None)


def test_outside_ci_without_facts_provenance_is_skipped() -> None:
    ctx, explicit = apply(LOCAL, Explicit(), "https://ci.example.com/release")
    assert (ctx, explicit) == (LOCAL, False)


def test_outside_ci_with_every_fact() -> None:
    ctx, explicit = apply(LOCAL, Explicit("https://deploy:hunter22@github.com/acme/app.git", SHA.upper(), "release"),
                          "https://ci.example.com/release")
    assert explicit is True
    assert ctx.platform is Platform.LOCAL
    assert (ctx.repo_url, ctx.repository, ctx.commit, ctx.workflow, ctx.builder_id) == (
        "https://github.com/acme/app", "acme/app", SHA, "release", "https://ci.example.com/release")


@pytest.mark.parametrize(("explicit", "builder", "missing"), [
    (Explicit(source_repo="https://github.com/acme/app"), None, "--git-sha, --workflow-name, --builder-id"),
    (Explicit("https://github.com/acme/app", SHA, "release"), None, "--builder-id"),
    (Explicit(git_sha=SHA, workflow_name="release"), "https://ci.example.com/b", "--source-repo"),
])
def test_outside_ci_facts_are_all_or_nothing(explicit: Explicit, builder: str | None, missing: str) -> None:
    with pytest.raises(UsageError) as err:
        apply(LOCAL, explicit, builder)
    assert err.value.what == f"provenance outside CI needs {missing} as well"
    assert err.value.exit_code == 2


@pytest.mark.parametrize(("explicit", "message"), [
    (Explicit("acme/app", SHA, "w"), "is not a repository URL"),
    (Explicit("https://github.com/acme/app", "9f2c4a1", "w"), "is not a full commit id"),
    (Explicit("https://github.com/acme/app", "HEAD", "w"), "is not a full commit id"),
])
def test_malformed_facts_are_usage_errors(explicit: Explicit, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        apply(LOCAL, explicit, "https://ci.example.com/b")


def test_in_ci_a_flag_replaces_what_the_ci_reported_and_keeps_the_rest() -> None:
    assert BUILDKITE.commit is None  # HEAD is no commit id
    ctx, explicit = apply(BUILDKITE, Explicit(git_sha=SHA), None)
    assert explicit is False
    assert ctx.commit == SHA
    assert (ctx.platform, ctx.repo_url, ctx.builder_id) == (Platform.BUILDKITE, "https://github.com/acme/app",
                                                            "https://buildkite.com/acme/app")


def test_the_step_outside_ci_is_skipped_with_a_warning_and_runs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    from datetime import UTC, datetime
    from typing import cast

    from sc_ci.imageref import ImageRef
    from sc_ci.provenance.statement import Options
    from sc_ci.results.step import Outcome
    from sc_ci.signing.plan import SigningPlan
    from sc_ci.steps import provenance as step
    from sc_ci.tools.cosign import Cosign

    image = ImageRef("registry.example.com", "acme/app", "1", "sha256:" + "ab" * 32)
    request = step.Request(LOCAL, Options(), datetime(2026, 3, 1, tzinfo=UTC))
    with caplog.at_level("WARNING", logger="sc_ci"):
        result = step.attach(cast(Cosign, None), image, cast(SigningPlan, None), request)  # nothing may be called
    assert result.outcome is Outcome.SKIPPED
    assert result.summary == step.SKIP_REASON
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert step.Request(LOCAL, Options(), datetime(2026, 3, 1, tzinfo=UTC), explicit=True).applies
