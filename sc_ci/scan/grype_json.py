"""Parse grype's JSON output (`grype … -o json`) into a ScannerReport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sc_ci.scan import fields as f
from sc_ci.scan.interface import (
    Cvss,
    Finding,
    FixState,
    ScannerReport,
    normalize_id,
    parse_severity,
)

TOOL = "grype"
_FIX_STATES = {"fixed": FixState.FIXED, "not-fixed": FixState.NOT_FIXED, "wont-fix": FixState.WONT_FIX}


def parse(data: bytes | str) -> ScannerReport:
    """The JSON text grype printed → ScannerReport; ScanOutputError when it is not grype JSON."""
    return parse_document(f.load_json(data, tool=TOOL))


def parse_document(doc: object) -> ScannerReport:
    top = f.obj(doc, tool=TOOL, where="the document", optional=False)
    if "matches" not in top:
        raise f.bad(TOOL, "the document", "a grype report (it has no `matches` key)")
    matches = f.items(top.get("matches"), tool=TOOL, where="matches", limit=f.MAX_FINDINGS)
    findings = tuple(_finding(m, f"matches[{i}]") for i, m in enumerate(matches))
    descriptor = f.obj(top.get("descriptor"), tool=TOOL, where="descriptor")
    digest, name = _target(f.obj(top.get("source"), tool=TOOL, where="source"))
    return ScannerReport(
        scanner=TOOL,
        scanner_version=f.text(descriptor.get("version"), f.MAX_ID),
        db_built=_db_built(descriptor.get("db")) or None,
        findings=findings,
        target_digest=digest,
        target_name=name,
        operating_system=_distro(top.get("distro")),
    )


def _finding(match: object, where: str) -> Finding:
    m = f.obj(match, tool=TOOL, where=where, optional=False)
    vuln = f.obj(m.get("vulnerability"), tool=TOOL, where=f"{where}.vulnerability", optional=False)
    art = f.obj(m.get("artifact"), tool=TOOL, where=f"{where}.artifact", optional=False)
    vid = normalize_id(f.required(vuln.get("id"), tool=TOOL, where=f"{where}.vulnerability.id", limit=f.MAX_ID))
    fix = f.obj(vuln.get("fix"), tool=TOOL, where=f"{where}.vulnerability.fix")
    fixes = f.texts(fix.get("versions"), tool=TOOL, where=f"{where}.vulnerability.fix.versions", limit=f.MAX_FIXES)
    state = _FIX_STATES.get(f.text(fix.get("state")).lower(), FixState.UNKNOWN)
    if state is FixState.UNKNOWN and fixes:
        state = FixState.FIXED
    namespace = f.text(vuln.get("namespace"), f.MAX_ID)
    cvss = list(_cvss(vuln.get("cvss"), namespace, f"{where}.vulnerability.cvss"))
    aliases: set[str] = set()
    description = f.text(vuln.get("description"), f.MAX_TEXT)
    related = f.items(m.get("relatedVulnerabilities"), tool=TOOL, where=f"{where}.relatedVulnerabilities",
                      limit=f.MAX_ALIASES)
    for j, rel in enumerate(related):
        rwhere = f"{where}.relatedVulnerabilities[{j}]"
        r = f.obj(rel, tool=TOOL, where=rwhere, optional=False)
        rid = normalize_id(f.text(r.get("id"), f.MAX_ID))
        if rid and rid != vid:
            aliases.add(rid)
        description = description or f.text(r.get("description"), f.MAX_TEXT)
        cvss.extend(_cvss(r.get("cvss"), f.text(r.get("namespace"), f.MAX_ID), f"{rwhere}.cvss"))
    return Finding(
        id=vid,
        package=f.required(art.get("name"), tool=TOOL, where=f"{where}.artifact.name"),
        version=f.text(art.get("version")),
        type=f.text(art.get("type"), f.MAX_ID),
        purl=f.text(art.get("purl"), f.MAX_URL),
        location=_location(art.get("locations"), f"{where}.artifact.locations"),
        aliases=frozenset(aliases),
        severity={TOOL: parse_severity(vuln.get("severity"))},
        cvss=tuple(dict.fromkeys(cvss))[: f.MAX_CVSS],
        fix_versions=fixes,
        fix_state=state,
        data_source=f.text(vuln.get("dataSource"), f.MAX_URL),
        urls=f.texts(vuln.get("urls"), tool=TOOL, where=f"{where}.vulnerability.urls", limit=f.MAX_URLS,
                     each=f.MAX_URL),
        description=description,
        found_by=frozenset({TOOL}),
    )


def _cvss(value: object, namespace: str, where: str) -> list[Cvss]:
    out = []
    for i, entry in enumerate(f.items(value, tool=TOOL, where=where, limit=f.MAX_CVSS)):
        c = f.obj(entry, tool=TOOL, where=f"{where}[{i}]", optional=False)
        metrics = f.obj(c.get("metrics"), tool=TOOL, where=f"{where}[{i}].metrics")
        vector = f.text(c.get("vector"), f.MAX_NAME)
        score = f.number(metrics.get("baseScore"))
        if vector or score is not None:
            source = f.text(c.get("source"), f.MAX_ID) or namespace or "unknown"
            out.append(Cvss(source=source, version=f.text(c.get("version"), 16), vector=vector, score=score))
    return out


def _location(value: object, where: str) -> str:
    locations = f.items(value, tool=TOOL, where=where, limit=100_000)
    for loc in locations:
        if isinstance(loc, Mapping):
            path = f.text(loc.get("path"), f.MAX_URL)
            if path:
                return path
            layer = f.text(loc.get("layerID"), f.MAX_ID)
            if layer:
                return layer
    return ""


def _db_built(db: object) -> str:
    """Old grype: descriptor.db.built; DB schema v6: descriptor.db.status.built."""
    if not isinstance(db, Mapping):
        return ""
    status = db.get("status")
    if isinstance(status, Mapping) and f.text(status.get("built"), 64):
        return f.text(status.get("built"), 64)
    return f.text(db.get("built"), 64)


def _target(source: Mapping[str, Any]) -> tuple[str, str]:
    target = source.get("target")
    if not isinstance(target, Mapping):
        return "", f.text(target)
    digest = f.text(target.get("manifestDigest"), f.MAX_ID)
    repo_digests = target.get("repoDigests")
    if not digest and isinstance(repo_digests, list) and repo_digests:
        digest = f.text(repo_digests[0], f.MAX_NAME).partition("@")[2]
    return digest, f.text(target.get("userInput"))


def _distro(value: object) -> str:
    if not isinstance(value, Mapping):
        return ""
    return " ".join(p for p in (f.text(value.get("name"), 64), f.text(value.get("version"), 64)) if p)
