"""Merging grype and trivy: a GHSA and its CVE are one finding, found_by kept, disagreements listed."""

from __future__ import annotations

from pathlib import Path

from sc_ci.scan import grype_json, trivy_json
from sc_ci.scan.interface import Finding, FixState, ScannerReport, Severity
from sc_ci.scan.merge import DisagreementKind, canonical_id, merge

UPSTREAM = Path(__file__).parents[1] / "data" / "scan" / "upstream"


def finding(scanner: str, vid: str, package: str = "requests", version: str = "2.19.0", *,
            aliases: frozenset[str] = frozenset(), severity: Severity = Severity.HIGH,
            fixes: tuple[str, ...] = ("2.20.0",)) -> Finding:
    return Finding(id=vid, package=package, version=version, type="python", aliases=aliases,
                   severity={scanner: severity}, fix_versions=fixes,
                   fix_state=FixState.FIXED if fixes else FixState.NOT_FIXED, found_by=frozenset({scanner}))


def report(scanner: str, *findings: Finding) -> ScannerReport:
    return ScannerReport(scanner, "1.0", None, findings)


def test_ghsa_and_cve_for_the_same_package_are_one_finding() -> None:
    grype = report("grype", finding("grype", "GHSA-x84v-xcm2-53pg", aliases=frozenset({"CVE-2018-18074"})))
    trivy = report("trivy", finding("trivy", "CVE-2018-18074"))
    merged = merge([grype, trivy])
    (one,) = merged.findings
    assert one.id == "CVE-2018-18074"  # the CVE is canonical
    assert one.aliases == {"GHSA-x84v-xcm2-53pg"}
    assert one.found_by == {"grype", "trivy"}
    assert merged.deduplicated == 1
    assert merged.disagreements == ()


def test_alias_link_from_the_trivy_side_works_too() -> None:
    grype = report("grype", finding("grype", "GHSA-x84v-xcm2-53pg"))
    trivy = report("trivy", finding("trivy", "CVE-2018-18074", aliases=frozenset({"GHSA-x84v-xcm2-53pg"})))
    merged = merge([grype, trivy])
    assert [f.id for f in merged.findings] == ["CVE-2018-18074"]
    assert merged.deduplicated == 1


def test_package_names_compare_normalized_but_versions_must_match() -> None:
    grype = report("grype", finding("grype", "CVE-2018-18074", package="Requests"),
                   finding("grype", "CVE-2020-1", package="jinja2", version="2.10"))
    trivy = report("trivy", finding("trivy", "cve-2018-18074", package="requests"),
                   finding("trivy", "CVE-2020-1", package="Jinja2", version="2.11"))
    merged = merge([grype, trivy])
    assert len(merged.findings) == 3
    assert merged.deduplicated == 0  # same id twice is not a cross-id pair
    requests = next(f for f in merged.findings if f.package.lower() == "requests")
    assert requests.found_by == {"grype", "trivy"}


def test_same_id_in_different_packages_stays_apart() -> None:
    merged = merge([report("trivy", finding("trivy", "CVE-2019-1549", package="libssl1.1"),
                           finding("trivy", "CVE-2019-1549", package="libcrypto1.1"))])
    assert len(merged.findings) == 2


def test_disagreements_found_by_one_severity_and_fix_versions() -> None:
    grype = report("grype", finding("grype", "CVE-1", severity=Severity.CRITICAL, fixes=("2.20.0",)),
                   finding("grype", "CVE-2", package="urllib3", version="1.0"))
    trivy = report("trivy", finding("trivy", "CVE-1", severity=Severity.HIGH, fixes=("2.20.1",)))
    merged = merge([grype, trivy])
    kinds = {(d.kind, d.finding_id) for d in merged.disagreements}
    assert kinds == {(DisagreementKind.SEVERITY, "CVE-1"), (DisagreementKind.FIX_VERSIONS, "CVE-1"),
                     (DisagreementKind.FOUND_BY_ONE, "CVE-2")}
    severity = next(d for d in merged.disagreements if d.kind is DisagreementKind.SEVERITY)
    assert dict(severity.said) == {"grype": "critical", "trivy": "high"}
    cve1 = next(f for f in merged.findings if f.id == "CVE-1")
    assert cve1.top_severity is Severity.CRITICAL  # the conservative one
    assert cve1.severity_by("trivy") is Severity.HIGH
    assert set(cve1.fix_versions) == {"2.20.0", "2.20.1"}


def test_one_scanner_has_no_found_by_one_disagreements() -> None:
    merged = merge([report("grype", finding("grype", "CVE-1"))])
    assert merged.disagreements == ()
    assert merged.scanners == ("grype",)


def test_findings_sorted_worst_first_then_by_id() -> None:
    merged = merge([report("grype", finding("grype", "CVE-3", severity=Severity.LOW),
                           finding("grype", "CVE-2", package="a", severity=Severity.CRITICAL),
                           finding("grype", "CVE-1", package="b", severity=Severity.CRITICAL))])
    assert [f.id for f in merged.findings] == ["CVE-1", "CVE-2", "CVE-3"]


def test_canonical_id_prefers_a_reported_cve_then_an_alias_cve() -> None:
    assert canonical_id(["GHSA-x84v-xcm2-53pg", "CVE-2018-18074"]) == "CVE-2018-18074"
    assert canonical_id(["GHSA-x84v-xcm2-53pg"], ["CVE-2021-99999", "CVE-2021-1234"]) == "CVE-2021-1234"
    assert canonical_id(["GHSA-x84v-xcm2-53pg", "GO-2022-1"]) == "GHSA-x84v-xcm2-53pg"


def test_single_grype_ghsa_with_related_cve_is_named_by_the_cve() -> None:
    merged = merge([grype_json.parse((UPSTREAM / "defectdojo-grype-different_ids.json").read_bytes())])
    (one,) = merged.findings
    assert one.id == "CVE-2021-1234"
    assert "GHSA-v6rh-hp5x-86rv" in one.aliases
    assert merged.deduplicated == 0


def test_upstream_grype_and_trivy_on_the_same_alpine_packages() -> None:
    trivy = trivy_json.parse((UPSTREAM / "trivy-alpine-310.json.golden.json").read_bytes())
    ssl = next(f for f in trivy.findings if f.package == "libssl1.1" and f.id == "CVE-2019-1549")
    grype_twin = Finding(id="GHSA-hjf8-8w7c-6gx8", package="libssl1.1", version=ssl.version,
                         aliases=frozenset({"CVE-2019-1549"}), severity={"grype": Severity.MEDIUM},
                         fix_versions=ssl.fix_versions, fix_state=FixState.FIXED, found_by=frozenset({"grype"}))
    merged = merge([ScannerReport("grype", "0.1", None, (grype_twin,)), trivy])
    assert merged.deduplicated == 1
    assert len(merged.findings) == len(trivy.findings)
    both = next(f for f in merged.findings if f.package == "libssl1.1" and f.id == "CVE-2019-1549")
    assert both.found_by == {"grype", "trivy"}
    assert both.data_source == ssl.data_source
