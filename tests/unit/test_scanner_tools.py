"""grype and trivy argv, environments, DB checks and failure classification, and the test-bed DB writers (pure)."""

from __future__ import annotations

import json
import os
import sqlite3
import tarfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from sc_ci import runner
from sc_ci.errors import StepFailed, ToolError
from sc_ci.runner import Completed
from sc_ci.tools import grype as grype_mod
from sc_ci.tools import trivy as trivy_mod
from sc_ci.tools.grype import Grype
from sc_ci.tools.trivy import Trivy
from sc_ci.tools.vulndb import DbInfo, DbSettings, VulnDbError, check_age, default_cache_dir, missing, parse_time
from testbed.vulndb import bbolt, grype_db, trivy_db
from testbed.vulndb.known import ADVISORIES, advisory, expected

IMAGE = "127.0.0.1:5000/app@sha256:" + "a" * 64
CALLER_ENV = {"PATH": "/usr/bin", "HOME": "/root", "SECRET_TOKEN": "x"}


def grype(env: dict[str, str] | None = None) -> Grype:
    return Grype(Path("/opt/grype"), "v0.117.0", {**CALLER_ENV, **(env or {})})


def trivy(env: dict[str, str] | None = None) -> Trivy:
    return Trivy(Path("/opt/trivy"), "0.68.2", {**CALLER_ENV, **(env or {})})


def settings(tmp: Path = Path("/cache"), **kw: object) -> DbSettings:
    return DbSettings(tmp, **kw)  # type: ignore[arg-type]


def done(stderr: str, code: int = 1, stdout: str = "") -> Completed:
    return Completed(("tool",), code, stdout, stderr, 0.1)


# ---- settings and DB checks ----------------------------------------------------------------------


def test_settings_split_the_cache_per_scanner() -> None:
    s = settings()
    assert (s.grype_dir, s.trivy_dir) == (Path("/cache/grype"), Path("/cache/trivy"))
    assert s.max_age == timedelta(days=5)
    assert not s.offline
    assert default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/sc-ci/vulndb")
    assert default_cache_dir({"SC_CI_VULNDB_DIR": "/ci/cache"}) == Path("/ci/cache")


