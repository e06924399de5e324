"""The evidence document and its renderers: valid against the published schema, one row per image, the NIST
task texts, and nothing from the registry or the manifest able to inject markup, script or workflow commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

from jsonschema import Draft202012Validator

from sc_ci import secrets
from sc_ci.report import evidence, evidence_html, evidence_text
from sc_ci.verify import ssdf
from testbed.evidence import D1, expectations, release


def _schema() -> dict[str, object]:
    path = Path(__file__).resolve().parents[2] / "sc_ci" / "schemas" / "evidence-v1.schema.json"
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded


def test_the_document_is_valid_against_its_published_schema() -> None:
    for failed in (False, True):
        data = evidence.build(release(failed=failed), expectations(), {"name": "release.json", "sha256": D1})
        Draft202012Validator(_schema()).validate(data)
        assert data["verdict"]["status"] == ("failed" if failed else "verified")
    data = evidence.build(release(), expectations())
    api = data["images"][0]
    assert api["slsa"] == {"level": 2, "reason": "signed keyless by a hosted platform"}
    assert api["checks"][0]["artifacts"][0]["rekor_log_index"] == 42
    assert data["images"][1]["status"] == "scanned-only"


def test_ssdf_rows_use_nist_ids_and_titles() -> None:
    rows = {r["id"]: r for r in ssdf.mapping()}
    assert rows["PS.2.1"]["task"] == "Make software integrity verification information available to software acquirers."
    assert rows["PS.3.2"]["practice"] == "Archive and Protect Each Software Release"
    assert rows["RV.1.1"]["practiceId"] == "RV.1"
    assert "PS.1.1" not in rows  # NIST's PS.1.1 is least-privilege code storage: no check here is evidence of it
    assert {"sbom", "provenance"} <= set(rows["PS.3.2"]["checks"])


def test_html_escapes_everything_and_forbids_scripts() -> None:
    page = evidence_html.render(evidence.build(release(failed=True), expectations()))
    assert "<script" not in page
    assert "onload=x" not in page.replace("&quot;onload=x", "")  # the quote is escaped, so no attribute
    assert "&lt;script&gt;" in page
    assert "default-src &#x27;none&#x27;" in page  # CSP meta: no script, no external asset
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)
    assert page.count('<tr class="image">') == 2


def test_markdown_and_console_stay_inert() -> None:
    data = evidence.build(release(failed=True), expectations())
    markdown = evidence_text.markdown(data)
    assert "<script" not in markdown
    assert "](http://evil)" not in markdown
    for line in markdown.splitlines():
        assert not line.lstrip().startswith(("::", "##["))
    console = evidence_text.console(data)
    for line in console.splitlines():
        assert not line.lstrip().startswith(("::", "##[")), line
    assert "FAIL signature" in console
    assert "fix: re-sign" in console


def test_secrets_are_masked_in_the_document() -> None:
    secrets.register("s3cr3t-token-value")
    try:
        data = evidence.build(release(summary="verified with s3cr3t-token-value"), expectations())
        assert "s3cr3t-token-value" not in json.dumps(data)
    finally:
        secrets.reset_for_tests()
