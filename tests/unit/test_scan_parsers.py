"""grype and trivy JSON parsers: upstream sample outputs, normalization, and hostile input (only ScanOutputError)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sc_ci.scan import grype_json, trivy_json
from sc_ci.scan.fields import MAX_INPUT_BYTES, MAX_TEXT
from sc_ci.scan.interface import FixState, ScanOutputError, Severity, parse_severity

UPSTREAM = Path(__file__).parents[1] / "data" / "scan" / "upstream"


def load(name: str) -> bytes:
    return (UPSTREAM / name).read_bytes()


# ---------------------------------------------------------------------------------------------- grype samples


def test_grype_golden_images_presenter() -> None:
    report = grype_json.parse(load("grype-TestJsonImgsPresenter.golden.json"))
    assert report.scanner == "grype"
    assert report.target_digest == "sha256:ca738abb87a8d58f112d3400ebb079b61ceae7dc290beb34bda735be4b1941d5"
    assert report.operating_system == "centos 8.0"
    first, second = report.findings
    assert (first.id, first.package, first.version, first.type) == ("CVE-1999-0001", "package-1", "1.1.1", "rpm")
    assert first.severity == {"grype": Severity.LOW}
    assert first.fix_versions == ("1.2.1", "2.1.3", "3.4.0")
    assert first.fix_state is FixState.FIXED
    assert first.cvss[0].score == 8.2
    assert first.cvss[0].source == "nvd"
    assert first.cvss[0].version == "3.1"
    assert first.location == "/foo/bar/somefile-1.txt"
    assert second.severity["grype"] is Severity.CRITICAL
    assert second.fix_state is FixState.UNKNOWN
    assert not second.has_fix
    assert second.purl == "pkg:deb/package-2@2.2.2"
    assert first.found_by == frozenset({"grype"})


def test_grype_golden_empty_and_dirs() -> None:
    assert grype_json.parse(load("grype-TestEmptyJsonPresenter.golden.json")).findings == ()
    assert len(grype_json.parse(load("grype-TestJsonDirsPresenter.golden.json")).findings) == 2


def test_grype_defectdojo_all_fields() -> None:
    report = grype_json.parse(load("defectdojo-grype-check_all_fields.json"))
    assert report.scanner_version == "0.28.0"
    assert report.db_built == "2021-12-24T08:14:02Z"
    by_id = {(f.id, f.package): f for f in report.findings}
    krb = by_id[("CVE-2004-0971", "libgssapi-krb5-2")]
    assert krb.severity["grype"] is Severity.NEGLIGIBLE
    assert krb.fix_state is FixState.NOT_FIXED
    assert any(c.score == 2.1 and c.version == "2.0" for c in krb.cvss)  # from relatedVulnerabilities (nvd)
    assert krb.data_source == "https://security-tracker.debian.org/tracker/CVE-2004-0971"
    redis = by_id[("CVE-2021-32626", "redis")]
    assert redis.fix_state is FixState.WONT_FIX
    assert redis.fix_versions == ("fix_1", "fix_2")
    assert redis.max_score == 8.8
    assert redis.type == "python"
    assert redis.purl == "pkg:pypi/redis@4.0.2"


def test_grype_related_vulnerabilities_become_aliases() -> None:
    (finding,) = grype_json.parse(load("defectdojo-grype-different_ids.json")).findings
    assert finding.id == "GHSA-v6rh-hp5x-86rv"
    assert finding.aliases == {"CVE-2021-1234", "CVE-2021-5678"}
    assert finding.ids == {"GHSA-v6rh-hp5x-86rv", "CVE-2021-1234", "CVE-2021-5678"}


def test_grype_db_built_schema_v6_descriptor() -> None:
    status = {"schemaVersion": "v6.0.2", "built": "2025-01-02T03:04:05Z"}
    doc = {"matches": [], "descriptor": {"name": "grype", "version": "0.106.0", "db": {"status": status}},
           "source": {"type": "image", "target": {"repoDigests": ["r.example/app@sha256:" + "a" * 64]}}}
    report = grype_json.parse(json.dumps(doc))
    assert report.db_built == "2025-01-02T03:04:05Z"
    assert report.scanner_version == "0.106.0"
    assert report.target_digest == "sha256:" + "a" * 64


# ---------------------------------------------------------------------------------------------- trivy samples


def test_trivy_golden_alpine() -> None:
    report = trivy_json.parse(load("trivy-alpine-310.json.golden.json"))
    assert report.scanner == "trivy"
    assert report.operating_system == "alpine 3.10.2"
    ids = [(f.id, f.package) for f in report.findings]
    assert ("CVE-2019-1549", "libcrypto1.1") in ids
    assert ("CVE-2019-1551", "libssl1.1") in ids
    f = report.findings[0]
    assert f.type == "apk"
    assert f.severity == {"trivy": Severity.MEDIUM}
    assert f.fix_versions == ("1.1.1d-r0",)
    assert f.fix_state is FixState.FIXED
    assert {(c.source, c.version, c.score) for c in f.cvss} >= {("nvd", "3.1", 5.3), ("nvd", "2.0", 5.0),
                                                                ("redhat", "3.0", 4.8)}
    assert f.data_source == "https://avd.aquasec.com/nvd/cve-2019-1549"
    assert f.location.startswith("sha256:")  # the layer
    assert f.title.startswith("openssl:")


def test_trivy_golden_debian_and_pip() -> None:
    debian = trivy_json.parse(load("trivy-debian-buster.json.golden.json"))
    assert debian.findings
    assert all(f.type == "deb" for f in debian.findings)
    pip = trivy_json.parse(load("trivy-pip.json.golden.json"))
    werkzeug = {f.id: f for f in pip.findings}
    assert werkzeug["CVE-2019-14806"].type == "python"
    assert werkzeug["CVE-2019-14806"].aliases == {"GHSA-gq9m-qvpx-68hc"}  # from its References


def test_trivy_defectdojo_samples() -> None:
    many = trivy_json.parse(load("defectdojo-trivy-scheme_2_many_vulns.json"))
    assert len(many.findings) == 5
    assert many.operating_system == "alpine 3.9.4"
    assert trivy_json.parse(load("defectdojo-trivy-scheme_2_no_vuln.json")).findings == ()
    assert trivy_json.parse(load("defectdojo-trivy-legacy_no_vuln.json")).findings == ()  # `null`
    statuses = {f.fix_state for f in trivy_json.parse(load("defectdojo-trivy-all_statuses.json")).findings}
    assert {FixState.FIXED, FixState.NOT_FIXED, FixState.WONT_FIX} <= statuses


def trivy_doc(**vuln: Any) -> str:
    base = {"VulnerabilityID": "CVE-2024-0001", "PkgName": "openssl", "InstalledVersion": "3.0.1",
            "Severity": "HIGH"}
    return json.dumps({"SchemaVersion": 2, "ArtifactName": "r.example/app",
                       "Results": [{"Target": "x", "Type": "debian", "Vulnerabilities": [{**base, **vuln}]}]})


def test_trivy_omitted_results_and_vulnerabilities() -> None:
    assert trivy_json.parse('{"SchemaVersion": 2, "ArtifactName": "x"}').findings == ()
    assert trivy_json.parse('{"SchemaVersion": 2, "Results": [{"Target": "t"}]}').findings == ()


def test_trivy_status_fix_versions_vendor_ids_and_version() -> None:
    (f,) = trivy_json.parse(trivy_doc(FixedVersion="3.0.2, 3.1.0", VendorIDs=["DSA-1", "GHSA-g3rq-g295-4j3m"],
                                      Status="fixed")).findings
    assert f.fix_versions == ("3.0.2", "3.1.0")
    assert f.aliases == {"GHSA-g3rq-g295-4j3m"}
    assert f.type == "deb"
    (g,) = trivy_json.parse(trivy_doc(Status="will_not_fix")).findings
    assert g.fix_state is FixState.WONT_FIX
    (h,) = trivy_json.parse(trivy_doc(Status="affected")).findings
    assert h.fix_state is FixState.NOT_FIXED
    doc = json.loads(trivy_doc())
    doc["Trivy"] = {"Version": "0.68.2"}
    doc["Metadata"] = {"RepoDigests": ["r.example/app@sha256:" + "b" * 64]}
    report = trivy_json.parse(json.dumps(doc))
    assert report.scanner_version == "0.68.2"
    assert report.target_digest == "sha256:" + "b" * 64


def test_trivy_ghsa_primary_takes_a_single_cited_cve() -> None:
    (f,) = trivy_json.parse(trivy_doc(VulnerabilityID="GHSA-g3rq-g295-4j3m",
                                      References=["https://nvd.nist.gov/vuln/detail/CVE-2024-1111"])).findings
    assert f.aliases == {"CVE-2024-1111"}
    (g,) = trivy_json.parse(trivy_doc(VulnerabilityID="GHSA-g3rq-g295-4j3m",
                                      References=["https://x/CVE-2024-1111", "https://x/CVE-2024-2222"])).findings
    assert g.aliases == frozenset()  # two CVEs cited: no guess


def test_severity_normalization() -> None:
    assert parse_severity("Critical") is Severity.CRITICAL
    assert parse_severity("HIGH") is Severity.HIGH
    assert parse_severity("moderate") is Severity.MEDIUM
    assert parse_severity("Negligible") is Severity.NEGLIGIBLE
    assert parse_severity("bogus") is Severity.UNKNOWN
    assert parse_severity(None) is Severity.UNKNOWN
    assert parse_severity(5) is Severity.UNKNOWN


# ---------------------------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("text", [
    "", "not json", "{", "[1, 2", "\xff\xfe", "[" * 100_000 + "]" * 100_000,
])
@pytest.mark.parametrize("parser", [grype_json.parse, trivy_json.parse])
def test_garbage_is_a_scan_output_error(parser: Any, text: str) -> None:
    with pytest.raises(ScanOutputError):
        parser(text)


@pytest.mark.parametrize("doc", [
    [], 1, "x", {"matches": "nope"}, {"matches": [1]}, {"matches": [{"vulnerability": {}, "artifact": {}}]},
    {"matches": [{"vulnerability": {"id": "CVE-1"}, "artifact": {"name": {"x": 1}}}]},
    {"matches": [{"vulnerability": {"id": "CVE-1"}}]},
    {"matches": [{"vulnerability": {"id": "CVE-1", "fix": []}, "artifact": {"name": "a"}}]},
    {"matches": [{"vulnerability": {"id": "CVE-1", "cvss": [5]}, "artifact": {"name": "a"}}]},
    {"matches": [{"vulnerability": {"id": "CVE-1"}, "artifact": {"name": "a"}, "relatedVulnerabilities": {}}]},
    {"no": "matches"},
])
def test_grype_malformed_shapes(doc: object) -> None:
    with pytest.raises(ScanOutputError) as err:
        grype_json.parse_document(doc)
    assert err.value.fix  # every error says what to do


@pytest.mark.parametrize("doc", [
    1, "x", {"Results": {}}, {"Results": [1]}, {"Results": [{"Vulnerabilities": "x"}]},
    {"Results": [{"Vulnerabilities": [{"PkgName": "a"}]}]},
    {"Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1"}]}]},
    {"Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "a", "CVSS": []}]}]},
    {"Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "a", "References": "x"}]}]},
    {"Something": "else"},
])
def test_trivy_malformed_shapes(doc: object) -> None:
    with pytest.raises(ScanOutputError):
        trivy_json.parse_document(doc)


def test_oversized_input_is_refused_before_parsing() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return MAX_INPUT_BYTES + 1

    with pytest.raises(ScanOutputError, match="over the"):
        grype_json.parse(Huge(b"{}"))


def test_untrusted_text_is_cleaned_and_bounded() -> None:
    evil = "pkg\x1b[31m\u202eevil\n" + "A" * 100_000
    (f,) = trivy_json.parse(trivy_doc(PkgName=evil, Description="d" * 100_000, Title=None,
                                      InstalledVersion=1.5)).findings
    assert "\x1b" not in f.package
    assert "\u202e" not in f.package
    assert "\n" not in f.package
    assert len(f.package) <= 512
    assert len(f.description) <= MAX_TEXT
    assert f.version == "1.5"
    assert f.title == ""


def test_wrong_types_in_optional_fields_are_tolerated() -> None:
    doc = {"matches": [{"vulnerability": {"id": "cve-2024-0001", "severity": 3, "urls": ["u", 5, None],
                                          "dataSource": {"x": 1}},
                        "artifact": {"name": "a", "version": None, "locations": [5, {"layerID": "sha256:1"}]}}]}
    (f,) = grype_json.parse_document(doc).findings
    assert f.id == "CVE-2024-0001"  # normalized case
    assert f.severity["grype"] is Severity.UNKNOWN
    assert f.urls == ("u", "5")
    assert f.data_source == ""
    assert f.version == ""
    assert f.location == "sha256:1"
