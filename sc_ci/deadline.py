"""The step deadline in force in this thread or context: set by the engine around a step, read by the retry
policy (no retry past it) and by the subprocess wrapper (no tool outlives it). Standard library only: the
tool installer imports the runner, which reads this."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("sc_ci_retry_deadline", default=None)


@contextlib.contextmanager
def step_deadline(seconds: float | None) -> Iterator[None]:
    """Bound every retry budget and tool run inside (in this thread or context) by `seconds` from now.
    Nested deadlines keep the earlier one."""
    if seconds is None:
        yield
        return
    mine = time.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(mine if outer is None else min(outer, mine))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the deadline in force here (None: no deadline)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()
