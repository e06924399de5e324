"""SARIF 2.1.0 for GitHub code scanning: one rule per vulnerability, one result per finding, stable order."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from sc_ci.scan.gate import Suppressed, Verdict
from sc_ci.scan.interface import Finding, Severity, worst
from sc_ci.scan.merge import MergeResult, sort_key

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "sc-ci"
TOOL_URI = "https://github.com/simple-container-com/sc-security-action"
#: security-severity when no CVSS score is known (GitHub: ≥9 critical, ≥7 high, ≥4 medium, >0 low)
SEVERITY_SCORE = {Severity.CRITICAL: 9.5, Severity.HIGH: 8.0, Severity.MEDIUM: 5.5, Severity.LOW: 2.0,
                  Severity.NEGLIGIBLE: 0.0}
_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning"}
MAX_TEXT = 1000


def security_severity(findings: Sequence[Finding]) -> str | None:
    """The highest CVSS base score of the rule's findings, else the mapped worst severity (None if unknown)."""
    scores = [s for s in (f.max_score for f in findings) if s is not None]
    if scores:
        return f"{max(scores):.1f}"
    mapped = SEVERITY_SCORE.get(worst(f.top_severity for f in findings))
    return None if mapped is None else f"{mapped:.1f}"


def render(merged: MergeResult, verdict: Verdict | None = None, *, image: str, dockerfile: str | None = None,
           tool_version: str = "0.0.0") -> dict[str, Any]:
    """The SARIF log (a dict) for one image; suppressed findings are results with a `suppressions` entry."""
    suppressed = {s.finding: s for s in verdict.suppressed} if verdict else {}
    findings = sorted(merged.findings, key=lambda f: (f.id, f.package, f.version, f.location))
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.id, []).append(finding)
    rule_ids = sorted(by_rule)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    image_name = image.partition("@")[0]
    results = [_result(f, index[f.id], image, image_name, dockerfile, suppressed.get(f)) for f in findings]
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": TOOL_NAME,
            "version": tool_version,
            "informationUri": TOOL_URI,
            "rules": [_rule(rid, by_rule[rid]) for rid in rule_ids],
        }},
        "automationDetails": {"id": f"sc-ci/scan/{image_name}/"},
        "results": results,
        "properties": {
            "image": image,
            "scanners": {r.scanner: r.scanner_version for r in merged.reports},
            "deduplicated": merged.deduplicated,
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _rule(rule_id: str, findings: Sequence[Finding]) -> dict[str, Any]:
    first = min(findings, key=sort_key)
    top = worst(f.top_severity for f in findings)
    summary = _clip(first.title or f"{rule_id} ({top})")
    text = _clip(first.description or summary)
    properties: dict[str, Any] = {"tags": ["security", "vulnerability", str(top)], "precision": "very-high"}
    score = security_severity(findings)
    if score is not None:
        properties["security-severity"] = score
    fixes = sorted({v for f in findings for v in f.fix_versions})
    packages = sorted({f"{f.package} {f.version}" for f in findings})
    help_text = (f"{rule_id} affects {', '.join(packages)}. "
                 + (f"Fixed in {', '.join(fixes)}." if fixes else "No fix is available yet."))
    rule: dict[str, Any] = {
        "id": rule_id,
        "name": "".join(ch for ch in rule_id.title() if ch.isalnum()) or "Vulnerability",
        "shortDescription": {"text": summary},
        "fullDescription": {"text": text},
        "defaultConfiguration": {"level": _LEVEL.get(top, "note")},
        "help": {"text": _clip(help_text)},
        "properties": properties,
    }
    uri = next((f.data_source for f in findings if f.data_source.startswith(("https://", "http://"))), "")
    if uri:
        rule["helpUri"] = uri
    return rule


def artifact_uri(finding: Finding, image_name: str, dockerfile: str | None) -> str:
    """A valid relative URI reference (RFC 3986 §4.2; the SARIF Multitool's SARIF1002 checks it): the Dockerfile
    in the repository when known (code scanning links to it); else where the package lives inside the image
    (as grype's own SARIF locates container findings), under the image name; the image name's `host:port` colon
    percent-encoded, since a first path segment with a colon would read as a URI scheme."""
    if dockerfile:
        return quote(dockerfile.lstrip("/"), safe="/")
    base = quote(image_name, safe="/")
    location = finding.location.split(":", 1)[0].strip() if finding.location else ""
    return f"{base}/{quote(location.lstrip('/'), safe='/')}" if location.startswith("/") else base


def _result(finding: Finding, rule_index: int, image: str, image_name: str, dockerfile: str | None,
            suppressed: Suppressed | None) -> dict[str, Any]:
    fixes = ", ".join(finding.fix_versions)
    message = (f"{finding.package} {finding.version} in {image_name} is affected by {finding.id} "
               f"({finding.top_severity}). " + (f"Fixed in {fixes}." if fixes else "No fix is available yet."))
    package_ref = finding.purl or f"{finding.package}@{finding.version}"
    result: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "level": _LEVEL.get(finding.top_severity, "note"),
        "message": {"text": _clip(message)},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": artifact_uri(finding, image_name, dockerfile)},
                "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
            },
            "logicalLocations": [
                {"name": image, "kind": "resource", "fullyQualifiedName": image},
                {"name": f"{finding.package}@{finding.version}", "kind": "module",
                 "fullyQualifiedName": f"{image_name}/{package_ref}"},
            ],
        }],
        "partialFingerprints": {"scFinding/v1": _fingerprint(image_name, finding)},
        "properties": _properties(finding),
    }
    if suppressed is not None:
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": _clip(f"{suppressed.kind}: {suppressed.reason}")}]
    return result


def _properties(finding: Finding) -> Mapping[str, Any]:
    return {
        "package": finding.package,
        "installedVersion": finding.version,
        "packageType": finding.type,
        "purl": finding.purl,
        "location": finding.location,
        "fixedVersions": list(finding.fix_versions),
        "fixState": str(finding.fix_state),
        "aliases": sorted(finding.aliases),
        "foundBy": sorted(finding.found_by),
        "severity": str(finding.top_severity),
    }


def _fingerprint(image_name: str, finding: Finding) -> str:
    key = "\0".join((image_name, finding.package, finding.version, finding.id))
    return hashlib.sha256(key.encode()).hexdigest()


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
