"""The gate: failOn per scanner and merged, onlyFixed, ignore entries with expiry, OpenVEX; nothing dropped silently."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from sc_ci.config.model import SecurityConfig
from sc_ci.errors import ConfigError
from sc_ci.scan import vex
from sc_ci.scan.gate import MERGED, GatePolicy, IgnoreRule, SuppressionKind, evaluate, load_ignore_file
from sc_ci.scan.interface import Finding, FixState, ScannerReport, Severity
from sc_ci.scan.merge import MergeResult, merge

TODAY = date(2025, 6, 1)
DIGEST = "sha256:" + "c" * 64
IMAGE = f"registry.example.com/team/app@{DIGEST}"


def finding(scanner: str, vid: str, package: str = "openssl", version: str = "3.0.1", *,
            severity: Severity = Severity.HIGH, fixes: tuple[str, ...] = ("3.0.2",),
            aliases: frozenset[str] = frozenset(), purl: str = "") -> Finding:
    return Finding(id=vid, package=package, version=version, aliases=aliases, purl=purl,
                   severity={scanner: severity}, fix_versions=fixes,
                   fix_state=FixState.FIXED if fixes else FixState.NOT_FIXED, found_by=frozenset({scanner}))


def merged_of(*findings: Finding) -> MergeResult:
    scanners = dict.fromkeys(next(iter(f.found_by)) for f in findings)
    return merge([ScannerReport(s, "1", None, tuple(f for f in findings if s in f.found_by), DIGEST)
                  for s in scanners])


def test_threshold_at_or_above_trips_and_below_does_not() -> None:
    merged = merged_of(finding("grype", "CVE-1", severity=Severity.HIGH),
                       finding("grype", "CVE-2", package="zlib", severity=Severity.MEDIUM))
    verdict = evaluate(merged, GatePolicy(merged_fail_on=Severity.HIGH), today=TODAY)
    assert verdict.tripped
    assert verdict.tripped_by == (MERGED,)
    assert [b.finding.id for b in verdict.blocking] == ["CVE-1"]
    assert verdict.counts[MERGED][Severity.HIGH] == 1
    assert verdict.counts[MERGED][Severity.MEDIUM] == 1
    assert not evaluate(merged, GatePolicy(merged_fail_on=Severity.CRITICAL), today=TODAY).tripped
    assert not evaluate(merged, GatePolicy(), today=TODAY).tripped  # no failOn: report only


def test_fail_on_per_tool_uses_that_tools_severity() -> None:
    merged = merged_of(finding("grype", "CVE-1", severity=Severity.CRITICAL),
                       finding("trivy", "CVE-1", severity=Severity.MEDIUM))
    trivy_only = GatePolicy(fail_on={"trivy": Severity.HIGH})
    assert not evaluate(merged, trivy_only, today=TODAY).tripped  # trivy says medium
    grype_gate = evaluate(merged, GatePolicy(fail_on={"grype": Severity.HIGH, "trivy": Severity.HIGH}), today=TODAY)
    assert grype_gate.tripped
    assert grype_gate.tripped_by == ("grype",)
    assert grype_gate.counts["grype"][Severity.CRITICAL] == 1
    assert grype_gate.counts["trivy"][Severity.MEDIUM] == 1
    assert grype_gate.blocking[0].gates == ("grype",)


def test_unknown_severity_never_trips() -> None:
    merged = merged_of(finding("grype", "CVE-1", severity=Severity.UNKNOWN))
    assert not evaluate(merged, GatePolicy(merged_fail_on=Severity.LOW), today=TODAY).tripped


def test_only_fixed_counts_only_findings_with_a_fix_and_reports_the_rest() -> None:
    merged = merged_of(finding("grype", "CVE-1", severity=Severity.CRITICAL, fixes=()),
                       finding("grype", "CVE-2", package="zlib", severity=Severity.HIGH))
    verdict = evaluate(merged, GatePolicy(merged_fail_on=Severity.CRITICAL, only_fixed=True), today=TODAY)
    assert not verdict.tripped
    (s,) = verdict.suppressed
    assert s.finding.id == "CVE-1"
    assert s.kind is SuppressionKind.ONLY_FIXED
    assert "no fix" in s.reason
    assert verdict.counts[MERGED][Severity.CRITICAL] == 0


def test_ignore_entry_suppresses_with_its_reason_by_alias_and_package() -> None:
    merged = merged_of(finding("grype", "GHSA-x84v-xcm2-53pg", aliases=frozenset({"CVE-2018-18074"}),
                               severity=Severity.CRITICAL))
    rule = IgnoreRule("cve-2018-18074", "not reachable from our code", date(2025, 12, 31), "OpenSSL@3.0.1")
    verdict = evaluate(merged, GatePolicy(merged_fail_on=Severity.HIGH, ignore=(rule,)), today=TODAY)
    assert not verdict.tripped
    (s,) = verdict.suppressed
    assert s.kind is SuppressionKind.IGNORE
    assert s.reason == "not reachable from our code (until 2025-12-31)"
    assert s.rule == "security.scan.ignore"
    assert verdict.warnings == ()


def test_ignore_entry_for_another_package_or_version_does_not_apply() -> None:
    merged = merged_of(finding("grype", "CVE-1"))
    for package in ("zlib", "openssl@9.9"):
        verdict = evaluate(merged, GatePolicy(merged_fail_on=Severity.HIGH,
                                              ignore=(IgnoreRule("CVE-1", "x", None, package),)), today=TODAY)
        assert verdict.tripped
        assert any("matched no finding" in w for w in verdict.warnings)


def test_npm_scoped_package_in_an_ignore_entry() -> None:
    merged = merged_of(finding("grype", "CVE-1", package="@types/node", version="1.0.0"))
    for package in ("@types/node", "@types/node@1.0.0"):
        rule = IgnoreRule("CVE-1", "dev only", None, package)
        assert evaluate(merged, GatePolicy(ignore=(rule,)), today=TODAY).suppressed


def test_expired_ignore_entry_stops_ignoring_and_warns() -> None:
    merged = merged_of(finding("grype", "CVE-1", severity=Severity.CRITICAL))
    rule = IgnoreRule("CVE-1", "waiting for upstream", date(2025, 5, 31), origin="security.scan.ignore[0]")
    verdict = evaluate(merged, GatePolicy(merged_fail_on=Severity.HIGH, ignore=(rule,)), today=TODAY)
    assert verdict.tripped
    assert not verdict.suppressed
    (warning,) = verdict.warnings
    assert "security.scan.ignore[0]" in warning
    assert "expired on 2025-05-31" in warning
    still_valid = evaluate(merged, GatePolicy(ignore=(rule,)), today=date(2025, 5, 31))
    assert still_valid.suppressed  # valid through its expiry date


def openvex(*statements: dict[str, Any]) -> vex.VexDocument:
    return vex.parse(json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://x/vex-1",
                                 "author": "sec team", "timestamp": "2025-01-01T00:00:00Z", "version": 1,
                                 "statements": list(statements)}))


def statement(status: str, *, name: str = "CVE-1", product: Any = None, **extra: Any) -> dict[str, Any]:
    return {"vulnerability": {"name": name}, "status": status,
            "products": [product if product is not None else {"@id": f"pkg:oci/app@{DIGEST}"}], **extra}


@pytest.mark.parametrize(("status", "extra", "suppressed"), [
    ("not_affected", {"justification": "vulnerable_code_not_in_execute_path"}, True),
    ("not_affected", {"impact_statement": "we never call it"}, True),
    ("fixed", {}, True),
    ("affected", {"action_statement": "upgrade"}, False),
    ("under_investigation", {}, False),
])
def test_vex_status_decides(status: str, extra: dict[str, str], suppressed: bool) -> None:
    merged = merged_of(finding("grype", "CVE-1", severity=Severity.CRITICAL),
                       finding("trivy", "CVE-1", severity=Severity.CRITICAL))
    doc = openvex(statement(status, **extra))
    verdict = evaluate(merged, GatePolicy(merged_fail_on=Severity.HIGH, vex=doc), today=TODAY, image=IMAGE)
    assert verdict.tripped is not suppressed
    if suppressed:
        (s,) = verdict.suppressed
        assert s.kind is SuppressionKind.VEX
        assert s.reason.startswith(f"VEX {status}")
        assert s.finding.found_by == {"grype", "trivy"}  # applied to every scanner's finding


def test_vex_not_affected_without_justification_warns_and_suppresses_nothing() -> None:
    merged = merged_of(finding("grype", "CVE-1"))
    verdict = evaluate(merged, GatePolicy(merged_fail_on=Severity.HIGH, vex=openvex(statement("not_affected"))),
                       today=TODAY, image=IMAGE)
    assert verdict.tripped
    assert any("justification" in w for w in verdict.warnings)


def test_vex_products_image_by_digest_by_name_subcomponent_and_package() -> None:
    f = finding("grype", "CVE-1", purl="pkg:deb/debian/openssl@3.0.1?arch=amd64")
    merged = merged_of(f)
    just = {"justification": "component_not_present"}
    matching = [
        {"@id": IMAGE},
        {"@id": "registry.example.com/team/app"},
        {"@id": f"pkg:oci/app@{DIGEST.replace(':', '%3A')}?repository_url=registry.example.com/team/app"},
        {"@id": f"pkg:oci/app@{DIGEST}", "subcomponents": [{"@id": "pkg:deb/debian/openssl"}]},
        {"@id": "pkg:deb/debian/openssl@3.0.1"},
        {"@id": "x", "identifiers": {"purl": "pkg:deb/debian/openssl"}},
    ]
    for product in matching:
        doc = openvex(statement("not_affected", product=product, **just))
        assert evaluate(merged, GatePolicy(vex=doc), today=TODAY, image=IMAGE).suppressed, product
    other = [
        {"@id": "registry.example.com/team/app@sha256:" + "d" * 64},
        {"@id": "registry.example.com/team/other"},
        {"@id": f"pkg:oci/app@{DIGEST}", "subcomponents": [{"@id": "pkg:deb/debian/zlib"}]},
        {"@id": "pkg:deb/debian/openssl@3.0.9"},
        {"@id": "pkg:apk/alpine/openssl@3.0.1"},
    ]
    for product in other:
        doc = openvex(statement("not_affected", product=product, **just))
        assert not evaluate(merged, GatePolicy(vex=doc), today=TODAY, image=IMAGE).suppressed, product


def test_vex_matches_aliases_and_latest_statement_wins() -> None:
    merged = merged_of(finding("grype", "GHSA-x84v-xcm2-53pg", aliases=frozenset({"CVE-2018-18074"})))
    doc = openvex(
        statement("not_affected", name="CVE-2018-18074", justification="inline_mitigations_already_exist",
                  timestamp="2025-02-01T00:00:00Z"),
        statement("affected", name="CVE-2018-18074", timestamp="2025-03-01T00:00:00.123456789Z"),
    )
    assert not evaluate(merged, GatePolicy(vex=doc), today=TODAY, image=IMAGE).suppressed
    doc2 = openvex(
        statement("affected", name="CVE-2018-18074", timestamp="2025-02-01T00:00:00Z"),
        statement("fixed", name="CVE-2018-18074", timestamp="2025-03-01T00:00:00+01:00"),
    )
    assert evaluate(merged, GatePolicy(vex=doc2), today=TODAY, image=IMAGE).suppressed


def test_ignore_beats_vex_and_each_suppression_is_reported_once() -> None:
    merged = merged_of(finding("grype", "CVE-1"), finding("grype", "CVE-2", package="zlib"))
    doc = openvex(statement("fixed", name="CVE-1"), statement("fixed", name="CVE-2"))
    verdict = evaluate(merged, GatePolicy(ignore=(IgnoreRule("CVE-1", "accepted"),), vex=doc), today=TODAY,
                       image=IMAGE)
    assert sorted((s.finding.id, s.kind) for s in verdict.suppressed) == [
        ("CVE-1", SuppressionKind.IGNORE), ("CVE-2", SuppressionKind.VEX)]
    assert verdict.total() == 0


@pytest.mark.parametrize("text", [
    "nope", "[]", '{"@context": "https://example.com", "statements": []}',
    '{"@context": "https://openvex.dev/ns/v0.2.0"}',
    '{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [1]}',
    '{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {}, "status": "fixed"}]}',
    '{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": "CVE-1", "status": "meh"}]}',
    "[" * 50_000,
])
def test_bad_vex_documents_are_config_errors(text: str) -> None:
    with pytest.raises(vex.VexError) as err:
        vex.parse(text)
    assert err.value.path == "security.scan.vex"
    assert err.value.fix


def test_vex_v0_0_x_string_forms_are_read() -> None:
    doc = vex.parse(json.dumps({"@context": "https://openvex.dev/ns", "statements": [
        {"vulnerability": "CVE-1", "products": [IMAGE], "status": "fixed"}]}))
    merged = merged_of(finding("grype", "CVE-1"))
    assert evaluate(merged, GatePolicy(vex=doc), today=TODAY, image=IMAGE).suppressed


def test_policy_from_config() -> None:
    scan = SecurityConfig.model_validate({"scan": {
        "failOn": "high", "onlyFixed": True,
        "tools": [{"name": "grype"}, {"name": "trivy", "failOn": "critical"}],
        "ignore": [{"id": "CVE-1", "reason": "accepted", "expires": "2026-01-01", "package": "openssl"}]}}).scan
    policy = GatePolicy.from_config(scan)
    assert policy.merged_fail_on is Severity.HIGH
    assert dict(policy.fail_on) == {"grype": Severity.HIGH, "trivy": Severity.CRITICAL}
    assert policy.only_fixed
    (rule,) = policy.ignore
    assert (rule.id, rule.expires, rule.package, rule.origin) == ("CVE-1", date(2026, 1, 1), "openssl",
                                                                  "security.scan.ignore[0]")


def test_ignore_file_yaml_and_json() -> None:
    rules = load_ignore_file("ignore:\n  - id: CVE-1\n    reason: fine\n    expires: 2026-01-01\n", where=".sc-ignore")
    assert rules[0].expires == date(2026, 1, 1)
    assert rules[0].origin == ".sc-ignore[0]"
    assert load_ignore_file('[{"id": "CVE-2", "reason": "ok"}]', where="f")[0].id == "CVE-2"
    assert load_ignore_file("", where="f") == ()


@pytest.mark.parametrize(("text", "path"), [
    ("- id: CVE-1\n", "f[0].reason"),
    ("- id: CVE-1\n  reason: '  '\n", "f[0].reason"),
    ("- id: CVE-1\n  reason: x\n  expires: someday\n", "f[0].expires"),
    ("- id: CVE-1\n  reason: x\n  color: red\n", "f[0].color"),
    ("{a: [", "f"),
    ("just text", "f"),
])
def test_bad_ignore_files_name_the_entry(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_ignore_file(text, where="f")
    assert err.value.path == path
