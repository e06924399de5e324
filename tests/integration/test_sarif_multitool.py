"""The SARIF report checked by the SARIF Multitool's own validator (`Sarif.Multitool validate`, npm package
@microsoft/sarif-multitool-linux, installed by `make ci-local`): no error-level rule (SARIF1002 UrisMustBeValid
and the rest) for an image whose registry has a port, with and without a Dockerfile."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sc_ci.report import sarif

MULTITOOL = Path(__file__).resolve().parents[2] / "tools" / "ci-local" / "node_modules" / "@microsoft" / \
    "sarif-multitool-linux" / "Sarif.Multitool"


def multitool_errors(log: dict[str, object], tmp_path: Path) -> list[str]:
    if not MULTITOOL.is_file():
        pytest.fail(f"the SARIF Multitool is not installed at {MULTITOOL}: run `make ci-local`")
    source, out = tmp_path / "scan.sarif", tmp_path / "validation.sarif"
    source.write_text(json.dumps(log))
    done = subprocess.run([str(MULTITOOL), "validate", str(source), "--output", str(out), "--log", "ForceOverwrite"],
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT": "1", "DOTNET_NOLOGO": "1",
                               "DOTNET_CLI_TELEMETRY_OPTOUT": "1"})
    assert out.is_file(), done.stdout + done.stderr
    results = json.loads(out.read_text())["runs"][0].get("results", [])
    return [f"{r['ruleId']}: {r['message']}" for r in results if r.get("level") == "error"]


def test_the_multitool_catches_an_invalid_uri(tmp_path: Path) -> None:
    """The check can fail: the location the report used to write is SARIF1002."""
    log = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "t", "version": "1", "informationUri": "https://example.com"}},
        "results": [{"ruleId": "R1", "message": {"text": "m."}, "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": "127.0.0.1:38585/demo/app"}, "region": {"startLine": 1}}}]}]}]}
    assert any(e.startswith("SARIF1002") for e in multitool_errors(log, tmp_path))


@pytest.mark.parametrize("dockerfile", [None, "docker/Dockerfile"])
def test_our_sarif_has_no_multitool_error(dockerfile: str | None, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from test_scan_reports import DIGEST, scenario

    merged, verdict = scenario()
    log = sarif.render(merged, verdict, image=f"127.0.0.1:38585/demo/app@{DIGEST}", dockerfile=dockerfile,
                       tool_version="0.2.0")
    assert multitool_errors(log, tmp_path) == []
