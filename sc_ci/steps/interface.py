"""What a step is (the `Step` protocol the engine runs) and what it returns: a frozen result whose outcome is
a value (ok, failed, skipped), never a flag, with a typed payload (artifacts, timings)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol

from sc_ci.errors import ScError

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.engine.plan import PlannedImage


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class Resource(StrEnum):
    """What a step mostly spends: CPU (syft, grype, trivy unpack and catalog layers) or the network
    (cosign and registry round trips). The executor bounds each class on its own."""

    CPU = "cpu"
    NETWORK = "network"


@dataclass(frozen=True)
class Artifact:
    """Something a step created or found: a signature, an attestation, a local file, a report."""

    kind: str  # signature | attestation | sbom-file | statement-file | report
    subject: str  # the image digest it belongs to (repo@sha256:…)
    format: str = ""  # cyclonedx-json, spdx-json, slsaprovenance1, legacy/bundle …
    predicate_type: str = ""
    path: str = ""  # a local file
    digest: str = ""  # sha256 of the content, when known
    reused: bool = False  # it already existed (nothing was written this run)


@dataclass(frozen=True)
class StepResult:
    """One step on one image: outcome, one-line summary, timing, the error if any, details and artifacts.

    `reused`: the work was already done (signed by the same key, SBOM from the cache, …), so steps that
    depend on this one can go on although nothing ran. `payload`: the step's typed result (e.g. a scan's
    findings) for reporters."""

    step: str
    image: str
    outcome: Outcome
    summary: str
    seconds: float = 0.0
    error: ScError | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    artifacts: tuple[Artifact, ...] = ()
    reused: bool = False
    payload: object = field(default=None, compare=False, repr=False)

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    @property
    def done(self) -> bool:
        """Whether what this step stands for now holds (it ran, or it was already so)."""
        return self.outcome is Outcome.OK or self.reused


def timed(step: str, image: str, action: Callable[[], tuple[str, Mapping[str, str]]]) -> StepResult:
    """Run `action` (returns summary and details) and turn its outcome or ScError into a StepResult."""
    started = time.monotonic()
    try:
        summary, details = action()
    except ScError as exc:
        summary = exc.what.removeprefix(f"{image}: ")
        return StepResult(step, image, Outcome.FAILED, summary, time.monotonic() - started, exc)
    return StepResult(step, image, Outcome.OK, summary, time.monotonic() - started, None, dict(details))


def skipped(step: str, image: str, why: str) -> StepResult:
    return StepResult(step, image, Outcome.SKIPPED, why)


class Step(Protocol):
    """One kind of work on one image. A new step is one module implementing this and one line in
    `sc_ci.steps.registry`.

    - `name`, `feature` (whose policy applies), `tools` it runs, `resource` it spends, `signs` (it writes
      signatures or attestations: never for upstream images);
    - `requires`: steps whose work it needs (skipped when one of them did not get done);
      `after`: steps it runs after (a blocking failure there, e.g. a tripped scan gate, stops it);
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
