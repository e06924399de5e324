"""Buildkite → SLSA v1 in this project's `buildkite/v1` buildType (pipeline, step, build and job ids)."""

from __future__ import annotations

from sc_ci.ci.interface import CIContext
from sc_ci.provenance.interface import BuildDescription, SourceDependency, build_type, compact, require

BUILD_TYPE = build_type("buildkite")
_INTERNAL = ("build_number", "job_id", "source", "retry_count", "pull_request")


def describe(ctx: CIContext) -> BuildDescription:
    repo_url, commit, org, pipeline, builder, job_url = require(ctx, "Buildkite", [
        (ctx.repo_url, "BUILDKITE_REPO"), (ctx.commit, "BUILDKITE_COMMIT"),
        (ctx.extra.get("organization_slug"), "BUILDKITE_ORGANIZATION_SLUG"),
        (ctx.extra.get("pipeline_slug"), "BUILDKITE_PIPELINE_SLUG"),
        (ctx.builder_id, "BUILDKITE_PIPELINE_SLUG"), (ctx.job_url, "BUILDKITE_JOB_ID"),
    ])
    internal = {key: ctx.extra.get(key) for key in _INTERNAL}
    internal["build_id"] = ctx.run_id
    return BuildDescription(
        build_type=BUILD_TYPE,
        builder_id=builder,
        external={"source": compact({"repository": repo_url, "ref": ctx.ref}),
                  "pipeline": compact({"organization": org, "slug": pipeline,
                                       "step": ctx.extra.get("step_key")})},
        internal=compact({"buildkite": compact(internal)}),
        source=SourceDependency(repo_url, commit, ctx.ref),
        invocation_id=job_url,
    )
