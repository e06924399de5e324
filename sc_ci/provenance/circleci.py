"""CircleCI → SLSA v1 in this project's `circleci/v1` buildType (project, job, workflow/pipeline ids)."""

from __future__ import annotations

from sc_ci.ci.interface import CIContext
from sc_ci.provenance.interface import BuildDescription, SourceDependency, build_type, compact, require

BUILD_TYPE = build_type("circleci")
_INTERNAL = ("build_num", "workflow_id", "workflow_job_id", "pipeline_id", "project_id", "organization_id")


def describe(ctx: CIContext) -> BuildDescription:
    repo_url, commit, job, builder, build_url = require(ctx, "CircleCI", [
        (ctx.repo_url, "CIRCLE_REPOSITORY_URL"), (ctx.commit, "CIRCLE_SHA1"), (ctx.workflow, "CIRCLE_JOB"),
        (ctx.builder_id, "CIRCLE_BUILD_URL"), (ctx.job_url, "CIRCLE_BUILD_URL"),
    ])
    return BuildDescription(
        build_type=BUILD_TYPE,
        builder_id=builder,
        external={"source": compact({"repository": repo_url, "ref": ctx.ref}),
                  "job": compact({"name": job, "project": ctx.repository})},
        internal=compact({"circleci": compact({key: ctx.extra.get(key) for key in _INTERNAL})}),
        source=SourceDependency(repo_url, commit, ctx.ref),
        invocation_id=build_url,
    )