def test_parse_time_reads_go_timestamps() -> None:
    assert parse_time("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T03:04:05.123456789Z") == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert parse_time("2026-01-02T05:04:05+02:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_too_old_db_is_an_error_with_the_offline_fix() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    info = DbInfo("grype", now - timedelta(days=9), "v6.1.9", Path("/c/grype/6/vulnerability.db"), "cache")
    assert check_age(info, settings(max_age=timedelta(days=10)), now=now) is info
    with pytest.raises(VulnDbError) as caught:
        check_age(info, settings(offline=True), now=now)
    assert "too old" in caught.value.what
    assert "9.0 days" in caught.value.what
    assert "Refresh the cache directory /cache" in caught.value.fix
    with pytest.raises(VulnDbError, match="too old") as online:
        check_age(info, settings(grype_update_url="http://mirror"), now=now)
    assert "http://mirror" in online.value.fix


def test_missing_db_names_where_and_how() -> None:
    offline = missing("trivy", settings(offline=True))
    assert offline.what == "no trivy vulnerability DB in /cache/trivy/db"
    assert "Offline mode uses only the cache" in offline.fix
    assert "grype db import" in missing("grype", settings(offline=True)).fix
    assert "trivy-db" in missing("trivy", settings()).fix


# ---- grype ---------------------------------------------------------------------------------------


def test_grype_scan_argv_registry_or_sbom_never_docker() -> None:
    g = grype()
    assert g.scan_argv(image=IMAGE) == ["/opt/grype", f"registry:{IMAGE}", "-o", "json"]
    assert g.scan_argv(image=IMAGE, platform="linux/arm64")[-2:] == ["--platform", "linux/arm64"]
    assert g.scan_argv(sbom=Path("/t/a.cdx.json")) == ["/opt/grype", "sbom:/t/a.cdx.json", "-o", "json"]
    assert "--fail-on" not in g.scan_argv(image=IMAGE)
    with pytest.raises(ValueError, match="by digest"):
        g.scan_argv(image="127.0.0.1:5000/app:latest")
    with pytest.raises(ValueError, match="exactly one"):
        g.scan_argv()


def test_grype_scan_env_never_touches_the_db() -> None:
    env = grype({"DOCKER_CONFIG": "/home/u/.docker"}).env_for(settings(grype_update_url="http://m"), plain_http=True)
    assert env["GRYPE_DB_CACHE_DIR"] == "/cache/grype"
    assert env["GRYPE_DB_AUTO_UPDATE"] == "false"
    assert env["GRYPE_DB_VALIDATE_AGE"] == "false"
    assert env["GRYPE_CHECK_FOR_APP_UPDATE"] == "false"
    assert env["GRYPE_REGISTRY_INSECURE_USE_HTTP"] == "true"
    assert env["DOCKER_CONFIG"] == "/home/u/.docker"
    assert "GRYPE_DB_UPDATE_URL" not in env
    assert "SECRET_TOKEN" not in env
    assert "GRYPE_REGISTRY_INSECURE_USE_HTTP" not in grype().env_for(settings())
    assert grype().env_for(settings(), docker_config="/tmp/d")["DOCKER_CONFIG"] == "/tmp/d"


def test_grype_db_commands_and_env() -> None:
    g = grype()
    assert g.db_update_argv() == ["/opt/grype", "db", "update"]
    assert g.db_status_argv() == ["/opt/grype", "db", "status", "-o", "json"]
    assert g.db_import_argv(Path("/x/vulnerability.db")) == ["/opt/grype", "db", "import", "/x/vulnerability.db"]
    env = g.db_env(settings(grype_update_url="http://127.0.0.1:9/", max_age=timedelta(days=2)), update=True)
    assert env["GRYPE_DB_UPDATE_URL"] == "http://127.0.0.1:9/"
    assert env["GRYPE_DB_MAX_ALLOWED_BUILT_AGE"] == "172800s"
    assert env["GRYPE_DB_VALIDATE_AGE"] == "true"
    assert g.db_env(settings())["GRYPE_DB_VALIDATE_AGE"] == "false"


@pytest.mark.parametrize(("stderr", "kind", "phrase"), [
    ("GET http://r/v2/a/manifests/sha256:x: UNAUTHORIZED: authentication required", StepFailed, "denied access"),
    ("MANIFEST_UNKNOWN: manifest unknown", StepFailed, "could not find"),
    ("http: server gave HTTP response to HTTPS client", StepFailed, "plain HTTP"),
    ("[0002] ERROR \x1b[31mfailed to load vulnerability db: database does not exist\x1b[0m", VulnDbError,
     "no grype vulnerability DB"),
    ("the vulnerability database was built 9 days ago (max allowed age is 5 days)", VulnDbError, "too old"),
    ("something else broke", ToolError, "grype failed"),
])
def test_grype_failures_are_classified(stderr: str, kind: type[Exception], phrase: str) -> None:
    error = grype_mod.classify(done(stderr), IMAGE, settings())
    assert type(error) is kind
    assert phrase in error.what


def test_grype_status_json_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    status = {"schemaVersion": "v6.1.9", "from": "manual import", "built": "2026-01-02T03:04:05Z",
              "path": "/cache/grype/6/vulnerability.db", "valid": True}
    monkeypatch.setattr(runner, "run", lambda *a, **k: done("", 0, json.dumps(status)))
    info = grype().db_status(settings(), "imported")
    assert info == DbInfo("grype", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "v6.1.9",
                          Path("/cache/grype/6/vulnerability.db"), "imported")
    absent = {"schemaVersion": "", "path": "/cache/grype/6/vulnerability.db", "valid": False,
              "error": "database does not exist"}
    monkeypatch.setattr(runner, "run", lambda *a, **k: done("", 1, json.dumps(absent)))
    assert grype().db_status(settings()) is None


def test_grype_offline_prepare_never_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    status = {"schemaVersion": "v6.1.9", "built": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "path": "/p"}

    def run(argv: list[str], **_: object) -> Completed:
        calls.append(argv)
        return done("", 0, json.dumps(status))

    monkeypatch.setattr(runner, "run", run)
    info = grype().prepare_db(settings(offline=True))
    assert info.source == "cache"
    assert [c[1:3] for c in calls] == [["db", "status"]]


# ---- trivy ---------------------------------------------------------------------------------------


def test_trivy_scan_argv_is_offline_and_remote() -> None:
    argv = trivy().scan_argv(settings=settings(), image=IMAGE, plain_http=True)
    assert argv[:4] == ["/opt/trivy", "image", "--image-src", "remote"]
    for flag in ("--skip-db-update", "--skip-java-db-update", "--offline-scan", "--skip-version-check",
                 "--disable-telemetry", "--insecure"):
        assert flag in argv
    assert argv[argv.index("--cache-dir") + 1] == "/cache/trivy"
    assert argv[argv.index("--scanners") + 1] == "vuln"
    assert argv[argv.index("--format") + 1] == "json"
    assert argv[-1] == IMAGE
    assert "--insecure" not in trivy().scan_argv(settings=settings(), image=IMAGE)
    sbom = trivy().scan_argv(settings=settings(), sbom=Path("/t/a.cdx.json"))
    assert sbom[:2] == ["/opt/trivy", "sbom"]
    assert sbom[-1] == "/t/a.cdx.json"
    assert "--skip-db-update" in sbom
    with pytest.raises(ValueError, match="by digest"):
        trivy().scan_argv(settings=settings(), image="r/app:1")


def test_trivy_db_argv_uses_the_mirror() -> None:
    argv = trivy().db_argv(settings(trivy_repository="127.0.0.1:5000/aquasecurity/trivy-db:2"))
    assert argv[1:3] == ["image", "--download-db-only"]
    assert argv[argv.index("--db-repository") + 1] == "127.0.0.1:5000/aquasecurity/trivy-db:2"
    assert "--insecure" in argv
    remote = trivy().db_argv(settings(trivy_repository="registry.example.com/aquasec/trivy-db:2"))
    assert "--insecure" not in remote
    assert "--db-repository" not in trivy().db_argv(settings())
    env = trivy({"DOCKER_CONFIG": "/d"}).env_for()
    assert env["DOCKER_CONFIG"] == "/d"
    assert "SECRET_TOKEN" not in env
    assert env["TRIVY_SKIP_VERSION_CHECK"] == "true"


@pytest.mark.parametrize(("stderr", "kind", "phrase"), [
    ("FATAL Fatal error run error: init error: DB error: database error: --skip-db-update cannot be specified on "
     "the first run", VulnDbError, "no trivy vulnerability DB"),
    ("remote error: GET http://r/v2/a/manifests/sha256:x: UNAUTHORIZED: authentication required", StepFailed,
     "denied access"),
    ('unable to find the specified image "r/a@sha256:x" in ["remote"]: MANIFEST_UNKNOWN', StepFailed,
     "could not find"),
    ("Get https://r/v2/: http: server gave HTTP response to HTTPS client", StepFailed, "plain HTTP"),
    ("SBOM decode error: failed to decode: CycloneDX decode error: invalid specification version", StepFailed,
     "cannot read the CycloneDX version"),
    ("panic: boom", ToolError, "trivy failed"),
])
def test_trivy_failures_are_classified(stderr: str, kind: type[Exception], phrase: str) -> None:
    error = trivy_mod.classify(done(stderr), IMAGE, settings())
    assert type(error) is kind
    assert phrase in error.what


def test_trivy_status_reads_the_cache(tmp_path: Path) -> None:
    s = settings(tmp_path, offline=True)
    assert trivy().db_status(s) is None
    with pytest.raises(VulnDbError, match="no trivy vulnerability DB"):
        trivy().prepare_db(s)
    built = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    trivy_db.build(s.trivy_dir, built=built)
    info = trivy().db_status(s)
    assert info == DbInfo("trivy", built, "v2", tmp_path / "trivy" / "db" / "trivy.db", "cache")
    with pytest.raises(VulnDbError, match="too old"):
        trivy().prepare_db(s)
    fresh = trivy_db.build(s.trivy_dir)
    assert trivy().prepare_db(s).built == fresh.built


# ---- the test-bed DBs ----------------------------------------------------------------------------


def test_bbolt_roundtrip_with_nested_and_large_buckets() -> None:
    tree: dict[bytes, Any] = {b"vulnerability": {}, b"alpine 3.12": {b"openssl": {b"CVE-1": b'{"FixedVersion":"1"}'}},
            b"big": {b"k%05d" % i: b"x" * 50 for i in range(300)}}
    data = bbolt.encode(tree)
    assert len(data) % bbolt.PAGE_SIZE == 0
    assert bbolt.decode(data) == tree
    corrupt = bytearray(data)
    corrupt[20] ^= 0xFF  # page 0's meta
    corrupt[bbolt.PAGE_SIZE + 20] ^= 0xFF  # and page 1's
    with pytest.raises(bbolt.BoltFormatError):
        bbolt.decode(bytes(corrupt))


def test_trivy_tree_files_os_advisories_under_the_origin() -> None:
    built = datetime(2026, 1, 1, tzinfo=UTC)
    tree = trivy_db.tree(built=built)
    assert json.loads(tree[b"alpine 3.12"][b"openssl"][b"CVE-2020-1971"]) == {"FixedVersion": "1.1.1i-r0"}
    assert json.loads(tree[b"debian 12"][b"glibc"][b"CVE-2024-2961"]) == {"FixedVersion": "2.36-9+deb12u7"}
    pip = json.loads(tree[b"pip::GitHub Security Advisory pip"][b"requests"][b"CVE-2018-18074"])
    assert pip["VulnerableVersions"] == ["< 2.20.0"]
    assert pip["PatchedVersions"] == ["2.20.0"]
    assert json.loads(tree[b"data-source"][b"npm::GitHub Security Advisory npm"])["ID"] == "ghsa"
    assert json.loads(tree[b"vulnerability"][b"CVE-2020-8203"])["Severity"] == "HIGH"
    assert trivy_db.metadata(built)["Version"] == 2


def test_trivy_archive_holds_the_db_at_its_root(tmp_path: Path) -> None:
    db = trivy_db.build(tmp_path)
    with tarfile.open(fileobj=BytesIO(trivy_db.archive(db))) as tar:
        assert sorted(tar.getnames()) == ["metadata.json", "trivy.db"]


def test_grype_db_rows(tmp_path: Path) -> None:
    db = grype_db.build(tmp_path, built=datetime(2026, 1, 1, tzinfo=UTC))
    conn = sqlite3.connect(db.path)
    try:
        assert conn.execute("SELECT model, revision, addition FROM db_metadata").fetchall() == [(6, 1, 9)]
        rows = conn.execute(
            "SELECT v.name, v.provider_id, p.ecosystem, p.name, o.name, o.major_version, o.minor_version, b.value "
            "FROM affected_package_handles a JOIN vulnerability_handles v ON v.id = a.vulnerability_id "
            "JOIN packages p ON p.id = a.package_id LEFT JOIN operating_systems o ON o.id = a.operating_system_id "
            "JOIN blobs b ON b.id = a.blob_id").fetchall()
    finally:
        conn.close()
    by_name = {(r[0], r[3]): r for r in rows}
    musl = by_name[("CVE-2020-28928", "musl")]
    assert musl[1:7] == ("alpine", "apk", "musl", "alpine", "3", "12")
    assert json.loads(musl[7])["ranges"] == [{"version": {"type": "apk", "constraint": "< 1.1.24-r10"},
                                              "fix": {"version": "1.1.24-r10", "state": "fixed"}}]
    requests_row = by_name[("GHSA-x84v-xcm2-53pg", "requests")]
    assert requests_row[1:5] == ("github", "python", "requests", None)
    assert json.loads(requests_row[7])["cves"] == ["CVE-2018-18074"]
    assert len(rows) == len(ADVISORIES)


def test_grype_listing_points_at_the_archive(tmp_path: Path) -> None:
    db = grype_db.build(tmp_path, built=datetime(2026, 1, 1, tzinfo=UTC))
    data = grype_db.archive(db)
    listing = grype_db.listing(db, data)
    assert listing["schemaVersion"] == "v6.1.9"
    assert listing["built"] == "2026-01-01T00:00:00Z"
    assert listing["checksum"].startswith("sha256:")
    assert listing["path"] == "vulnerability-db.tar.gz"
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        assert tar.getnames() == ["vulnerability.db"]


def test_known_findings_per_scanner() -> None:
    grype_ids = {f.id for f in expected("grype", "alpine-app")}
    trivy_ids = {f.id for f in expected("trivy", "alpine-app")}
    assert "GHSA-x84v-xcm2-53pg" in grype_ids
    assert "CVE-2018-18074" in trivy_ids
    assert {f.cve for f in expected("grype", "alpine-app")} == trivy_ids
    openssl = {f.package for f in expected("trivy", "alpine-app") if f.id == "CVE-2020-1971"}
    assert openssl == {"libcrypto1.1", "libssl1.1"}  # both binary packages of the openssl origin
    assert "CVE-2020-1967" not in trivy_ids  # fixed in the installed 1.1.1g-r0
    assert expected("trivy", "multiarch", "linux/arm64") == expected("trivy", "multiarch")
    assert {f.package for f in expected("trivy", "debian-app")} == {"libc6", "libssl3", "openssl"}
    assert advisory("GHSA-p6mc-m468-83gw").cve == "CVE-2020-8203"


# --- the DB cache directory must be usable before a scanner runs ---------------------------------------------


def test_a_configured_cache_dir_that_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    from sc_ci.errors import ConfigError
    from sc_ci.tools.vulndb import usable_cache_dir

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as info:
        usable_cache_dir(blocker / "vulndb", explicit=True)
    assert info.value.exit_code == 2
    assert "cannot create it" in info.value.why
    assert "cacheDir" in info.value.fix


def test_the_default_cache_dir_falls_back_to_a_private_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """HOME that does not exist for this user (Jenkins' docker agent): scan anyway, say how to keep a cache."""
    from sc_ci.tools.vulndb import usable_cache_dir

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("x")
    got = usable_cache_dir(blocker / ".cache" / "sc-ci" / "vulndb", explicit=False)
    assert got == tmp_path / f"sc-ci-vulndb-{os.getuid()}"
    assert got.is_dir()
    assert (got.stat().st_mode & 0o777) == 0o700
    assert "cacheDir" in caplog.text
    assert usable_cache_dir(tmp_path / "fine", explicit=False) == tmp_path / "fine"  # made when missing


def test_the_fallback_is_never_a_planted_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sc_ci.errors import ConfigError
    from sc_ci.tools.vulndb import usable_cache_dir

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / f"sc-ci-vulndb-{os.getuid()}").symlink_to(tmp_path / "elsewhere")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not this user's directory"):
        usable_cache_dir(blocker / "vulndb", explicit=False)
