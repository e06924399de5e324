"""Scan renderers: the v1 JSON report, SARIF 2.1.0 and GitLab 15.0.7 (schema-validated), and escaped Markdown."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sc_ci.report import gitlab_scanning, sarif, scan_markdown
from sc_ci.scan import document as scan_json
from sc_ci.scan import grype_json, trivy_json
from sc_ci.scan.gate import GatePolicy, IgnoreRule, Verdict, evaluate
from sc_ci.scan.interface import Cvss, Finding, FixState, ScannerReport, Severity
from sc_ci.scan.merge import MergeResult, merge

DATA = Path(__file__).parents[1] / "data"
SCHEMAS = DATA / "schemas"
DIGEST = "sha256:" + "e" * 64
IMAGE = f"registry.example.com/team/app@{DIGEST}"
EVIL = "evil|`<img src=x onerror=alert(1)>`\n## injected @everyone [link](https://x) ::set-output"


def schema(name: str) -> Any:
    return json.loads((SCHEMAS / name).read_text())


def scenario() -> tuple[MergeResult, Verdict]:
    """Upstream trivy + grype samples plus hostile names, one ignored finding, one duplicate pair."""
    trivy = trivy_json.parse((DATA / "scan" / "upstream" / "trivy-alpine-310.json.golden.json").read_bytes())
    grype = grype_json.parse((DATA / "scan" / "upstream" / "defectdojo-grype-check_all_fields.json").read_bytes())
    hostile = Finding(id="GHSA-g3rq-g295-4j3m", package=EVIL, version="1|0", aliases=frozenset({"CVE-2024-99999"}),
                      severity={"grype": Severity.CRITICAL}, fix_versions=("2`0",), fix_state=FixState.FIXED,
                      cvss=(Cvss("nvd", "4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                                 9.3),), title=EVIL, description=EVIL, found_by=frozenset({"grype"}))
    grype = ScannerReport("grype", grype.scanner_version, grype.db_built, (*grype.findings, hostile), DIGEST,
                          operating_system=grype.operating_system)
    merged = merge([grype, trivy])
    policy = GatePolicy(fail_on={"grype": Severity.HIGH, "trivy": Severity.HIGH}, merged_fail_on=Severity.HIGH,
                        ignore=(IgnoreRule("CVE-2019-1551", f"accepted {EVIL}", date(2030, 1, 1)),
                                IgnoreRule("CVE-1999-1", "old", date(2020, 1, 1))))
    return merged, evaluate(merged, policy, today=date(2025, 6, 1), image=IMAGE)


# ---------------------------------------------------------------------------------------------- JSON


def test_json_report_v1_validates_and_keeps_every_finding() -> None:
    merged, verdict = scenario()
    doc = json.loads(json.dumps(scan_json.render(merged, verdict, image=IMAGE)))
    jsonschema.validate(doc, schema("sc-ci-scan-report-v1.schema.json"))
    assert doc["schema"] == "sc-ci/scan-report/v1"
    assert len(doc["findings"]) == len(merged.findings)
    assert {s["id"] for s in doc["suppressed"]} == {"CVE-2019-1551"}
    assert doc["gate"]["tripped"]
    assert doc["gate"]["trippedBy"] == ["grype", "merged"]
    assert sum(1 for f in doc["findings"] if not f["counted"]) == len(doc["suppressed"])
    assert any("expired" in w for w in doc["gate"]["warnings"])


# ---------------------------------------------------------------------------------------------- SARIF


def test_sarif_validates_against_the_2_1_0_schema() -> None:
    merged, verdict = scenario()
    log = json.loads(json.dumps(sarif.render(merged, verdict, image=IMAGE, dockerfile="docker/Dockerfile",
                                             tool_version="0.1.0")))
    jsonschema.validate(log, schema("sarif-schema-2.1.0.json"))
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({f.id for f in merged.findings})  # one rule per id, sorted
    assert [r["ruleId"] for r in run["results"]] == sorted(r["ruleId"] for r in run["results"])
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        physical = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert physical == "docker/Dockerfile"
        assert result["locations"][0]["logicalLocations"][0]["name"] == IMAGE
    suppressed = [r for r in run["results"] if "suppressions" in r]
    assert {r["ruleId"] for r in suppressed} == {"CVE-2019-1551"}


def test_sarif_security_severity_from_cvss_or_mapping_and_stable() -> None:
    merged, verdict = scenario()
    log = sarif.render(merged, verdict, image=IMAGE)
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["CVE-2019-1549"]["properties"]["security-severity"] == "5.3"  # highest CVSS (nvd v3)
    assert rules["CVE-2024-99999"]["properties"]["security-severity"] == "9.3"
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert "registry.example.com/team/app/var/lib/dpkg/status" in uris  # no Dockerfile: the package's file
    assert all(u.startswith("registry.example.com/team/app") for u in uris)
    assert sarif.render(merged, verdict, image=IMAGE) == log  # pure and stable
    no_score = [Finding(id="CVE-1", package="a", version="1", severity={"g": s}) for s in Severity]
    assert [sarif.security_severity([f]) for f in no_score] == ["9.5", "8.0", "5.5", "2.0", "0.0", None]


@pytest.mark.parametrize("dockerfile", [None, "docker/Dockerfile"])
def test_sarif_locations_are_uri_references_when_the_registry_has_a_port(dockerfile: str | None) -> None:
    """SARIF1002: `127.0.0.1:38585/demo/app` would read as a URI with scheme `127.0.0.1`; the colon is encoded."""
    from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

    merged, verdict = scenario()
    log = sarif.render(merged, verdict, image=f"127.0.0.1:38585/demo/app@{DIGEST}", dockerfile=dockerfile)
    for result in log["runs"][0]["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert validate_rfc3986(uri, rule="URI_reference"), uri
        assert ":" not in uri.split("/")[0], uri
        if dockerfile is None:
            assert uri.startswith("127.0.0.1%3A38585/demo/app")


# ---------------------------------------------------------------------------------------------- GitLab


def test_gitlab_report_validates_against_15_0_7() -> None:
    merged, verdict = scenario()
    report = gitlab_scanning.render(merged, verdict, image=IMAGE, analyzer_version="0.1.0",
                                    started=datetime(2025, 6, 1, 10, 0, 0, 123456, tzinfo=UTC),
                                    finished=datetime(2025, 6, 1, 10, 1, 0, tzinfo=UTC))
    jsonschema.validate(json.loads(json.dumps(report)), schema("gitlab-container-scanning-report-format-15.0.7.json"))
    assert report["version"] == "15.0.7"
    assert report["scan"]["type"] == "container_scanning"
    assert report["scan"]["start_time"] == "2025-06-01T10:00:00"
    vulns = report["vulnerabilities"]
    assert len(vulns) == len(merged.findings) - len(verdict.suppressed)
    assert {v["severity"] for v in vulns} <= {"Critical", "High", "Medium", "Low", "Info", "Unknown"}
    assert all(v["location"]["image"] == IMAGE and v["location"]["operating_system"] for v in vulns)
    assert any(m["value"].startswith("not reported: CVE-2019-1551") for m in report["scan"]["messages"])
    ids = [v["id"] for v in vulns]
    assert len(set(ids)) == len(ids)
    hostile = next(v for v in vulns if v["identifiers"][0]["value"] == "CVE-2024-99999")
    assert "cvss_vectors" not in hostile  # a v4 vector is not in the schema's two forms
    assert [i["type"] for i in hostile["identifiers"]] == ["cve", "ghsa"]


def test_gitlab_severity_mapping() -> None:
    merged = merge([ScannerReport("grype", "1", None, tuple(
        Finding(id=f"CVE-2024-{i}", package="p", version="1", severity={"grype": s}, found_by=frozenset({"grype"}))
        for i, s in enumerate(Severity)))])
    report = gitlab_scanning.render(merged, image=IMAGE, started=datetime(2025, 1, 1), finished=datetime(2025, 1, 1))
    assert sorted(v["severity"] for v in report["vulnerabilities"]) == sorted(
        ["Critical", "High", "Medium", "Low", "Info", "Unknown"])
    jsonschema.validate(report, schema("gitlab-container-scanning-report-format-15.0.7.json"))


# ---------------------------------------------------------------------------------------------- Markdown


@pytest.mark.parametrize("value", [EVIL, "a|b", "`x`", "<script>", "line1\nline2\r\n", "@org/pkg", "\u202egnp"])
def test_escape_neutralizes_markdown_html_and_line_breaks(value: str) -> None:
    out = scan_markdown.escape(value, 500)
    for ch in "|`<>\n\r@[]\u202e":
        assert ch not in out


def test_job_summary_has_counts_top_findings_and_suppressed_reasons() -> None:
    merged, verdict = scenario()
    md = scan_markdown.job_summary(merged, verdict, image=IMAGE)
    assert "**Gate: failed**" in md
    assert "| grype | 0.28.0 |" in md
    assert "| **merged** |" in md
    assert "#### Top findings" in md
    assert "Not counted: 2 suppressed" in md
    assert "accepted evil" in md  # the reason is shown (escaped)
    assert "were counted once" not in md or merged.deduplicated
    assert "expired" in md
    for line in md.splitlines():
        if line.startswith("|"):
            cells = line.count("|")
            header = md.splitlines()[md.splitlines().index(line)]
            assert cells == header.count("|")
    assert "<img" not in md
    assert "`<" not in md
    assert "\n## injected" not in md
    assert "@everyone" not in md


def test_table_rows_keep_their_column_count_whatever_the_package_name() -> None:
    merged, verdict = scenario()
    md = scan_markdown.job_summary(merged, verdict, image=IMAGE, top=100)
    tables: list[list[str]] = []
    for line in md.splitlines():
        if line.startswith("|"):
            if not tables or not tables[-1]:
                tables.append([])
            tables[-1].append(line)
        elif tables and tables[-1]:
            tables.append([])
    for table in (t for t in tables if t):
        assert len({row.count("|") for row in table}) == 1, table


def test_pr_comment_starts_with_the_hidden_marker() -> None:
    merged, verdict = scenario()
    body = scan_markdown.pr_comment("v1.2.3", [scan_markdown.ImageScan(IMAGE, merged, verdict)])
    assert body.startswith("<!-- sc-ci:release:v1.2.3 -->\n")
    assert scan_markdown.has_marker(body, "v1.2.3")
    assert not scan_markdown.has_marker(body, "v1.2.4")
    assert "1 of 1 image(s) failed" in body
    assert len(body) < scan_markdown.COMMENT_LIMIT + 200


@pytest.mark.parametrize("release_id", ["x --> <b>bold</b>", "a\n-->b", "", "--"])
def test_marker_cannot_be_closed_early(release_id: str) -> None:
    m = scan_markdown.marker(release_id)
    assert m.startswith("<!-- sc-ci:release:")
    assert m.endswith(" -->")
    inner = m[len("<!-- "):-len(" -->")]
    assert "--" not in inner.replace("sc-ci", "")
    assert ">" not in inner
    assert "\n" not in inner


def test_clean_scan_summary() -> None:
    merged = merge([ScannerReport("grype", "0.106.0", "2025-01-01T00:00:00Z", ())])
    verdict = evaluate(merged, GatePolicy(merged_fail_on=Severity.HIGH), today=date(2025, 1, 2))
    md = scan_markdown.job_summary(merged, verdict, image=IMAGE)
    assert "**Gate: passed**" in md
    assert "Top findings" not in md
    body = scan_markdown.pr_comment("r1", [scan_markdown.ImageScan(IMAGE, merged, verdict)])
    assert "All 1 image(s) passed" in body
    assert "Findings that count: none." in body
