"""GitLab's container-scanning security report (schema 15.0.7) from the merged findings."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sc_ci.scan.gate import Verdict
from sc_ci.scan.interface import Finding, Severity, is_cve, is_ghsa
from sc_ci.scan.merge import MergeResult

SCHEMA_VERSION = "15.0.7"
SCHEMA_URL = ("https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v15.0.7/dist/"
              "container-scanning-report-format.json")
_SEVERITY = {Severity.CRITICAL: "Critical", Severity.HIGH: "High", Severity.MEDIUM: "Medium",
             Severity.LOW: "Low", Severity.NEGLIGIBLE: "Info", Severity.UNKNOWN: "Unknown"}
_NAMESPACE = uuid.UUID("5c0a3f0e-6a43-4b59-9d4c-2f1d5c3e9a10")  # fixed: the same finding keeps its id
_URL = re.compile(r"^(https?|ftp)://.+")
# the two vector forms the schema accepts (its own patterns, CVSS v2 and v3.x); others (v4) are left out
_V2 = r"(AV:[NAL]|AC:[LMH]|Au:[MSN]|[CIA]:[NPC]|E:(U|POC|F|H|ND)|RL:(OF|TF|W|U|ND)|RC:(UC|UR|C|ND)|CDP:(N|L|LM|MH|H|ND)|TD:(N|L|M|H|ND)|[CIA]R:(L|M|H|ND))"  # noqa: E501
_V3 = r"(AV:[NALP]|AC:[LH]|PR:[NLH]|UI:[NR]|S:[UC]|[CIA]:[NLH]|E:[XUPFH]|RL:[XOTWU]|RC:[XURC]|[CIA]R:[XLMH]|MAV:[XNALP]|MAC:[XLH]|MPR:[XNLH]|MUI:[XNR]|MS:[XUC]|M[CIA]:[XNLH])"  # noqa: E501
_CVSS2 = re.compile(f"^({_V2}/)*{_V2}$")
_CVSS3 = re.compile(f"^CVSS:3[.][01]/({_V3}/)*{_V3}$")

def gitlab_time(moment: datetime) -> str:
    """yyyy-mm-ddThh:mm:ss in UTC (the schema's pattern: no zone, no fraction)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def render(merged: MergeResult, verdict: Verdict | None = None, *, image: str, started: datetime,
           finished: datetime, analyzer_version: str = "0.0.0", status: str = "success") -> dict[str, Any]:
    """The report as a dict. Suppressed findings are left out of `vulnerabilities` and listed in scan.messages."""
    suppressed = {s.finding: s for s in verdict.suppressed} if verdict else {}
    os_name = merged.operating_system or "unknown"
    vulnerabilities = [_vulnerability(f, image, os_name) for f in merged.findings if f not in suppressed]
    messages = [{"level": "info", "value": _clip(f"not reported: {s.finding.id} in {s.finding.package} "
                                                 f"{s.finding.version} ({s.kind}: {s.reason})", 2000)}
                for s in (verdict.suppressed if verdict else ())]
    messages += [{"level": "warn", "value": _clip(w, 2000)} for w in (verdict.warnings if verdict else ())]
    scanners = merged.reports
    scan: dict[str, Any] = {
        "analyzer": {"id": "sc-ci", "name": "sc-ci", "version": analyzer_version or "0.0.0",
                     "vendor": {"name": "Simple Container"}},
        "scanner": {
            "id": "+".join(r.scanner for r in scanners) or "sc-ci",
            "name": " + ".join(r.scanner for r in scanners) or "sc-ci",
            "version": ", ".join(f"{r.scanner} {r.scanner_version or 'unknown'}" for r in scanners) or "unknown",
            "vendor": {"name": "Anchore, Aqua Security" if len(scanners) > 1 else _vendor(scanners)},
        },
        "type": "container_scanning",
        "start_time": gitlab_time(started),
        "end_time": gitlab_time(finished),
        "status": status,
    }
    if messages:
        scan["messages"] = messages
    return {"version": SCHEMA_VERSION, "schema": SCHEMA_URL, "scan": scan, "vulnerabilities": vulnerabilities}


def _vendor(reports: Sequence[Any]) -> str:
    names = {"grype": "Anchore", "trivy": "Aqua Security"}
    return names.get(reports[0].scanner, reports[0].scanner) if reports else "Simple Container"


def _vulnerability(finding: Finding, image: str, os_name: str) -> dict[str, Any]:
    fixes = ", ".join(finding.fix_versions)
    out: dict[str, Any] = {
        "id": str(uuid.uuid5(_NAMESPACE, "\0".join((image.partition("@")[0], finding.package, finding.version,
                                                     finding.id)))),
        "name": _clip(finding.title or f"{finding.id} in {finding.package}", 255),
        "description": _clip(finding.description or f"{finding.package} {finding.version} is affected by "
                                                     f"{finding.id}.", 1048576),
        "severity": _SEVERITY[finding.top_severity],
        "solution": _clip(f"Upgrade {finding.package} to {fixes}." if fixes else "No fix is available yet.", 7000),
        "identifiers": _identifiers(finding),
        "location": {
            "dependency": {"package": {"name": finding.package}, "version": finding.version},
            "operating_system": os_name,
            "image": image or "unknown",
        },
    }
    links = [{"url": u} for u in dict.fromkeys((finding.data_source, *finding.urls)) if _URL.match(u)]
    if links:
        out["links"] = links[:20]
    vectors = [{"vendor": c.source or "unknown", "vector": c.vector} for c in finding.cvss
               if (_CVSS3.match(c.vector) and 32 <= len(c.vector) <= 128)
               or (_CVSS2.match(c.vector) and 16 <= len(c.vector) <= 128)]
    if vectors:
        out["cvss_vectors"] = vectors[:10]
    return out


def _identifiers(finding: Finding) -> list[dict[str, str]]:
    ids = [finding.id, *sorted(finding.aliases)]
    out = []
    for vid in ids:
        kind = "cve" if is_cve(vid) else "ghsa" if is_ghsa(vid) else (vid.split("-", 1)[0].lower() or "id")
        entry = {"type": kind, "name": vid, "value": vid}
        url = _identifier_url(vid, finding)
        if url:
            entry["url"] = url
        out.append(entry)
    return out


def _identifier_url(vid: str, finding: Finding) -> str:
    if is_cve(vid):
        return f"https://nvd.nist.gov/vuln/detail/{vid}"
    if is_ghsa(vid):
        return f"https://github.com/advisories/{vid}"
    return finding.data_source if vid == finding.id and _URL.match(finding.data_source) else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
