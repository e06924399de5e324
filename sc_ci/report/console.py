"""Console reporter: one line per step and image, then each failure's diagnostics."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from sc_ci import sanitize, secrets
from sc_ci.results.step import Outcome, StepResult

_MARK = {Outcome.OK: "ok  ", Outcome.FAILED: "FAIL", Outcome.SKIPPED: "skip"}


def short(image: str) -> str:
    """repo@sha256:abcdef123456… — enough to tell digests apart on one line."""
    name, sep, digest = image.partition("@")
    return f"{name}@{digest[:19]}…" if sep and len(digest) > 19 else image


def render(results: Sequence[StepResult]) -> str:
    width = max((len(r.step) for r in results), default=4)
    lines = []
    for r in results:
        timing = f" ({r.seconds:.1f}s)" if r.seconds >= 0.05 else ""
        lines.append(f"{_MARK[r.outcome]} {r.step:<{width}}  {short(r.image)}  {r.summary}{timing}")
    return sanitize.neutralize(secrets.mask("\n".join(lines)))


def report(results: Sequence[StepResult], out: TextIO | None = None, err: TextIO | None = None) -> None:
    out = out or sys.stdout
    err = err or sys.stderr
    if results:
        print(render(results), file=out)
    for r in results:
        if r.error is not None:
            print(sanitize.neutralize(secrets.mask(r.error.diagnostics())), file=err)
    commands = sorted({r.details["command"] for r in results if "command" in r.details})
    if commands:
        print("\nVerify it yourself:", file=out)
        for c in commands:
            print(f"  {sanitize.one_line(secrets.mask(c), 4000)}", file=out)
