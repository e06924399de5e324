"""GitLab CI → SLSA v1 in GitLab's own provenance_v1 buildType (source, entryPoint, runner, job)."""

from __future__ import annotations

from datetime import datetime

from sc_ci.ci.interface import CIContext
from sc_ci.provenance.interface import BuildDescription, SourceDependency, compact, require

BUILD_TYPE = "https://docs.gitlab.com/ci/pipeline_security/slsa/provenance_v1"


def started_at(text: str | None) -> datetime | None:
    """CI_JOB_STARTED_AT (ISO 8601, UTC), or None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def describe(ctx: CIContext) -> BuildDescription:
    project_url, commit, builder, job_url = require(ctx, "GitLab CI", [
        (ctx.repo_url, "CI_PROJECT_URL"), (ctx.commit, "CI_COMMIT_SHA"),
        (ctx.builder_id, "CI_RUNNER_ID"), (ctx.job_url, "CI_JOB_URL"),
    ])
    extra = ctx.extra
    return BuildDescription(
        build_type=BUILD_TYPE,
        builder_id=builder,
        external=compact({"source": project_url, "entryPoint": extra.get("job_name")}),
        internal=compact({"name": extra.get("runner_description"), "architecture": extra.get("runner_arch"),
                          "job": extra.get("job_id")}),
        source=SourceDependency(project_url, commit, extra.get("ref_name") or ctx.ref),
        invocation_id=job_url,
        builder_version={"gitlab-runner": version} if (version := extra.get("runner_version")) else {},
        started_on=started_at(extra.get("job_started_at")),
        env_placement="externalParameters.variables",
    )
