"""What every platform mapping returns (a BuildDescription), the provenance constants, and its error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sc_ci.ci.interface import CIContext
from sc_ci.errors import StepFailed

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
COSIGN_TYPE = "slsaprovenance1"  # cosign --type for PREDICATE_TYPE (cosign v2.2.1+)

#: Our own buildType URIs are sections of the provenance reference in this repository.
DOCS = "https://github.com/simple-container-com/sc-security-action/blob/main/docs/provenance.md"

Json = dict[str, object]

#: Where a platform's buildType keeps the sanitized environment (`metadata.includeEnv`).
EnvPlacement = Literal["externalParameters.variables", "internalParameters.env"]


@dataclass(frozen=True)
class Explicit:
    """Build facts given on the command line (provenance outside CI, or overriding the CI's)."""

    source_repo: str | None = None
    git_sha: str | None = None
    workflow_name: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.source_repo or self.git_sha or self.workflow_name)



def build_type(name: str, version: int = 1) -> str:
    """The buildType URI of one of this project's own build types (`#buildtype-jenkins-v1`)."""
    return f"{DOCS}#buildtype-{name}-v{version}"


class ProvenanceError(StepFailed):
    """Provenance cannot be built or attached (missing CI facts, an unresolvable base image, …)."""


@dataclass(frozen=True)
class SourceDependency:
    """The git source the build ran from: `git+<repository>@<ref>` at `commit`."""

    repository: str
    commit: str
    ref: str | None = None


@dataclass(frozen=True)
class BuildDescription:
    """One platform's answer to "what ran, where, from which source": the parts of the predicate that
    depend on the CI. The statement builder adds subject, timestamps, materials and environment."""

    build_type: str
    builder_id: str
    external: Mapping[str, object]
    internal: Mapping[str, object] = field(default_factory=dict)
    source: SourceDependency | None = None
    invocation_id: str | None = None
    builder_version: Mapping[str, str] = field(default_factory=dict)
    started_on: datetime | None = None  # when the platform itself says the job started
    env_placement: EnvPlacement = "internalParameters.env"


def compact(values: Mapping[str, object | None]) -> dict[str, object]:
    """`values` without the keys whose value is None or empty (SLSA: unset, null and empty are equal)."""
    return {k: v for k, v in values.items() if v is not None and v != {} and v != ""}


def require(ctx: CIContext, platform: str, needed: Sequence[tuple[str | None, str]]) -> list[str]:
    """The values of `(value, "VAR")` pairs, in order; a ProvenanceError naming every missing variable."""
    missing = list(dict.fromkeys(var for value, var in needed if not value))
    if not missing:
        return [value or "" for value, _var in needed]
    raise ProvenanceError(
        f"cannot build {platform} provenance: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
        why=f"the {platform} job environment lacks the facts SLSA provenance records"
        f" ({ctx.platform.value} detected)",
        fix="Run sc-ci as a step of the job itself (not in a shell that drops the CI variables), or give the "
        "source explicitly: --source-repo URL --git-sha SHA (and --builder-id URI).",
    )
