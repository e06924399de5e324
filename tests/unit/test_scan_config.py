"""The scan keys the scanning core reads: onlyFixed, ignore, ignoreFile, vex, attest, db and output."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from sc_ci.config import SecurityConfig
from sc_ci.config.loader import load
from sc_ci.config.model import duration_seconds
from sc_ci.errors import ConfigError
from sc_ci.scan.gate import load_ignore_file


def scan_of(block: dict[str, object]) -> object:
    return SecurityConfig.model_validate({"scan": block}).scan


def test_defaults() -> None:
    scan = SecurityConfig.model_validate({}).scan
    assert not scan.only_fixed
    assert scan.ignore == ()
    assert scan.ignore_file is None
    assert scan.vex is None
    assert not scan.attest
    assert scan.output is None
    assert scan.db.cache_dir is None
    assert not scan.db.offline
    assert scan.db.max_age == "5d"
    assert scan.db.max_age_seconds == 5 * 86400
    assert scan.db.grype_update_url is None
    assert scan.db.trivy_repository is None


def test_every_new_key_round_trips() -> None:
    scan = SecurityConfig.model_validate({"scan": {
        "onlyFixed": True, "attest": True, "output": "reports/scan", "ignoreFile": ".sc-ignore.yaml",
        "vex": "security/app.openvex.json",
        "ignore": [{"id": "CVE-2024-1", "reason": "not reachable", "expires": date(2026, 1, 31), "package": "zlib"},
                   {"id": "GHSA-g3rq-g295-4j3m", "reason": "dev dependency"}],
        "db": {"cacheDir": "/cache/vulndb", "maxAge": "36h", "grypeUpdateUrl": "http://127.0.0.1:8080/",
               "trivyRepository": "127.0.0.1:5000/mirror/trivy-db:2"}}}).scan
    assert scan.only_fixed
    assert scan.attest
    assert scan.output == "reports/scan"
    assert scan.ignore_file == ".sc-ignore.yaml"
    assert scan.vex == "security/app.openvex.json"
    assert [(e.id, e.expires, e.package) for e in scan.ignore] == [
        ("CVE-2024-1", date(2026, 1, 31), "zlib"), ("GHSA-g3rq-g295-4j3m", None, None)]
    assert scan.db.max_age_seconds == 36 * 3600
    assert scan.db.trivy_repository == "127.0.0.1:5000/mirror/trivy-db:2"


def test_expires_from_yaml_text() -> None:
    scan = SecurityConfig.model_validate({"scan": {"ignore": [{"id": "CVE-1", "reason": "x",
                                                                "expires": "2026-02-28"}]}}).scan
    assert scan.ignore[0].expires == date(2026, 2, 28)


@pytest.mark.parametrize(("text", "seconds"), [("5d", 432000), ("36h", 129600), ("1w2d", 777600),
                                               ("90m", 5400), ("1D 12H", 129600), ("45s", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("block", [
    {"onlyFixed": "yes"},
    {"attest": 1},
    {"ignore": [{"id": "CVE-1"}]},  # reason is required
    {"ignore": [{"id": "CVE-1", "reason": "   "}]},
    {"ignore": [{"id": "", "reason": "x"}]},
    {"ignore": [{"id": "CVE-1", "reason": "x", "expires": "next year"}]},
    {"ignore": [{"id": "CVE-1", "reason": "x", "why": "typo key"}]},
    {"db": {"maxAge": "5 days"}},
    {"db": {"maxAge": "0d"}},
    {"db": {"maxAge": 5}},
    {"db": {"grypeUpdateUrl": "ftp://mirror/"}},
    {"db": {"trivyRepository": "https://ghcr.io/aquasecurity/trivy-db:2"}},
    {"db": {"trivyRepository": "Not A Ref"}},
    {"db": {"offline": True, "grypeUpdateUrl": "http://127.0.0.1:8080/"}},
    {"db": {"offline": True, "trivyRepository": "127.0.0.1:5000/trivy-db:2"}},
    {"db": {"cachedir": "/x"}},
])
def test_invalid_values_are_rejected(block: dict[str, object]) -> None:
    with pytest.raises(ValidationError):  # the loader turns it into a ConfigError with the key path
        scan_of(block)


def test_offline_with_a_cache_dir_is_fine() -> None:
    scan = SecurityConfig.model_validate({"scan": {"db": {"offline": True, "cacheDir": "/c"}}}).scan
    assert scan.db.offline
    assert scan.db.cache_dir == "/c"


def test_loader_reports_the_key_path(tmp_path: Path) -> None:
    (tmp_path / "sc-ci.yaml").write_text("security:\n  scan:\n    ignore:\n      - id: CVE-1\n")
    with pytest.raises(ConfigError) as err:
        load(config_path=tmp_path / "sc-ci.yaml", env={}, project_root=tmp_path)
    assert "security.scan.ignore[0].reason" in err.value.diagnostics()


def test_ignore_file_uses_the_same_entry_rules() -> None:
    with pytest.raises(ConfigError):
        load_ignore_file("- id: CVE-1\n  reason: x\n  expires: next year\n", where=".sc-ignore.yaml")
