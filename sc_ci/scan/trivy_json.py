"""Parse trivy's JSON output (`trivy image --format json`) into a ScannerReport."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sc_ci.scan import fields as f
from sc_ci.scan.interface import (
    Cvss,
    Finding,
    FixState,
    ScannerReport,
    is_cve,
    is_ghsa,
    normalize_id,
    parse_severity,
)

TOOL = "trivy"
MAX_REFERENCES = 1024  # read for aliases; only MAX_URLS are kept
_STATUS = {
    "fixed": FixState.FIXED,
    "affected": FixState.NOT_FIXED,
    "fix_deferred": FixState.NOT_FIXED,
    "under_investigation": FixState.NOT_FIXED,
    "will_not_fix": FixState.WONT_FIX,
    "end_of_life": FixState.WONT_FIX,
}
#: purl type → the package type names grype uses, so both scanners' findings say the same
_PURL_TYPES = {"apk": "apk", "deb": "deb", "rpm": "rpm", "pypi": "python", "npm": "npm", "golang": "go-module",
               "maven": "java-archive", "gem": "gem", "cargo": "rust-crate", "composer": "php-composer",
               "nuget": "dotnet", "conan": "conan", "hex": "hex", "pub": "dart-pub", "cocoapods": "pod",
               "swift": "swift", "bitnami": "bitnami"}
_RESULT_TYPES = {"alpine": "apk", "wolfi": "apk", "chainguard": "apk", "debian": "deb", "ubuntu": "deb",
                 "python-pkg": "python", "pip": "python", "pipenv": "python", "poetry": "python", "uv": "python",
                 "node-pkg": "npm", "npm": "npm", "yarn": "npm", "pnpm": "npm", "bun": "npm",
                 "gobinary": "go-module", "gomod": "go-module", "jar": "java-archive", "pom": "java-archive",
                 "gradle": "java-archive", "gemspec": "gem", "bundler": "gem", "cargo": "rust-crate",
                 "rustbinary": "rust-crate", "composer": "php-composer", "nuget": "dotnet",
                 "dotnet-core": "dotnet"}
_RPM_FAMILIES = {"redhat", "centos", "rocky", "alma", "almalinux", "amazon", "oracle", "fedora", "suse",
                 "opensuse", "opensuse.leap", "opensuse.tumbleweed", "sles", "photon", "cbl-mariner",
                 "azurelinux", "openeuler"}
_GHSA_IN_TEXT = re.compile(r"GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}", re.IGNORECASE)
_CVE_IN_TEXT = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)


def parse(data: bytes | str) -> ScannerReport:
    """The JSON text trivy printed → ScannerReport; ScanOutputError when it is not trivy JSON."""
    return parse_document(f.load_json(data, tool=TOOL))


def parse_document(doc: object) -> ScannerReport:
    """Schema 2 (an object with `Results`, omitted when empty); legacy trivy printed a bare list, or null."""
    if doc is None:
        top: Mapping[str, Any] = {}
        results: list[Any] = []
    elif isinstance(doc, list):
        top, results = {}, f.items(doc, tool=TOOL, where="the document", limit=f.MAX_FINDINGS)
    else:
        top = f.obj(doc, tool=TOOL, where="the document", optional=False)
        if not top.keys() & {"SchemaVersion", "ArtifactName", "Results"}:
            raise f.bad(TOOL, "the document", "a trivy report (no SchemaVersion, ArtifactName or Results)")
        results = f.items(top.get("Results"), tool=TOOL, where="Results", limit=f.MAX_FINDINGS)
    meta = f.obj(top.get("Metadata"), tool=TOOL, where="Metadata")
    findings: list[Finding] = []
    for i, result in enumerate(results):
        r = f.obj(result, tool=TOOL, where=f"Results[{i}]", optional=False)
        rtype = f.text(r.get("Type"), f.MAX_ID).lower()
        vulns = f.items(r.get("Vulnerabilities"), tool=TOOL, where=f"Results[{i}].Vulnerabilities",
                        limit=f.MAX_FINDINGS)
        for j, vuln in enumerate(vulns):
            findings.append(_finding(vuln, rtype, f"Results[{i}].Vulnerabilities[{j}]"))
            if len(findings) > f.MAX_FINDINGS:
                raise f.bad(TOOL, "Results", f"at most {f.MAX_FINDINGS} vulnerabilities")
    version = f.obj(top.get("Trivy"), tool=TOOL, where="Trivy").get("Version")
    return ScannerReport(
        scanner=TOOL,
        scanner_version=f.text(version, f.MAX_ID),
        db_built=None,  # trivy's JSON does not say; the tool wrapper reads metadata.json
        findings=tuple(findings),
        target_digest=_digest(meta.get("RepoDigests")),
        target_name=f.text(top.get("ArtifactName")),
        operating_system=_os(meta.get("OS")),
    )


def _finding(vuln: object, rtype: str, where: str) -> Finding:
    v = f.obj(vuln, tool=TOOL, where=where, optional=False)
    vid = normalize_id(f.required(v.get("VulnerabilityID"), tool=TOOL, where=f"{where}.VulnerabilityID",
                                  limit=f.MAX_ID))
    fixes = tuple(dict.fromkeys(p.strip() for p in f.text(v.get("FixedVersion"), f.MAX_TEXT).split(",")
                                if p.strip()))[: f.MAX_FIXES]
    state = _STATUS.get(f.text(v.get("Status"), 64).lower(), FixState.UNKNOWN)
    if state is FixState.UNKNOWN and fixes:
        state = FixState.FIXED
    refs = f.texts(v.get("References"), tool=TOOL, where=f"{where}.References", limit=MAX_REFERENCES,
                   each=f.MAX_URL)
    vendor_ids = f.texts(v.get("VendorIDs"), tool=TOOL, where=f"{where}.VendorIDs", limit=f.MAX_ALIASES,
                         each=f.MAX_ID)
    primary = f.text(v.get("PrimaryURL"), f.MAX_URL)
    ident = f.obj(v.get("PkgIdentifier"), tool=TOOL, where=f"{where}.PkgIdentifier")
    purl = f.text(ident.get("PURL"), f.MAX_URL)
    ds = v.get("DataSource")
    data_source = f.text(ds.get("URL"), f.MAX_URL) if isinstance(ds, Mapping) else ""
    return Finding(
        id=vid,
        package=f.required(v.get("PkgName"), tool=TOOL, where=f"{where}.PkgName"),
        version=f.text(v.get("InstalledVersion")),
        type=_type(purl, rtype),
        purl=purl,
        location=_location(v),
        aliases=_aliases(vid, vendor_ids, refs),
        severity={TOOL: parse_severity(v.get("Severity"))},
        cvss=_cvss(v.get("CVSS"), f"{where}.CVSS"),
        fix_versions=fixes,
        fix_state=state,
        data_source=primary or data_source,
        urls=tuple(dict.fromkeys(u for u in (primary, *refs) if u))[: f.MAX_URLS],
        title=f.text(v.get("Title"), f.MAX_NAME),
        description=f.text(v.get("Description"), f.MAX_TEXT),
        found_by=frozenset({TOOL}),
    )


def _aliases(vid: str, vendor_ids: tuple[str, ...], refs: tuple[str, ...]) -> frozenset[str]:
    """VendorIDs that are CVE/GHSA ids; GHSA ids in reference URLs; the CVE of a GHSA when exactly one is cited."""
    out = {normalize_id(i) for i in vendor_ids if is_cve(i) or is_ghsa(i)}
    out.update(normalize_id(m) for ref in refs for m in _GHSA_IN_TEXT.findall(ref))
    if not is_cve(vid):
        cves = {normalize_id(m) for ref in refs for m in _CVE_IN_TEXT.findall(ref)}
        if len(cves) == 1:
            out |= cves
    out.discard(vid)
    return frozenset(sorted(out)[: f.MAX_ALIASES])


def _cvss(value: object, where: str) -> tuple[Cvss, ...]:
    """{"nvd": {"V3Vector", "V3Score", "V2Vector", "V2Score", "V40Vector", "V40Score"}, "redhat": {…}}."""
    sources = f.obj(value, tool=TOOL, where=where)
    out: list[Cvss] = []
    for source, entry in list(sources.items())[: f.MAX_CVSS]:
        e = f.obj(entry, tool=TOOL, where=f"{where}.{f.text(source, 32)}")
        for key, default_version in (("V40", "4.0"), ("V3", "3.1"), ("V2", "2.0")):
            vector = f.text(e.get(f"{key}Vector"), f.MAX_NAME)
            score = f.number(e.get(f"{key}Score"))
            if vector or score is not None:
                version = vector.partition("/")[0].removeprefix("CVSS:") if vector.startswith("CVSS:") else ""
                out.append(Cvss(source=f.text(source, f.MAX_ID) or "unknown", version=version or default_version,
                                vector=vector, score=score))
    return tuple(out[: f.MAX_CVSS])


def _type(purl: str, rtype: str) -> str:
    if purl.startswith("pkg:"):
        ptype = purl[4:].partition("/")[0].lower()
        if ptype in _PURL_TYPES:
            return _PURL_TYPES[ptype]
    if rtype in _RPM_FAMILIES:
        return "rpm"
    return _RESULT_TYPES.get(rtype, rtype)


def _location(v: Mapping[str, Any]) -> str:
    path = f.text(v.get("PkgPath"), f.MAX_URL)
    if path:
        return path
    layer = v.get("Layer")
    if isinstance(layer, Mapping):
        return f.text(layer.get("DiffID"), f.MAX_ID) or f.text(layer.get("Digest"), f.MAX_ID)
    return ""


def _digest(value: object) -> str:
    if isinstance(value, list) and value:
        return f.text(value[0], f.MAX_NAME).partition("@")[2]
    return ""


def _os(value: object) -> str:
    if not isinstance(value, Mapping):
        return ""
    return " ".join(p for p in (f.text(value.get("Family"), 64), f.text(value.get("Name"), 64)) if p)
