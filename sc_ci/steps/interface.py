"""What a step is: the `Step` protocol the engine runs, and the resource class it spends. What a step returns
lives in sc_ci.results.step (re-exported here for step modules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol

from sc_ci.results.step import Artifact, Outcome, StepResult, skipped, timed

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage

__all__ = ["Artifact", "Outcome", "Resource", "Step", "StepResult", "skipped", "timed"]


class Resource(StrEnum):
    """What a step mostly spends: CPU (syft, grype, trivy unpack and catalog layers) or the network
    (cosign and registry round trips). The executor bounds each class on its own."""

    CPU = "cpu"
    NETWORK = "network"


class Step(Protocol):
    """One kind of work on one image. A new step is one module implementing this and one line in
    `sc_ci.steps.registry`.

    - `name`, `feature` (whose policy applies), `tools` it runs, `resource` it spends, `signs` (it writes
      signatures or attestations: never for upstream images);
    - `requires`: steps whose work it needs (skipped when one of them did not get done);
      `after`: steps it runs after (a blocking failure there, e.g. a tripped scan gate, stops it);
      optionally `reads`: steps whose results it reads whatever they were (it runs after them);
    - `enabled(ctx)`: whether the configuration turns it on;
    - `check(ctx)`: once per run, first: validate what the step will need (no tool, no network);
    - `prepare(ctx)`: once per run, after every tool is located and before any image: what every image
      shares (the signing plan, a vulnerability DB load);
    - `commands(ctx, image)`: the exact argv the step would run for `image` (what --dry-run prints, built
      by the same builders `run` uses);
    - `run(ctx, image, prior)`: do it; `prior` holds this image's results of the steps it depends on.
    """

    name: ClassVar[str]
    feature: ClassVar[Feature]
    tools: tuple[str, ...]  # a class attribute, or set by an optional `configure(ctx)` (scanners)
    resource: ClassVar[Resource]
    requires: ClassVar[tuple[str, ...]]
    after: ClassVar[tuple[str, ...]]

    def enabled(self, ctx: RunContext) -> bool: ...

    def check(self, ctx: RunContext) -> None: ...

    def prepare(self, ctx: RunContext) -> None: ...

    def commands(self, ctx: RunContext, image: PlannedImage) -> Sequence[Sequence[str]]: ...

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> Sequence[StepResult]: ...
