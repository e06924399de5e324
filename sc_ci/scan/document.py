"""The normalized scan report (schema `sc-ci/scan-report/v1`): merged findings, the verdict, what was suppressed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sc_ci.scan.gate import GatePolicy, IgnoreRule, Verdict
from sc_ci.scan.interface import Finding, FixState, Severity, parse_severity
from sc_ci.scan.merge import MergeResult

SCHEMA = "sc-ci/scan-report/v1"
"""Version 1 of the report, documented in tests/data/schemas/sc-ci-scan-report-v1.schema.json.

Top level: `schema` (this string), `image`, `digest`, `operatingSystem`, `scanners[]` ({name, version, dbBuilt,
findings}), `deduplicated` (findings reported under a different id by another scanner, counted once), `gate`
({tripped, threshold, thresholds, trippedBy, counts, warnings}), `findings[]` (each merged finding, with `counted`
and `blocking`), `suppressed[]` ({id, package, version, kind, reason, rule}) and `disagreements[]`. Additive
changes keep v1; a removed or re-typed key makes v2.
"""


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.id,
        "aliases": sorted(finding.aliases),
        "package": {"name": finding.package, "version": finding.version, "type": finding.type,
                    "purl": finding.purl},
        "location": finding.location,
        "severity": str(finding.top_severity),
        "severityBy": {s: str(v) for s, v in sorted(finding.severity.items())},
        "cvss": [{"source": c.source, "version": c.version, "vector": c.vector, "score": c.score}
                 for c in finding.cvss],
        "fix": {"state": str(finding.fix_state), "versions": list(finding.fix_versions)},
        "dataSource": finding.data_source,
        "urls": list(finding.urls),
        "title": finding.title,
        "description": finding.description,
        "foundBy": sorted(finding.found_by),
    }


def render(merged: MergeResult, verdict: Verdict, *, image: str) -> dict[str, Any]:
    """The whole report as a JSON-ready dict, in a stable order (findings worst first, as merged)."""
    blocking = {b.finding: list(b.gates) for b in verdict.blocking}
    counted = set(verdict.counted)
    findings = []
    for finding in merged.findings:
        entry = finding_json(finding)
        entry["counted"] = finding in counted
        entry["blocking"] = blocking.get(finding, [])
        findings.append(entry)
    return {
        "schema": SCHEMA,
        "image": image,
        "digest": merged.target_digest or image.partition("@")[2],
        "operatingSystem": merged.operating_system,
        "scanners": [{"name": r.scanner, "version": r.scanner_version, "dbBuilt": r.db_built,
                      "findings": len(r.findings)} for r in merged.reports],
        "deduplicated": merged.deduplicated,
        "gate": {
            "tripped": verdict.tripped,
            "threshold": None if verdict.threshold is None else str(verdict.threshold),
            "thresholds": {s: None if t is None else str(t) for s, t in verdict.thresholds.items()},
            "trippedBy": list(verdict.tripped_by),
            "counts": {scope: {str(sev): n for sev, n in by.items()} for scope, by in verdict.counts.items()},
            "warnings": list(verdict.warnings),
        },
        "findings": findings,
        "suppressed": [{"id": s.finding.id, "package": s.finding.package, "version": s.finding.version,
                        "kind": str(s.kind), "reason": s.reason, "rule": s.rule,
                        "expires": s.expires.isoformat() if s.expires else None} for s in verdict.suppressed],
        "disagreements": [{"kind": str(d.kind), "id": d.finding_id, "package": d.package, "version": d.version,
                           "said": dict(d.said)} for d in merged.disagreements],
    }


# ---------------------------------------------------------------------------------------------- read back


MAX_FINDINGS = 100_000


def _map(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object, limit: int = 1024) -> str:
    return value[:limit] if isinstance(value, str) else ""


def findings_of(report: Mapping[str, Any]) -> tuple[Finding, ...]:
    """The merged findings a report (e.g. the predicate of a signed vuln attestation) lists, as findings the
    gate can evaluate again: ids, package, severities per scanner, fix, who found it. Malformed entries are
    left out; at most MAX_FINDINGS."""
    found: list[Finding] = []
    entries = report.get("findings")
    for entry in entries[:MAX_FINDINGS] if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not _text(entry.get("id")):
            continue
        package, by = _map(entry.get("package")), _map(entry.get("severityBy"))
        severity = {str(k)[:40]: parse_severity(v) for k, v in by.items()} or {
            "report": parse_severity(entry.get("severity"))}
        fix = _map(entry.get("fix"))
        versions = _list(fix.get("versions"))
        try:
            state = FixState(_text(fix.get("state")))
        except ValueError:
            state = FixState.UNKNOWN
        aliases, found_by = _list(entry.get("aliases")), _list(entry.get("foundBy"))
        found.append(Finding(
            id=_text(entry.get("id")), package=_text(package.get("name")), version=_text(package.get("version")),
            type=_text(package.get("type")), purl=_text(package.get("purl")),
            aliases=frozenset(_text(a) for a in aliases if _text(a)), severity=severity,
            fix_versions=tuple(_text(v) for v in versions if _text(v)), fix_state=state,
            title=_text(entry.get("title")), found_by=frozenset(_text(s, 40) for s in found_by if _text(s, 40))))
    return tuple(found)


def merged_of(report: Mapping[str, Any]) -> MergeResult:
    findings = findings_of(report)
    scanners = tuple(sorted({s for f in findings for s in f.found_by})) or ("report",)
    return MergeResult(findings, scanners, (), 0)


def recorded_policy(report: Mapping[str, Any]) -> GatePolicy:
    """The gate the report was made with, as it recorded it: the merged and per-scanner thresholds, and each
    suppression (an ignore entry with its expiry, a VEX statement, onlyFixed) as a rule for that finding."""
    gate = _map(report.get("gate"))
    thresholds = _map(gate.get("thresholds"))
    rules: list[IgnoreRule] = []
    only_fixed = False
    entries = report.get("suppressed")
    for entry in entries[:MAX_FINDINGS] if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not _text(entry.get("id")):
            continue
        kind = _text(entry.get("kind"))
        if kind == "only-fixed":
            only_fixed = True
            continue
        try:
            expires = date.fromisoformat(_text(entry.get("expires"))) if entry.get("expires") else None
        except ValueError:
            expires = None
        package = _text(entry.get("package"))
        version = _text(entry.get("version"))
        origin = f"{_text(entry.get('rule')) or kind} (as the release recorded it)"
        rules.append(IgnoreRule(_text(entry.get("id")), _text(entry.get("reason")) or kind,
                                expires if kind == "ignore" else None,
                                f"{package}@{version}" if package and version else (package or None), origin))
    return GatePolicy(fail_on={str(k)[:40]: _severity(v) for k, v in thresholds.items()},
                      merged_fail_on=_severity(gate.get("threshold")), only_fixed=only_fixed, ignore=tuple(rules))


def _severity(value: object) -> Severity | None:
    if not isinstance(value, str) or not value:
        return None
    found = parse_severity(value)
    return None if found is Severity.UNKNOWN else found
