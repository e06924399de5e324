"""The tool-independent finding model: severities, fix states, findings and one scanner's report (all frozen)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from sc_ci.errors import ScError


class Severity(StrEnum):
    """Normalized severity; grype writes Title case, trivy UPPER case, both map here."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NEGLIGIBLE = "negligible"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Higher is worse; unknown ranks lowest so it never trips a threshold by itself."""
        return _RANK[self]

    def at_least(self, threshold: Severity) -> bool:
        return self is not Severity.UNKNOWN and self.rank >= threshold.rank


_RANK = {
    Severity.CRITICAL: 5,
    Severity.HIGH: 4,
    Severity.MEDIUM: 3,
    Severity.LOW: 2,
    Severity.NEGLIGIBLE: 1,
    Severity.UNKNOWN: 0,
}
#: Severity names some advisory sources use for the same levels (GHSA says "moderate").
_SYNONYMS = {"moderate": Severity.MEDIUM, "important": Severity.HIGH, "none": Severity.NEGLIGIBLE,
             "info": Severity.NEGLIGIBLE, "informational": Severity.NEGLIGIBLE, "minor": Severity.LOW}
#: Worst first: the order every renderer lists severities in.
SEVERITIES: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: -s.rank))


def parse_severity(value: object) -> Severity:
    """Any case, any known synonym; anything else (including a missing value) is `unknown`."""
    if not isinstance(value, str):
        return Severity.UNKNOWN
    text = value.strip().lower()
    try:
        return Severity(text)
    except ValueError:
        return _SYNONYMS.get(text, Severity.UNKNOWN)


def worst(severities: Iterable[Severity]) -> Severity:
    return max(severities, key=lambda s: s.rank, default=Severity.UNKNOWN)


class FixState(StrEnum):
    FIXED = "fixed"
    NOT_FIXED = "not-fixed"
    WONT_FIX = "wont-fix"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Cvss:
    """One CVSS rating: who scored it (nvd, ghsa, redhat…), the CVSS version, the vector and base score."""

    source: str
    version: str
    vector: str
    score: float | None = None


_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$", re.IGNORECASE)
_GHSA = re.compile(r"^GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}$", re.IGNORECASE)


def is_cve(vuln_id: str) -> bool:
    return bool(_CVE.match(vuln_id))


def is_ghsa(vuln_id: str) -> bool:
    return bool(_GHSA.match(vuln_id))


def normalize_id(vuln_id: str) -> str:
    """CVE-… and GHSA-… ids compare case-insensitively: CVE ids upper case, GHSA ids as GitHub writes them."""
    text = vuln_id.strip()
    if is_cve(text):
        return text.upper()
    if is_ghsa(text):
        return "GHSA" + text[4:].lower()
    return text


def normalize_package(name: str) -> str:
    """Compare package names case-insensitively with runs of `-_.` folded (PEP 503 style, harmless for others)."""
    return re.sub(r"[-_.]+", "-", name.strip().lower())


@dataclass(frozen=True)
class Finding:
    """One vulnerability in one package version, as one scanner (or the merge of several) reported it."""

    id: str
    package: str
    version: str
    type: str = ""  # apk, deb, rpm, python, npm, go-module, …
    purl: str = ""
    location: str = ""  # a path in the image, or a layer digest
    aliases: frozenset[str] = frozenset()
    #: scanner name → the severity that scanner gave
    severity: Mapping[str, Severity] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    cvss: tuple[Cvss, ...] = ()
    fix_versions: tuple[str, ...] = ()
    fix_state: FixState = FixState.UNKNOWN
    data_source: str = ""
    urls: tuple[str, ...] = ()
    title: str = ""
    description: str = ""
    found_by: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.severity, MappingProxyType):
            object.__setattr__(self, "severity", MappingProxyType(dict(self.severity)))

    @property
    def ids(self) -> frozenset[str]:
        """The id and every alias, normalized."""
        return frozenset(normalize_id(i) for i in (self.id, *self.aliases))

    @property
    def top_severity(self) -> Severity:
        """The worst severity any scanner gave (the conservative one for gates and reports)."""
        return worst(self.severity.values())

    @property
    def has_fix(self) -> bool:
        return self.fix_state is FixState.FIXED or bool(self.fix_versions)

    @property
    def max_score(self) -> float | None:
        scores = [c.score for c in self.cvss if c.score is not None]
        return max(scores) if scores else None

    @property
    def package_key(self) -> tuple[str, str]:
        return normalize_package(self.package), normalize_version(self.version)

    def severity_by(self, scanner: str) -> Severity:
        return self.severity.get(scanner, Severity.UNKNOWN)


def normalize_version(version: str) -> str:
    """A leading `0:` epoch is the same as none."""
    text = version.strip()
    return text[2:] if text.startswith("0:") else text


@dataclass(frozen=True)
class ScannerReport:
    """Everything one scanner said about one image: who, which DB, and the findings."""

    scanner: str
    scanner_version: str
    db_built: str | None
    findings: tuple[Finding, ...]
    target_digest: str = ""
    target_name: str = ""
    operating_system: str = ""


class ScanOutputError(ScError):
    """A scanner's JSON output could not be read (malformed, truncated, oversized or not that tool's format)."""
