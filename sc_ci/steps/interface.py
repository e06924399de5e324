"""What every step returns: a frozen result whose outcome is a value (ok, failed, skipped), never a flag."""

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
class StepResult:
    """One step on one image: outcome, one-line summary, timing, the error if any, and details."""

    step: str
    image: str
    outcome: Outcome
    summary: str
    seconds: float = 0.0
    error: ScError | None = None
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED


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
