"""What one step on one image returns: a frozen result whose outcome is a value (ok, failed, skipped), never a
flag, with what it made (artifacts) and a typed payload for reporters."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sc_ci.errors import ScError


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


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
