"""Trivy's vulnerability DB (schema 2: bbolt trivy.db + metadata.json) built from the known advisories."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from testbed.oci import OCI_MANIFEST, Blob, RegistryClient, canonical_json, gzip_bytes
from testbed.vulndb import bbolt
from testbed.vulndb.known import ADVISORIES, Advisory

SCHEMA_VERSION = 2
DB_MEDIA_TYPE = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
DB_CONFIG_MEDIA_TYPE = "application/vnd.aquasec.trivy.config.v1+json"
DEFAULT_REPOSITORY = "aquasecurity/trivy-db"  # pushed as <host>/<repository>:2, what --db-repository names

# Bucket names and data sources as trivy-db's vulnsrc packages write them.
_SOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "apk": ("alpine {release}", {"ID": "alpine", "Name": "Alpine Secdb", "URL": "https://secdb.alpinelinux.org/"}),
    "deb": ("debian {release}", {"ID": "debian", "Name": "Debian Security Tracker",
                                 "URL": "https://salsa.debian.org/security-tracker-team/security-tracker"}),
    "python": ("pip::GitHub Security Advisory pip",
               {"ID": "ghsa", "Name": "GitHub Security Advisory pip",
                "URL": "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Apip"}),
    "npm": ("npm::GitHub Security Advisory npm",
            {"ID": "ghsa", "Name": "GitHub Security Advisory npm",
             "URL": "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm"}),
}
_SEVERITY = {"Low": 1, "Medium": 2, "High": 3, "Critical": 4}  # trivy-db types.Severity


@dataclass(frozen=True)
class TrivyDb:
    """A built trivy DB: the cache dir trivy reads (`--cache-dir`), its files, and the built time."""

    cache_dir: Path
    built: datetime

    @property
    def db_dir(self) -> Path:
        return self.cache_dir / "db"

    @property
    def db_file(self) -> Path:
        return self.db_dir / "trivy.db"

    @property
    def metadata_file(self) -> Path:
        return self.db_dir / "metadata.json"


def _bucket_name(adv: Advisory) -> str:
    return _SOURCES[adv.ecosystem][0].format(release=adv.release)


def _normalized(name: str, ecosystem: str) -> str:
    # trivy looks PyPI names up normalized (PEP 503); npm names as they are
    return name.lower().replace("_", "-").replace(".", "-") if ecosystem == "python" else name


def _advisory_value(adv: Advisory) -> dict[str, Any]:
    if adv.ecosystem in ("apk", "deb"):
        return {"FixedVersion": adv.fixed}
    value: dict[str, Any] = {"PatchedVersions": [adv.fixed], "VulnerableVersions": [adv.vulnerable]}
    if adv.ghsa:
        value["VendorIDs"] = [adv.ghsa]
    return value


def _vulnerability(adv: Advisory, built: datetime) -> dict[str, Any]:
    source_id = _SOURCES[adv.ecosystem][1]["ID"]
    detail: dict[str, Any] = {
        "Title": adv.title,
        "Description": f"{adv.title} (sc-ci test bed record of {adv.cve}).",
        "Severity": adv.severity.upper(),
        "VendorSeverity": {source_id: _SEVERITY[adv.severity], "nvd": _SEVERITY[adv.severity]},
        "References": [f"https://nvd.nist.gov/vuln/detail/{adv.cve}"]
                      + ([f"https://github.com/advisories/{adv.ghsa}"] if adv.ghsa else []),
        "PublishedDate": (built - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "LastModifiedDate": (built - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if adv.cvss_v3:
        detail["CVSS"] = {"nvd": {"V3Vector": adv.cvss_v3}}
    return detail


def tree(advisories: Iterable[Advisory] = ADVISORIES, *, built: datetime) -> dict[bytes, Any]:
    """The bbolt buckets: data-source, one bucket per distro release / language source with
    package -> vulnerability id -> advisory, and `vulnerability` (id -> details; it must exist even
    when empty or trivy panics)."""
    root: dict[bytes, Any] = {b"data-source": {}, b"vulnerability": {}, b"vulnerability-id": {}}
    for adv in advisories:
        bucket = _bucket_name(adv)
        root[b"data-source"][bucket.encode()] = json.dumps(_SOURCES[adv.ecosystem][1]).encode()
        packages = root.setdefault(bucket.encode(), {})
        package = packages.setdefault(_normalized(adv.package, adv.ecosystem).encode(), {})
        package[adv.cve.encode()] = json.dumps(_advisory_value(adv)).encode()
        root[b"vulnerability"][adv.cve.encode()] = json.dumps(_vulnerability(adv, built)).encode()
        root[b"vulnerability-id"][adv.cve.encode()] = b"{}"
    return root


def metadata(built: datetime, *, downloaded: datetime | None = None) -> dict[str, Any]:
    """metadata.json beside trivy.db; NextUpdate a day after the build, as upstream publishes it."""
    def stamp(when: datetime) -> str:
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")

    return {"Version": SCHEMA_VERSION, "NextUpdate": stamp(built + timedelta(days=1)), "UpdatedAt": stamp(built),
            "DownloadedAt": stamp(downloaded or built)}


def build(cache_dir: Path, *, built: datetime | None = None,
          advisories: Iterable[Advisory] = ADVISORIES) -> TrivyDb:
    """Write CACHE/db/trivy.db and metadata.json: a filled `--cache-dir` for `--skip-db-update`."""
    when = (built or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    db = TrivyDb(cache_dir, when)
    bbolt.write(db.db_file, tree(advisories, built=when))
    db.metadata_file.write_text(json.dumps(metadata(when)), encoding="utf-8")
    return db


def archive(db: TrivyDb) -> bytes:
    """db.tar.gz (trivy.db + metadata.json at its root): the layer of the DB artifact."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in (db.db_file, db.metadata_file):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(db.built.timestamp())
            tar.addfile(info, io.BytesIO(data))
    return gzip_bytes(out.getvalue())


def push(db: TrivyDb, client: RegistryClient, *, repository: str = DEFAULT_REPOSITORY,
         tag: str = str(SCHEMA_VERSION)) -> str:
    """Push the DB as the OCI artifact trivy's `--db-repository HOST/REPO:2` pulls; returns its digest."""
    layer = Blob(DB_MEDIA_TYPE, archive(db))
    config = Blob(DB_CONFIG_MEDIA_TYPE, b"{}")
    manifest = Blob(OCI_MANIFEST, canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor(annotations={"org.opencontainers.image.title": "db.tar.gz"})],
        "annotations": {"org.opencontainers.image.created": db.built.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }))
    client.push_blob(repository, config)
    client.push_blob(repository, layer)
    return client.push_manifest(repository, tag, manifest)
