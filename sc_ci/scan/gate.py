"""The scan gate: failOn per scanner and on the merged set, onlyFixed, the ignore list and VEX, as one Verdict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType

import yaml
from pydantic import ValidationError

from sc_ci.config.model import ScanConfig, ScanIgnore
from sc_ci.errors import ConfigError
from sc_ci.scan import fields as f
from sc_ci.scan.interface import SEVERITIES, Finding, Severity, normalize_id, normalize_package, normalize_version
from sc_ci.scan.merge import MergeResult
from sc_ci.scan.vex import VexDocument

MERGED = "merged"
MAX_IGNORE_FILE_BYTES = 4 * 1024 * 1024
MAX_IGNORE_ENTRIES = 10_000


@dataclass(frozen=True)
class IgnoreRule:
    """An accepted finding: the vulnerability id (any alias), optionally one package, a reason, an expiry date."""

    id: str
    reason: str
    expires: date | None = None
    package: str | None = None  # a name, or name@version
    origin: str = "security.scan.ignore"  # where the entry was written, for messages

    def expired(self, today: date) -> bool:
        """Valid through its expiry date; from the next day on it ignores nothing."""
        return self.expires is not None and today > self.expires

    def matches(self, finding: Finding) -> bool:
        if normalize_id(self.id) not in finding.ids:
            return False
        if self.package is None:
            return True
        cut = self.package.rfind("@")  # > 0: an npm scope (@types/node) starts with @ too
        name, version = (self.package[:cut], self.package[cut + 1:]) if cut > 0 else (self.package, None)
        if normalize_package(name) != normalize_package(finding.package):
            return False
        return version is None or normalize_version(version) == normalize_version(finding.version)

    @classmethod
    def from_config(cls, entry: ScanIgnore, origin: str) -> IgnoreRule:
        return cls(entry.id, entry.reason, entry.expires, entry.package, origin)


class SuppressionKind(StrEnum):
    IGNORE = "ignore"
    VEX = "vex"
    ONLY_FIXED = "only-fixed"


@dataclass(frozen=True)
class Suppressed:
    """A finding that does not count for the gate, and why (never dropped without a trace)."""

    finding: Finding
    kind: SuppressionKind
    reason: str
    rule: str = ""  # the ignore entry (security.scan.ignore[2]) or the VEX statement that did it
    expires: date | None = None  # an ignore entry's expiry: from the next day on the finding counts again


@dataclass(frozen=True)
class Blocking:
    """A finding that trips the gate, and which gates (scanner names and/or "merged") it trips."""

    finding: Finding
    gates: tuple[str, ...]


@dataclass(frozen=True)
class GatePolicy:
    fail_on: Mapping[str, Severity | None] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    merged_fail_on: Severity | None = None
    only_fixed: bool = False
    ignore: tuple[IgnoreRule, ...] = ()
    vex: VexDocument | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fail_on", MappingProxyType(dict(self.fail_on)))

    @classmethod
    def from_config(cls, scan: ScanConfig, *, ignore_file: Sequence[IgnoreRule] = (),
                    vex: VexDocument | None = None) -> GatePolicy:
        """`scan.failOn` gates the merged set; each tool's failOn (inherited from scan.failOn) gates its own."""
        rules = tuple(IgnoreRule.from_config(e, f"security.scan.ignore[{i}]") for i, e in enumerate(scan.ignore))
        return cls(
            fail_on={t.name: _sev(t.fail_on) for t in scan.tools},
            merged_fail_on=_sev(scan.fail_on),
            only_fixed=scan.only_fixed,
            ignore=rules + tuple(ignore_file),
            vex=vex,
        )


def _sev(value: str | None) -> Severity | None:
    return None if value is None else Severity(value)


@dataclass(frozen=True)
class Verdict:
    """Whether the gate tripped, on what, the counts that decided it, and everything it did not count."""

    tripped: bool
    threshold: Severity | None  # the merged set's
    thresholds: Mapping[str, Severity | None]  # per scanner
    tripped_by: tuple[str, ...]
    #: scope (each scanner, and "merged") → severity → findings that count
    counts: Mapping[str, Mapping[Severity, int]]
    counted: tuple[Finding, ...]
    blocking: tuple[Blocking, ...]
    suppressed: tuple[Suppressed, ...]
    warnings: tuple[str, ...]

    def total(self, scope: str = MERGED) -> int:
        return sum(self.counts.get(scope, {}).values())


