"""Merge several scanners' reports into one finding per (package, version, vulnerability) after alias mapping."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from sc_ci.scan.interface import (
    Finding,
    FixState,
    ScannerReport,
    Severity,
    is_cve,
    normalize_id,
    worst,
)

_FIX_PRECEDENCE = (FixState.FIXED, FixState.WONT_FIX, FixState.NOT_FIXED, FixState.UNKNOWN)
MAX_URLS = 32


class DisagreementKind(StrEnum):
    FOUND_BY_ONE = "found-by-one"  # only some of the scanners that ran report it
    SEVERITY = "severity"
    FIX_VERSIONS = "fix-versions"


@dataclass(frozen=True)
class Disagreement:
    """Where the scanners differ on one merged finding; `said` is scanner → what it reported."""

    kind: DisagreementKind
    finding_id: str
    package: str
    version: str
    said: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "said", MappingProxyType(dict(self.said)))


@dataclass(frozen=True)
class MergeResult:
    """The merged findings (worst first), the scanners that ran, where they disagree, and the dedup count."""

    findings: tuple[Finding, ...]
    scanners: tuple[str, ...]
    disagreements: tuple[Disagreement, ...]
    #: how many findings with a *different* id (a GHSA and its CVE) were folded into another
    deduplicated: int
    reports: tuple[ScannerReport, ...] = ()

    @property
    def target_digest(self) -> str:
        return next((r.target_digest for r in self.reports if r.target_digest), "")

    @property
    def operating_system(self) -> str:
        return next((r.operating_system for r in self.reports if r.operating_system), "")


def canonical_id(primary: Iterable[str], aliases: Iterable[str] = ()) -> str:
    """A CVE id when there is one (a reported id before an alias), else the first reported id."""
    ids = sorted({normalize_id(i) for i in primary})
    extra = sorted({normalize_id(i) for i in aliases} - set(ids))
    for pool in (ids, extra):
        cves = [i for i in pool if is_cve(i)]
        if cves:
            return min(cves, key=_cve_order)
    return ids[0] if ids else (extra[0] if extra else "")


def _cve_order(cve: str) -> tuple[int, int]:
    _, year, number = cve.split("-", 2)
    return int(year), int(number)


def merge(reports: Sequence[ScannerReport]) -> MergeResult:
    """One finding per flaw per package version; found_by keeps who reported it."""
    scanners = tuple(dict.fromkeys(r.scanner for r in reports))
    members: list[Finding] = [finding for r in reports for finding in r.findings]
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, finding in enumerate(members):
        groups[finding.package_key].append(index)
    merged: list[Finding] = []
    disagreements: list[Disagreement] = []
    deduplicated = 0
    for indexes in groups.values():
        for component in _components(members, indexes):
            parts = [members[i] for i in component]
            finding = _combine(parts)
            deduplicated += len({normalize_id(p.id) for p in parts}) - 1
            merged.append(finding)
            if len(scanners) > 1:
                disagreements.extend(_disagreements(finding, parts, scanners))
    merged.sort(key=sort_key)
    disagreements.sort(key=lambda d: (d.finding_id, d.package, d.version, d.kind))
    return MergeResult(tuple(merged), scanners, tuple(disagreements), deduplicated, tuple(reports))


def sort_key(finding: Finding) -> tuple[int, float, str, str, str]:
    """Worst severity first, then highest CVSS score, then id, package and version (a stable total order)."""
    score = finding.max_score
    return (-finding.top_severity.rank, -(score if score is not None else -1.0), finding.id,
            finding.package, finding.version)


def _components(members: Sequence[Finding], indexes: Sequence[int]) -> list[list[int]]:
    """Findings of one package version linked by any shared id (id or alias), via union-find."""
    parent = {i: i for i in indexes}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i in indexes:
        for vid in members[i].ids:
            if vid in owner:
                a, b = root(owner[vid]), root(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[vid] = i
    comps: dict[int, list[int]] = defaultdict(list)
    for i in indexes:
        comps[root(i)].append(i)
    return list(comps.values())


def _combine(parts: Sequence[Finding]) -> Finding:
    primary = [p.id for p in parts]
    all_ids = {i for p in parts for i in p.ids}
    cid = canonical_id(primary, all_ids)
    severity: dict[str, Severity] = {}
    for p in parts:
        for scanner, sev in p.severity.items():
            severity[scanner] = worst((severity.get(scanner, Severity.UNKNOWN), sev))
    states = {p.fix_state for p in parts}

    def first_with(attribute: str) -> str:
        return next((str(getattr(p, attribute)) for p in parts if getattr(p, attribute)), "")

    source_part = next((p for p in parts if normalize_id(p.id) == cid and p.data_source), None)
    return Finding(
        id=cid,
        package=parts[0].package,
        version=parts[0].version,
        type=first_with("type"),
        purl=first_with("purl"),
        location=first_with("location"),
        aliases=frozenset(all_ids - {cid}),
        severity=severity,
        cvss=tuple(dict.fromkeys(c for p in parts for c in p.cvss)),
        fix_versions=tuple(dict.fromkeys(v for p in parts for v in p.fix_versions)),
        fix_state=next(s for s in _FIX_PRECEDENCE if s in states or s is FixState.UNKNOWN),
        data_source=source_part.data_source if source_part else first_with("data_source"),
        urls=tuple(dict.fromkeys(u for p in parts for u in p.urls))[:MAX_URLS],
        title=first_with("title"),
        description=first_with("description"),
        found_by=frozenset(s for p in parts for s in p.found_by),
    )


def _disagreements(finding: Finding, parts: Sequence[Finding], scanners: Sequence[str]) -> list[Disagreement]:
    out = []

    def note(kind: DisagreementKind, said: Mapping[str, str]) -> None:
        out.append(Disagreement(kind, finding.id, finding.package, finding.version, said))

    if set(scanners) - finding.found_by:
        note(DisagreementKind.FOUND_BY_ONE,
             {s: ("found" if s in finding.found_by else "not found") for s in scanners})
    if len(finding.found_by) > 1:
        if len({finding.severity_by(s) for s in finding.found_by}) > 1:
            note(DisagreementKind.SEVERITY, {s: str(finding.severity_by(s)) for s in sorted(finding.found_by)})
        fixes: dict[str, set[str]] = defaultdict(set)
        for p in parts:
            for s in p.found_by:
                fixes[s].update(p.fix_versions)
        if len({frozenset(v) for v in fixes.values()}) > 1:
            note(DisagreementKind.FIX_VERSIONS,
                 {s: ", ".join(sorted(fixes[s])) or "none" for s in sorted(fixes)})
    return out
