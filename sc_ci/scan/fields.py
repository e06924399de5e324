"""Bounded, type-checked reads of untrusted scanner JSON: every malformed value becomes a ScanOutputError."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sc_ci.scan.interface import ScanOutputError

MAX_INPUT_BYTES = 512 * 1024 * 1024  # grype's JSON for a large image is tens of MB; this is far past that
MAX_FINDINGS = 250_000
MAX_ID = 128
MAX_NAME = 512
MAX_TEXT = 8192
MAX_URL = 2048
MAX_URLS = 32
MAX_ALIASES = 64
MAX_CVSS = 16
MAX_FIXES = 32

# C0/C1 controls, and the bidirectional overrides that make text display other than it reads
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def load_json(data: bytes | str, *, tool: str) -> Any:
    """Parse at most MAX_INPUT_BYTES of JSON; deep nesting, bad UTF-8 and bad syntax are ScanOutputErrors."""
    size = len(data)
    if size > MAX_INPUT_BYTES:
        raise ScanOutputError(
            f"{tool} JSON output is {size} bytes, over the {MAX_INPUT_BYTES} byte limit",
            why="a scan report this large is not a real scanner report, or the image is unreasonably big",
            fix=f"scan a smaller image, or check that the file is {tool}'s `-o json` / `--format json` output",
        )
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ScanOutputError(
            f"{tool} output is not valid JSON",
            why=f"{type(exc).__name__}: {_short(str(exc))}",
            fix=f"run {tool} with JSON output and make sure nothing else writes to its stdout",
        ) from exc


def bad(tool: str, where: str, expected: str) -> ScanOutputError:
    return ScanOutputError(
        f"{tool} JSON output: {where} is not {expected}",
        why=f"the output does not have the shape {tool}'s JSON format gives it (truncated, edited or another tool's)",
        fix=f"re-run {tool} with JSON output; the engine reads `{tool}` JSON only",
    )


def obj(value: object, *, tool: str, where: str, optional: bool = True) -> Mapping[str, Any]:
    """A JSON object; missing (None) is an empty one when optional."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise bad(tool, where, "an object")
    return value


def items(value: object, *, tool: str, where: str, limit: int) -> list[Any]:
    """A JSON array of at most `limit` items; missing (None) is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(tool, where, "an array")
    if len(value) > limit:
        raise ScanOutputError(
            f"{tool} JSON output: {where} has {len(value)} entries, over the limit of {limit}",
            why="no real report has that many; the file is damaged or crafted",
            fix=f"check the {tool} output file",
        )
    return value


def text(value: object, limit: int = MAX_NAME) -> str:
    """A display-safe string: controls and bidi overrides removed, at most `limit` characters; non-text → ''."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return ""
    cleaned = _UNSAFE.sub("", value).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def required(value: object, *, tool: str, where: str, limit: int = MAX_NAME) -> str:
    out = text(value, limit)
    if not out:
        raise bad(tool, where, "a non-empty string")
    return out


def texts(value: object, *, tool: str, where: str, limit: int, each: int = MAX_NAME) -> tuple[str, ...]:
    """Strings of a JSON array, de-duplicated in order, at most `limit` kept (the rest are dropped)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad(tool, where, "an array")
    out = dict.fromkeys(t for t in (text(v, each) for v in value[: limit * 4]) if t)
    return tuple(out)[:limit]


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    score = float(value)
    return score if 0.0 <= score <= 10.0 else None


def _short(message: str) -> str:
    return text(message, 200)
