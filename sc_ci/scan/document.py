"""The normalized scan report (schema `sc-ci/scan-report/v1`): merged findings, the verdict, what was suppressed."""

from __future__ import annotations

from typing import Any

from sc_ci.scan.gate import Verdict
from sc_ci.scan.interface import Finding
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
                        "kind": str(s.kind), "reason": s.reason, "rule": s.rule} for s in verdict.suppressed],
        "disagreements": [{"kind": str(d.kind), "id": d.finding_id, "package": d.package, "version": d.version,
                           "said": dict(d.said)} for d in merged.disagreements],
    }
