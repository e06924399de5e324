"""Real grype and trivy against the local registry with the test-bed DBs: exact known findings, the DB prepared once
and used offline, too-old and missing DBs, failures classified, and SBOM scans compared with image scans."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sc_ci.errors import StepFailed, ToolError
from sc_ci.tools import syft as syft_mod
from sc_ci.tools.grype import Grype
from sc_ci.tools.trivy import Trivy
from sc_ci.tools.vulndb import DbSettings, VulnDbError
from testbed.images import PushedImage
from testbed.registry import LocalRegistry
from testbed.vulndb import grype_db, trivy_db
from testbed.vulndb.known import KnownFinding, Scanner, advisory, expected
from testbed.vulndb.serve import GrypeListingServer, ServedDbs

pytest_plugins = ["testbed.vulndb.fixtures"]  # vulndbs, prepared_vulndbs, fresh_vulndb_cache, *_scanner

if TYPE_CHECKING:
    from testbed.vulndb.fixtures import CacheFactory, PreparedDbs

Found = frozenset[KnownFinding]
TARGETS = [("alpine-app", "linux/amd64"), ("debian-app", "linux/amd64"), ("multiarch", "linux/amd64"),
           ("multiarch", "linux/arm64")]


# ---- reading the reports (the product's parsers live in sc_ci/scan; these only pick what tests assert) ----


def grype_findings(report: Mapping[str, Any]) -> Found:
    out = set()
    for match in report.get("matches", []):
        vuln, artifact = match["vulnerability"], match["artifact"]
        related = [r["id"] for r in match.get("relatedVulnerabilities", []) if r["id"].startswith("CVE-")]
        cve = vuln["id"] if vuln["id"].startswith("CVE-") else (related or [""])[0]
        fixed = (vuln.get("fix", {}).get("versions") or [""])[0]
        out.add(KnownFinding(vuln["id"], cve, artifact["name"], artifact["version"], fixed, vuln["severity"]))
    return frozenset(out)


def trivy_findings(report: Mapping[str, Any]) -> Found:
    out = set()
    for result in report.get("Results", []):
        for vuln in result.get("Vulnerabilities", []):
            out.add(KnownFinding(vuln["VulnerabilityID"], vuln["VulnerabilityID"], vuln["PkgName"],
                                 vuln["InstalledVersion"], vuln.get("FixedVersion", ""), vuln["Severity"].title()))
    return frozenset(out)


def scan_image(scanner: Grype | Trivy, settings: DbSettings, ref: str) -> Found:
    if isinstance(scanner, Grype):
        return grype_findings(scanner.scan(settings=settings, image=ref, plain_http=True))
    return trivy_findings(scanner.scan(settings=settings, image=ref, plain_http=True))


def pretty(found: Iterable[KnownFinding]) -> str:
    return "\n".join(f"  {f.id} {f.package} {f.version} -> {f.fixed} ({f.severity})" for f in sorted(found))


@pytest.fixture(params=["grype", "trivy"])
def scanner(request: pytest.FixtureRequest) -> Grype | Trivy:
    value: Grype | Trivy = request.getfixturevalue(f"{request.param}_scanner")
    return value


def name_of(scanner: Grype | Trivy) -> Scanner:
    return "grype" if isinstance(scanner, Grype) else "trivy"


# ---- exact findings ------------------------------------------------------------------------------


@pytest.mark.parametrize(("image", "platform"), TARGETS, ids=[f"{i}-{p.split('/')[1]}" for i, p in TARGETS])
def test_exact_known_findings(scanner: Grype | Trivy, prepared_vulndbs: PreparedDbs,
                              demo_images: dict[str, PushedImage], image: str, platform: str) -> None:
    pushed = demo_images[image]
    found = scan_image(scanner, prepared_vulndbs.ready(scanner), pushed.platform_by_digest(platform))
    want = expected(name_of(scanner), image, platform)
    assert found == want, f"{name_of(scanner)} on {image} {platform}\nfound:\n{pretty(found)}\nwanted:\n{pretty(want)}"


def test_grype_reports_ghsa_with_the_cve_and_trivy_the_cve(grype_scanner: Grype, trivy_scanner: Trivy,
                                                           prepared_vulndbs: PreparedDbs,
                                                           demo_images: dict[str, PushedImage]) -> None:
    ref = demo_images["alpine-app"].by_digest
    settings = prepared_vulndbs.ready(grype_scanner)
    assert prepared_vulndbs.ready(trivy_scanner) == settings
    report = grype_scanner.scan(settings=settings, image=ref, plain_http=True)
    requests_match = next(m for m in report["matches"] if m["artifact"]["name"] == "requests")
    assert requests_match["vulnerability"]["id"] == "GHSA-x84v-xcm2-53pg"
    assert [r["id"] for r in requests_match["relatedVulnerabilities"]] == ["CVE-2018-18074"]
    trivy = trivy_findings(trivy_scanner.scan(settings=settings, image=ref, plain_http=True))
    assert {f.id for f in trivy if f.package == "requests"} == {"CVE-2018-18074"}
    # the merge key: (package, version, CVE) is the same set from both scanners
    grype = grype_findings(report)
    assert {(f.package, f.version, f.cve) for f in grype} == {(f.package, f.version, f.cve) for f in trivy}


# ---- the DB: once per run, offline, too old, missing ----------------------------------------------


def test_db_is_loaded_once_for_many_images(grype_scanner: Grype, trivy_scanner: Trivy, vulndbs: ServedDbs,
                                           fresh_vulndb_cache: CacheFactory,
                                           demo_images: dict[str, PushedImage]) -> None:
    settings = fresh_vulndb_cache()
    server = _server(vulndbs)
    listings, archives = server.listing_fetches, server.archive_fetches
    started = time.monotonic()
    grype_info = grype_scanner.prepare_db(settings)
    trivy_info = trivy_scanner.prepare_db(settings)
    prepared = time.monotonic() - started
    assert (grype_info.source, trivy_info.source) == ("downloaded", "downloaded")
    assert (server.listing_fetches - listings, server.archive_fetches - archives) == (1, 1)
    assert grype_info.built == vulndbs.grype.built
    assert trivy_info.built == vulndbs.trivy.built
    downloaded_at = _trivy_downloaded_at(settings)

    images = [demo_images[f"service-{i}"].by_digest for i in (1, 2, 3)] + [demo_images["alpine-app"].by_digest]
    started = time.monotonic()
    for ref in images:
        assert scan_image(grype_scanner, settings, ref)
        assert scan_image(trivy_scanner, settings, ref)
    scanned = time.monotonic() - started
    assert (server.listing_fetches - listings, server.archive_fetches - archives) == (1, 1)  # scans: no DB traffic
    assert _trivy_downloaded_at(settings) == downloaded_at
    print(f"prepare both DBs: {prepared:.2f}s; {len(images)} images x 2 scanners: {scanned:.2f}s")

    # a second prepare in the same cache checks the listing, downloads nothing
    assert grype_scanner.prepare_db(settings).source == "cache"
    assert trivy_scanner.prepare_db(settings).source == "cache"
    assert server.archive_fetches - archives == 1
    assert _trivy_downloaded_at(settings) == downloaded_at


def test_offline_uses_only_the_cache(grype_scanner: Grype, trivy_scanner: Trivy, vulndbs: ServedDbs,
                                     prepared_vulndbs: PreparedDbs, demo_images: dict[str, PushedImage]) -> None:
    """Offline with every mirror and proxy pointing at a dead port: prepare and scan still work, no request made."""
    server = _server(vulndbs)
    before = dict(server.requests)
    dead = "http://127.0.0.1:9"
    prepared_vulndbs.ready(grype_scanner)
    offline = DbSettings(prepared_vulndbs.ready(trivy_scanner).cache_dir, offline=True, grype_update_url=dead,
                         trivy_repository="127.0.0.1:9/aquasecurity/trivy-db:2")
    no_network = {**os.environ, "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "NO_PROXY": "127.0.0.1,localhost"}
    grype = Grype(grype_scanner.path, grype_scanner.version, no_network)
    trivy = Trivy(trivy_scanner.path, trivy_scanner.version, no_network)
    assert grype.prepare_db(offline).source == "cache"
    assert trivy.prepare_db(offline).source == "cache"
    ref = demo_images["alpine-app"].by_digest
    assert scan_image(grype, offline, ref) == expected("grype", "alpine-app")
    assert scan_image(trivy, offline, ref) == expected("trivy", "alpine-app")
    assert dict(server.requests) == before


def test_missing_db_offline_is_an_error_with_the_fix(scanner: Grype | Trivy, tmp_path: Path,
                                                     demo_images: dict[str, PushedImage]) -> None:
    settings = DbSettings(tmp_path / "empty", offline=True)
    with pytest.raises(VulnDbError) as caught:
        scanner.prepare_db(settings)
    assert caught.value.what.startswith(f"no {name_of(scanner)} vulnerability DB in {tmp_path / 'empty'}")
    assert "Offline mode uses only the cache" in caught.value.fix
    with pytest.raises(VulnDbError, match="vulnerability DB"):  # a scan without a prepared DB says the same
        scanner.scan(settings=settings, image=demo_images["service-1"].by_digest, plain_http=True)


def test_too_old_db_is_refused(grype_scanner: Grype, trivy_scanner: Trivy, tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    settings = DbSettings(tmp_path / "cache", offline=True, max_age=timedelta(days=7))
    grype_file = grype_db.build(tmp_path / "old-grype", built=old)
    with pytest.raises(VulnDbError, match="grype vulnerability DB is too old") as caught:
        grype_scanner.import_db(settings, grype_file.path)
    assert "10.0 days ago (allowed: 7.0 days)" in caught.value.what
    trivy_db.build(settings.trivy_dir, built=old)
    with pytest.raises(VulnDbError, match="trivy vulnerability DB is too old") as trivy_caught:
        trivy_scanner.prepare_db(settings)
    assert "Refresh the cache directory" in trivy_caught.value.fix
    # the same DBs are fine for a run that allows them
    relaxed = DbSettings(settings.cache_dir, offline=True, max_age=timedelta(days=30))
    assert grype_scanner.prepare_db(relaxed).built == grype_file.built
    assert trivy_scanner.prepare_db(relaxed).built == old.replace(microsecond=0)


def test_grype_import_and_a_newer_db_on_the_mirror(grype_scanner: Grype, vulndbs: ServedDbs, tmp_path: Path) -> None:
    settings = DbSettings(tmp_path / "cache", offline=True)
    imported = grype_scanner.import_db(settings, vulndbs.grype.path)
    assert imported.source == "imported"
    assert imported.schema == grype_db.SCHEMA_VERSION
    assert imported.location == settings.grype_dir / "6" / "vulnerability.db"
    newer = grype_db.build(tmp_path / "newer", built=vulndbs.grype.built + timedelta(hours=1))
    with GrypeListingServer(newer) as mirror:
        online = DbSettings(settings.cache_dir, grype_update_url=mirror.update_url)
        assert grype_scanner.prepare_db(online).source == "downloaded"
        assert grype_scanner.prepare_db(online).built == newer.built


# ---- failures ------------------------------------------------------------------------------------


def test_image_not_found(scanner: Grype | Trivy, prepared_vulndbs: PreparedDbs, registry: LocalRegistry) -> None:
    ref = f"{registry.host}/demo/does-not-exist@sha256:{'0' * 64}"
    with pytest.raises(StepFailed, match="could not find"):
        scanner.scan(settings=prepared_vulndbs.ready(scanner), image=ref, plain_http=True)


def test_registry_denies_access(scanner: Grype | Trivy, prepared_vulndbs: PreparedDbs, auth_registry: LocalRegistry,
                                tmp_path: Path) -> None:
    from testbed.images import push_image

    pushed = push_image(auth_registry.host, "service-1", auth=auth_registry.auth)
    empty_config = tmp_path / "docker"
    empty_config.mkdir()
    (empty_config / "config.json").write_text("{}")
    with pytest.raises(StepFailed, match="denied access"):
        scanner.scan(settings=prepared_vulndbs.ready(scanner), image=pushed.by_digest, plain_http=True,
                     docker_config=str(empty_config))
    logged_in = tmp_path / "logged-in"
    auth_registry.write_docker_config(logged_in)
    found = scan_image_with(scanner, prepared_vulndbs.ready(scanner), pushed.by_digest, str(logged_in))
    assert found == expected(name_of(scanner), "service-1")


def scan_image_with(scanner: Grype | Trivy, settings: DbSettings, ref: str, docker_config: str) -> Found:
    if isinstance(scanner, Grype):
        return grype_findings(scanner.scan(settings=settings, image=ref, plain_http=True, docker_config=docker_config))
    return trivy_findings(scanner.scan(settings=settings, image=ref, plain_http=True, docker_config=docker_config))


# ---- SBOM scans vs image scans -------------------------------------------------------------------

SBOM_FORMATS = ("cyclonedx-json@1.6", "cyclonedx-json", "spdx-json")  # syft's default CycloneDX is 1.7


@pytest.fixture(scope="session")
def syft_sboms(demo_images: dict[str, PushedImage], tmp_path_factory: pytest.TempPathFactory
               ) -> Callable[[str, str], Path]:
    """sboms(image, format) -> syft's SBOM of the demo image (amd64), all formats from one run per image."""
    try:
        syft = syft_mod.find(os.environ)
    except ToolError as exc:
        pytest.skip(f"{exc.what}: run `make tools`")
    root = tmp_path_factory.mktemp("sboms")
    made: dict[str, Path] = {}

    def get(image: str, fmt: str) -> Path:
        if image not in made:
            made[image] = root / image
            made[image].mkdir()
            syft.scan(demo_images[image].platform_by_digest("linux/amd64"),
                      [(f, made[image] / f"sbom.{f}") for f in SBOM_FORMATS], plain_http=True)
        return made[image] / f"sbom.{fmt}"

    return get