def evaluate(merged: MergeResult, policy: GatePolicy, *, today: date, image: str = "",
             digest: str = "") -> Verdict:
    """Apply ignore entries, then VEX, then onlyFixed, then every threshold; pure (today is passed in)."""
    digest = digest or merged.target_digest or image.partition("@")[2]
    warnings: list[str] = []
    live_rules: list[IgnoreRule] = []
    for rule in policy.ignore:
        if rule.expired(today):
            warnings.append(f"{rule.origin}: the ignore entry for {rule.id} expired on {rule.expires:%Y-%m-%d} and "
                            f"no longer suppresses it (renew or remove it; its reason was: {rule.reason})")
        else:
            live_rules.append(rule)
    if policy.vex is not None:
        warnings.extend(policy.vex.warnings)
    used: set[int] = set()
    counted: list[Finding] = []
    suppressed: list[Suppressed] = []
    for finding in merged.findings:
        why = _suppression(finding, live_rules, used, policy, image, digest)
        if why is not None:
            suppressed.append(why)
        elif policy.only_fixed and not finding.has_fix:
            suppressed.append(Suppressed(finding, SuppressionKind.ONLY_FIXED,
                                         "no fix is available, and onlyFixed counts only findings with a fix",
                                         "security.scan.onlyFixed"))
        else:
            counted.append(finding)
    warnings.extend(f"{rule.origin}: the ignore entry for {rule.id} matched no finding"
                    for i, rule in enumerate(live_rules) if i not in used)
    thresholds = {s: policy.fail_on.get(s) for s in merged.scanners}
    blocking = []
    tripped_by: dict[str, None] = {}
    for finding in counted:
        gates = [s for s in merged.scanners if s in finding.found_by and (t := thresholds.get(s)) is not None
                 and finding.severity_by(s).at_least(t)]
        if policy.merged_fail_on is not None and finding.top_severity.at_least(policy.merged_fail_on):
            gates.append(MERGED)
        if gates:
            blocking.append(Blocking(finding, tuple(gates)))
            tripped_by.update(dict.fromkeys(gates))
    return Verdict(
        tripped=bool(blocking),
        threshold=policy.merged_fail_on,
        thresholds=MappingProxyType(thresholds),
        tripped_by=tuple(g for g in (*merged.scanners, MERGED) if g in tripped_by),
        counts=_counts(counted, merged.scanners),
        counted=tuple(counted),
        blocking=tuple(blocking),
        suppressed=tuple(suppressed),
        warnings=tuple(warnings),
    )


def _suppression(finding: Finding, rules: Sequence[IgnoreRule], used: set[int], policy: GatePolicy,
                 image: str, digest: str) -> Suppressed | None:
    for i, rule in enumerate(rules):
        if rule.matches(finding):
            used.add(i)
            until = f" (until {rule.expires:%Y-%m-%d})" if rule.expires else ""
            return Suppressed(finding, SuppressionKind.IGNORE, f"{rule.reason}{until}", rule.origin, rule.expires)
    if policy.vex is not None:
        statement = policy.vex.statement_for(finding, image=image, digest=digest)
        if statement is not None and statement.suppresses:
            return Suppressed(finding, SuppressionKind.VEX, statement.reason,
                              f"VEX statements[{statement.index}] ({statement.vulnerability})")
    return None


def _counts(findings: Iterable[Finding], scanners: Sequence[str]) -> Mapping[str, Mapping[Severity, int]]:
    counts: dict[str, dict[Severity, int]] = {s: dict.fromkeys(SEVERITIES, 0) for s in (*scanners, MERGED)}
    for finding in findings:
        counts[MERGED][finding.top_severity] += 1
        for scanner in finding.found_by:
            if scanner in counts:
                counts[scanner][finding.severity_by(scanner)] += 1
    return MappingProxyType({k: MappingProxyType(v) for k, v in counts.items()})


def load_ignore_file(data: bytes | str, *, where: str) -> tuple[IgnoreRule, ...]:
    """A YAML/JSON ignore file: a list of {id, reason, expires, package}, or {ignore: [...]}."""
    if len(data) > MAX_IGNORE_FILE_BYTES:
        raise ConfigError(f"the ignore file is over {MAX_IGNORE_FILE_BYTES} bytes", path=where,
                          fix="keep only entries for vulnerabilities that are still reported")
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError("the ignore file is not valid YAML or JSON", path=where,
                          why=f.text(str(exc), 300), fix=_IGNORE_FIX) from exc
    if isinstance(doc, dict) and set(doc) <= {"ignore"}:
        doc = doc.get("ignore")
    if doc is None:
        return ()
    if not isinstance(doc, list):
        raise ConfigError("the ignore file must hold a list of entries", path=where, fix=_IGNORE_FIX)
    if len(doc) > MAX_IGNORE_ENTRIES:
        raise ConfigError(f"the ignore file has more than {MAX_IGNORE_ENTRIES} entries", path=where,
                          fix="keep only entries for vulnerabilities that are still reported")
    rules = []
    for i, entry in enumerate(doc):
        try:
            parsed = ScanIgnore.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"entry {i}: {first['msg']}", path=f"{where}[{i}]" + (f".{key}" if key else ""),
                              fix=_IGNORE_FIX) from None
        rules.append(IgnoreRule.from_config(parsed, f"{where}[{i}]"))
    return tuple(rules)


_IGNORE_FIX = ("ignore:\n  - id: CVE-2024-12345\n    reason: the vulnerable function is never called\n"
               "    expires: 2025-12-31\n    package: openssl   # optional")
