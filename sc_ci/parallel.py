"""Bounded parallel map: independent work per image runs concurrently, results keep input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_bounded(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """fn over items with at most `workers` at once; exceptions propagate (steps return results)."""
    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="sc-ci") as pool:
        return list(pool.map(fn, items))
