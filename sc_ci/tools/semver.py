"""Version strings, pure: parse semver-ish versions ('v1.2.3-rc.1'), compare them, check a minimum."""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION_RE = re.compile(r"^[vV]?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, order=True)
class Version:
    """A semver-ish version: numeric release parts, then a pre-release tag (sorts before no tag)."""

    release: tuple[int, ...]
    is_release: bool  # True when there is no pre-release tag (so 1.0.0 > 1.0.0-rc1)
    pre: tuple[tuple[int, int | str], ...]

    @property
    def major(self) -> int:
        return self.release[0]


def normalize(text: str) -> str:
    """'v3.1.2 ' -> '3.1.2' (leading "v" and whitespace dropped)."""
    text = text.strip()
    return text[1:] if text[:1] in ("v", "V") else text


def parse_version(text: str) -> Version:
    """Parse '1.2.3', 'v1.2', '1.2.3-rc.1', '1.2.3+build'; raises ValueError for anything else."""
    match = _VERSION_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a version: {text!r}")
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) < 3:
        parts.append(0)
    while len(parts) > 3 and parts[-1] == 0:  # 1.2.3.0 == 1.2.3
        parts.pop()
    pre_text = match.group(2)
    pre: tuple[tuple[int, int | str], ...] = ()
    if pre_text:
        # numeric identifiers sort before alphanumeric ones (semver 11.4.3)
        pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre_text.split("."))
    return Version(tuple(parts), not pre_text, pre)


def is_version(text: str) -> bool:
    try:
        parse_version(text)
    except ValueError:
        return False
    return True


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as a < b, a == b, a > b. Leading "v" optional; build metadata ignored."""
    va, vb = parse_version(a), parse_version(b)
    return (va > vb) - (va < vb)


def version_at_least(version: str, minimum: str) -> bool:
    return compare_versions(version, minimum) >= 0


def same_version(a: str, b: str) -> bool:
    return compare_versions(a, b) == 0
