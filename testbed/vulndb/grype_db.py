"""Grype's vulnerability DB (model 6 SQLite `vulnerability.db`, the DDL grype publishes) from the known advisories."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from testbed.oci import gzip_bytes
from testbed.vulndb.known import ADVISORIES, Advisory

MODEL, REVISION, ADDITION = 6, 1, 9  # grype v0.116/v0.117 (grype/db/v6/db.go)
SCHEMA_VERSION = f"v{MODEL}.{REVISION}.{ADDITION}"
DB_FILE = "vulnerability.db"
ARCHIVE_NAME = "vulnerability-db.tar.gz"

SCHEMA_FILE = Path(__file__).with_name(f"schema-{MODEL}.{REVISION}.{ADDITION}.sql")  # the DDL grype publishes

# Which vunnel provider files each ecosystem's advisories, and the version format of its ranges.
_PROVIDER = {"apk": "alpine", "deb": "debian", "python": "github", "npm": "github"}
_VERSION_FORMAT = {"apk": "apk", "deb": "dpkg", "python": "python", "npm": "npm"}
_CODENAMES = {("debian", "12"): "bookworm"}


@dataclass(frozen=True)
class GrypeDb:
    """A built grype DB file, its build time, and the archive + listing that serve it for updates."""

    path: Path
    built: datetime

    @property
    def directory(self) -> Path:
        return self.path.parent


def _stamp(when: datetime) -> str:
    """How gorm's SQLite driver stores a time.Time."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


class _Writer:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.packages: dict[tuple[str, str], int] = {}
        self.oses: dict[tuple[str, str, str], int] = {}
        self.vulns: dict[tuple[str, str], int] = {}

    def blob(self, value: dict[str, Any]) -> int:
        cur = self.conn.execute("INSERT INTO blobs (value) VALUES (?)", (json.dumps(value, separators=(",", ":")),))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def package(self, ecosystem: str, name: str) -> int:
        key = (ecosystem, name)
        if key not in self.packages:
            cur = self.conn.execute("INSERT INTO packages (ecosystem, name) VALUES (?, ?)", key)
            assert cur.lastrowid is not None
            self.packages[key] = cur.lastrowid
        return self.packages[key]

    def operating_system(self, name: str, release: str) -> int:
        major, _, minor = release.partition(".")
        key = (name, major, minor)
        if key not in self.oses:
            cur = self.conn.execute(
                "INSERT INTO operating_systems (name, release_id, major_version, minor_version, label_version, "
                "codename, channel) VALUES (?, ?, ?, ?, '', ?, '')",
                (name, name, major, minor, _CODENAMES.get((name, major), "")))
            assert cur.lastrowid is not None
            self.oses[key] = cur.lastrowid
        return self.oses[key]

    def vulnerability(self, name: str, provider: str, blob: dict[str, Any], built: datetime) -> int:
        key = (name, provider)
        if key not in self.vulns:
            cur = self.conn.execute(
                "INSERT INTO vulnerability_handles (name, status, published_date, modified_date, provider_id, "
                "blob_id) VALUES (?, 'active', ?, ?, ?, ?)",
                (name, _stamp(built - timedelta(days=365)), _stamp(built - timedelta(days=30)), provider,
                 self.blob(blob)))
            assert cur.lastrowid is not None
            self.vulns[key] = cur.lastrowid
        return self.vulns[key]


def _severity(adv: Advisory, scheme: str) -> list[dict[str, Any]]:
    severities: list[dict[str, Any]] = [{"scheme": scheme, "value": adv.severity.lower(), "rank": 1}]
    if adv.cvss_v3:
        version = adv.cvss_v3.split("/", 1)[0].removeprefix("CVSS:")
        severities.append({"scheme": "CVSS", "value": {"vector": adv.cvss_v3, "version": version}, "rank": 2})
    return severities


