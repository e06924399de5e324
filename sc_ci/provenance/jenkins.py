"""Jenkins → SLSA v1 in this project's `jenkins/v1` buildType (job, source, build facts)."""

from __future__ import annotations

from sc_ci.ci.interface import CIContext
from sc_ci.provenance.interface import BuildDescription, SourceDependency, build_type, compact, require

BUILD_TYPE = build_type("jenkins")
_INTERNAL = ("build_number", "build_tag", "node_name", "branch_name", "tag_name", "change_id", "change_branch",
             "change_target")


def describe(ctx: CIContext) -> BuildDescription:
    repo_url, commit, job, builder, build_url = require(ctx, "Jenkins", [
        (ctx.repo_url, "GIT_URL"), (ctx.commit, "GIT_COMMIT"), (ctx.workflow, "JOB_NAME"),
        (ctx.builder_id, "JOB_URL"), (ctx.run_url, "BUILD_URL"),
    ])
    return BuildDescription(
        build_type=BUILD_TYPE,
        builder_id=builder,
        external={"source": compact({"repository": repo_url, "ref": ctx.ref}), "job": {"name": job}},
        internal=compact({"jenkins": compact({key: ctx.extra.get(key) for key in _INTERNAL})}),
        source=SourceDependency(repo_url, commit, ctx.ref),
        invocation_id=build_url,
    )
