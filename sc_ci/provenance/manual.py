"""Outside CI, from explicit flags only → SLSA v1 in this project's `manual/v1` buildType."""

from __future__ import annotations

from sc_ci.ci.interface import CIContext
from sc_ci.provenance.interface import BuildDescription, SourceDependency, build_type, compact, require

BUILD_TYPE = build_type("manual")


def describe(ctx: CIContext) -> BuildDescription:
    """`ctx` carries what the user gave: repo_url (--source-repo), commit (--git-sha), workflow
    (--workflow-name) and builder_id (--builder-id / provenance.builder.id)."""
    repo_url, commit, workflow, builder = require(ctx, "manual", [
        (ctx.repo_url, "--source-repo"), (ctx.commit, "--git-sha"), (ctx.workflow, "--workflow-name"),
        (ctx.builder_id, "--builder-id"),
    ])
    return BuildDescription(
        build_type=BUILD_TYPE,
        builder_id=builder,
        external={"source": compact({"repository": repo_url, "ref": ctx.ref}), "workflow": {"name": workflow}},
        source=SourceDependency(repo_url, commit, ctx.ref),
    )