def _constraint(adv: Advisory) -> str:
    return adv.vulnerable.replace(", ", ",")


def write_rows(conn: sqlite3.Connection, advisories: Iterable[Advisory], built: datetime) -> None:
    """Providers, vulnerabilities (the provider's record, plus an NVD record for each CVE so grype can
    show the CVE related to a GHSA), packages, operating systems and affected-package ranges."""
    writer = _Writer(conn)
    conn.execute("INSERT INTO db_metadata VALUES (?, ?, ?, ?)", (_stamp(built), MODEL, REVISION, ADDITION))
    for provider in ("alpine", "debian", "github", "nvd"):
        digest = "sha256:" + hashlib.sha256(f"sc-ci-testbed/{provider}".encode()).hexdigest()
        conn.execute("INSERT INTO providers VALUES (?, '1', 'sc-ci-testbed', ?, ?)", (provider, _stamp(built), digest))
    for adv in advisories:
        provider = _PROVIDER[adv.ecosystem]
        refs = [{"url": f"https://nvd.nist.gov/vuln/detail/{adv.cve}"}]
        nvd_id = writer.vulnerability(adv.cve, "nvd", {
            "id": adv.cve, "assigner": ["cve@mitre.org"], "description": f"{adv.title} (sc-ci test bed record).",
            "refs": refs, "severities": _severity(adv, "CHML")}, built)
        if adv.ghsa:
            vuln_id = writer.vulnerability(adv.ghsa, provider, {
                "id": adv.ghsa, "description": adv.title, "aliases": [adv.cve],
                "refs": [{"url": f"https://github.com/advisories/{adv.ghsa}"}, *refs],
                "severities": _severity(adv, "CHML")}, built)
            os_id = None
        else:
            vuln_id = writer.vulnerability(adv.cve, provider, {
                "id": adv.cve, "description": adv.title, "refs": refs, "severities": _severity(adv, "CHMLN")},
                built)
            os_id = writer.operating_system(adv.distro, adv.release)
        del nvd_id
        package_blob = {
            "cves": [adv.cve],
            "ranges": [{"version": {"type": _VERSION_FORMAT[adv.ecosystem], "constraint": _constraint(adv)},
                        "fix": {"version": adv.fixed, "state": "fixed"}}],
        }
        conn.execute(
            "INSERT INTO affected_package_handles (vulnerability_id, operating_system_id, package_id, blob_id) "
            "VALUES (?, ?, ?, ?)",
            (vuln_id, os_id, writer.package(adv.ecosystem, adv.package.lower()), writer.blob(package_blob)))


def build(directory: Path, *, built: datetime | None = None, advisories: Iterable[Advisory] = ADVISORIES) -> GrypeDb:
    """Write DIRECTORY/vulnerability.db (what `grype db import` loads)."""
    when = (built or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DB_FILE
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA_FILE.read_text(encoding="utf-8"))
        with conn:
            write_rows(conn, advisories, when)
    finally:
        conn.close()
    return GrypeDb(path, when)


def archive(db: GrypeDb) -> bytes:
    """vulnerability-db.tar.gz with vulnerability.db at its root (what a listing's `path` points at)."""
    out = io.BytesIO()
    data = db.path.read_bytes()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(DB_FILE)
        info.size, info.mode, info.mtime = len(data), 0o644, int(db.built.timestamp())
        tar.addfile(info, io.BytesIO(data))
    return gzip_bytes(out.getvalue())


def listing(db: GrypeDb, archive_bytes: bytes, *, path: str = ARCHIVE_NAME) -> dict[str, Any]:
    """/v6/latest.json for GRYPE_DB_UPDATE_URL: the archive's path (relative to the listing) and checksum."""
    return {
        "status": "active",
        "schemaVersion": SCHEMA_VERSION,
        "built": db.built.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "path": path,
        "checksum": "sha256:" + hashlib.sha256(archive_bytes).hexdigest(),
    }
