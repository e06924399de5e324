"""What one engine run was asked to do and what came of it: the images pinned to digests, the verdict, the
commands of a dry run, and the finished run as reporters see it (no steps, no tools: only values)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sc_ci.errors import UsageError
from sc_ci.imageref import ImageRef
from sc_ci.results.step import StepResult


@dataclass(frozen=True)
class PlannedImage:
    """One image of the run: pinned to its digest. `built`: the project builds and pushes it (so it is
    signed and attested); an upstream image (a compose service without `build`) is only scanned."""

    ref: ImageRef
    given: str
    built: bool = True
    service: str = ""

    @property
    def name(self) -> str:
        return self.ref.by_digest


@dataclass(frozen=True)
class Shard:
    """Job K of N: a deterministic subset of the images, the same in every job of a CI matrix."""

    index: int  # 1-based
    total: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        k, sep, n = text.partition("/")
        if not sep or not k.isdigit() or not n.isdigit() or not 1 <= int(k) <= int(n) <= 256:
            raise UsageError(f"--shard {text[:40]!r} is not K/N with 1 <= K <= N <= 256",
                             fix="--shard 2/4 (job 2 of 4; with a GitHub matrix: --shard ${{ matrix.shard }}/4)")
        return cls(int(k), int(n))

    def owns(self, ref: str) -> bool:
        """Stable across jobs and machines: the sha256 of the reference as given, modulo N."""
        return int(hashlib.sha256(ref.encode()).hexdigest(), 16) % self.total == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


@dataclass(frozen=True)
class Verdict:
    """The run's outcome: exit code, the failures that decided it, those let through (fail-open)."""

    exit_code: int
    blocking: tuple[StepResult, ...]
    tolerated: tuple[StepResult, ...]

    @property
    def status(self) -> str:
        """passed | degraded (tolerated failures) | failed."""
        if self.blocking:
            return "failed"
        return "degraded" if self.tolerated else "passed"


@dataclass(frozen=True)
class PolicyFacts:
    """The policy a run was judged by, as the manifest records it (decided in sc_ci.engine.policy)."""

    fail_open: Mapping[str, bool]
    fail_fast: bool
    source: str


@dataclass(frozen=True)
class Command:
    """One command a dry run would execute: for which image and step, and its exact argv."""

    image: str
    step: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Release:
    """A finished (or dry) run: what it worked on, every result, the verdict, and what it cost."""

    images: tuple[PlannedImage, ...]
    steps: tuple[str, ...]
    policy: PolicyFacts
    results: tuple[StepResult, ...]
    verdict: Verdict
    started: datetime
    finished: datetime
    seconds: float
    dry_run: bool = False
    shard: Shard | None = None
    tools: dict[str, str] = field(default_factory=dict)
    cache: dict[str, int] = field(default_factory=dict)
    commands: tuple[Command, ...] = ()  # a dry run's commands (nothing was executed)
    previews: tuple[tuple[str, str], ...] = ()  # a dry run's documents (step, text), e.g. the provenance
    facts: Mapping[str, object] = field(default_factory=dict)  # what the run records for its verifiers

    def owner(self, image: str) -> str:
        """The planned image a result belongs to: itself, or the index whose platform manifest it is (the one
        image of the run in that repository, else the first; results of platforms name their manifest)."""
        names = [i.name for i in self.images]
        if image in names:
            return image
        repo = image.partition("@")[0]
        return next((n for n in names if n.partition("@")[0] == repo), image)
