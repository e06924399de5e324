"""GitHub Actions → SLSA v1, exactly as actions/toolkit's attest package maps a workflow run."""

from __future__ import annotations

from sc_ci.ci.interface import CIContext
from sc_ci.provenance.interface import BuildDescription, SourceDependency, compact, require

BUILD_TYPE = "https://actions.github.io/buildtypes/workflow/v1"
_INTERNAL = ("event_name", "repository_id", "repository_owner_id", "runner_environment")


def workflow_path_and_ref(workflow_ref: str, repository: str) -> tuple[str, str]:
    """`acme/app/.github/workflows/x.yml@refs/heads/main` → (`.github/workflows/x.yml`, `refs/heads/main`).

    Like the toolkit: drop the `owner/repo/` prefix, split at the first `@` (a tag may contain `@`).
    """
    path, _, ref = workflow_ref.replace(f"{repository}/", "", 1).partition("@")
    return path, ref


def describe(ctx: CIContext) -> BuildDescription:
    repository, repo_url, commit, ref, workflow_ref, run_url, builder = require(ctx, "GitHub Actions", [
        (ctx.repository, "GITHUB_REPOSITORY"), (ctx.repo_url, "GITHUB_REPOSITORY"), (ctx.commit, "GITHUB_SHA"),
        (ctx.ref, "GITHUB_REF"), (ctx.workflow_ref, "GITHUB_WORKFLOW_REF"), (ctx.run_url, "GITHUB_RUN_ID"),
        (ctx.builder_id, "GITHUB_WORKFLOW_REF"),
    ])
    path, workflow_ref_ref = workflow_path_and_ref(workflow_ref, repository)
    return BuildDescription(
        build_type=BUILD_TYPE,
        builder_id=builder,
        external={"workflow": {"ref": workflow_ref_ref, "repository": repo_url, "path": path}},
        internal=compact({"github": compact({key: ctx.extra.get(key) for key in _INTERNAL})}),
        source=SourceDependency(repo_url, commit, ref),
        invocation_id=run_url,
    )