def sbom_expected(scanner: Scanner, image: str, fmt: str) -> Found:
    """What a scan of syft's SBOM finds, as measured (grype v0.117.0, trivy 0.68.2, syft v1.51.0; see
    testbed/vulndb/README.md): grype finds what the image scan finds; trivy reads no source/origin package
    from syft's CycloneDX (so advisories filed under `openssl`/`glibc` miss libssl1.1, libcrypto1.1, libssl3,
    libc6) and no OS at all from syft's SPDX (only language packages are matched)."""
    found = expected(scanner, image)
    if scanner == "grype":
        return found
    os_findings = {f for f in found if advisory(f.cve).ecosystem in ("apk", "deb")}
    if fmt.startswith("spdx"):
        return found - os_findings
    return found - {f for f in os_findings if f.package != advisory(f.cve).package}


@pytest.mark.parametrize("image", ["alpine-app", "debian-app"])
@pytest.mark.parametrize("fmt", ["cyclonedx-json@1.6", "cyclonedx-json", "spdx-json"])
def test_sbom_scan_compared_with_the_image_scan(scanner: Grype | Trivy, prepared_vulndbs: PreparedDbs,
                                                demo_images: dict[str, PushedImage],
                                                syft_sboms: Callable[[str, str], Path], image: str, fmt: str) -> None:
    settings = prepared_vulndbs.ready(scanner)
    name = name_of(scanner)
    from_image = scan_image(scanner, settings, demo_images[image].platform_by_digest("linux/amd64"))
    assert from_image == expected(name, image)
    sbom = syft_sboms(image, fmt)
    if name == "trivy" and fmt == "cyclonedx-json":  # syft's default is CycloneDX 1.7; trivy 0.68 reads <= 1.6
        with pytest.raises(StepFailed, match="cannot read the CycloneDX version") as caught:
            scanner.scan(settings=settings, sbom=sbom)
        assert "cyclonedx-json@1.6" in caught.value.fix
        return
    report = scanner.scan(settings=settings, sbom=sbom)
    from_sbom = grype_findings(report) if isinstance(scanner, Grype) else trivy_findings(report)
    print(f"{name} {image} {fmt}: image {len(from_image)}, sbom {len(from_sbom)}; "
          f"only image: {sorted(f.id + ' ' + f.package for f in from_image - from_sbom)}; "
          f"only sbom: {sorted(f.id + ' ' + f.package for f in from_sbom - from_image)}")
    want = sbom_expected(name, image, fmt)
    assert from_sbom == want, f"{name} {fmt} SBOM of {image}\nfound:\n{pretty(from_sbom)}\nwanted:\n{pretty(want)}"


def _server(dbs: ServedDbs) -> GrypeListingServer:
    return dbs.grype_server


def _trivy_downloaded_at(settings: DbSettings) -> str:
    meta: dict[str, str] = json.loads((settings.trivy_dir / "db" / "metadata.json").read_text())
    return meta["DownloadedAt"]
