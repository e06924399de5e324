"""`sc-ci image scan` with the real grype and trivy on the test images and the test bed's offline DBs: exact
merged findings (GHSA/CVE pairs counted once), the gate, the reports validated against their schemas, the
DB loaded once for many images, and the signed scan attestation checked by plain cosign."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

from sc_ci.runner import base_env
from testbed.images import PushedImage
from testbed.keys import KeyPair
from testbed.vulndb.known import expected

if TYPE_CHECKING:
    from testbed.vulndb.fixtures import ServedDbs

pytest_plugins = ["testbed.vulndb.fixtures"]
FreshImage = Callable[..., PushedImage]
SCHEMAS = Path(__file__).parents[1] / "data" / "schemas"


def sc_ci(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_"))}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=full, cwd=cwd, text=True, capture_output=True,
                          timeout=600, check=False)


def config(tmp_path: Path, dbs: ServedDbs, extra: str = "") -> Path:
    path = tmp_path / "security.yaml"
    path.write_text(f"security:\n  scan:\n    tools: [grype, trivy]\n{extra}    db:\n"
                    f"      cacheDir: {tmp_path / 'vulndb'}\n      grypeUpdateUrl: {dbs.grype_update_url}\n"
                    f"      trivyRepository: {dbs.trivy_repository}\n")
    return path


def merged_ids(image: str, platform: str = "linux/amd64") -> set[tuple[str, str, str]]:
    """(canonical id, package, version): both scanners' known findings after the GHSA → CVE mapping."""
    return {(f.cve or f.id, f.package, f.version) for s in ("grype", "trivy")
            for f in expected(s, image, platform)}  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["alpine-app", "debian-app"])
def test_scan_finds_exactly_the_known_findings_merged(name: str, fresh_image: FreshImage, vulndbs: ServedDbs,
                                                      tmp_path: Path) -> None:
    image = fresh_image(name)
    out = tmp_path / "reports"
    done = sc_ci("image", "scan", "-i", image.ref, "--config", str(config(tmp_path, vulndbs)), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "scan-report.json").read_text())
    (doc,) = report["images"]
    jsonschema.validate(doc, json.loads((SCHEMAS / "sc-ci-scan-report-v1.schema.json").read_text()))
    found = {(f["id"], f["package"]["name"], f["package"]["version"]) for f in doc["findings"]}
    assert found == merged_ids(name)
    grype_ids = {f.id for f in expected("grype", name)}
    pairs = sum(1 for f in expected("grype", name) if f.id.startswith("GHSA-"))
    assert doc["deduplicated"] == pairs  # each GHSA (grype) / CVE (trivy) pair is one finding
    assert all(set(f["foundBy"]) == {"grype", "trivy"} for f in doc["findings"])
    assert grype_ids  # the test DB knows something about this image
    sarif = json.loads((out / "scan.sarif").read_text())
    jsonschema.validate(sarif, json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()))
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {i for i, _, _ in found}
    gitlab = json.loads((out / "gl-container-scanning-report.json").read_text())
    jsonschema.validate(gitlab, json.loads((SCHEMAS / "gitlab-container-scanning-report-format-15.0.7.json")
                                           .read_text()))
    assert len(gitlab["vulnerabilities"]) == len(found)
    assert "findings in" in done.stdout  # the console table (AC-4.2)


def test_fail_on_trips_the_gate_and_an_ignore_entry_with_a_reason_lifts_it(
        fresh_image: FreshImage, vulndbs: ServedDbs, tmp_path: Path) -> None:
    image = fresh_image("debian-app")
    cfg = config(tmp_path, vulndbs)
    tripped = sc_ci("image", "scan", "-i", image.ref, "--config", str(cfg), "--fail-on", "high")
    assert tripped.returncode == 1, tripped.stdout + tripped.stderr
    assert "the scan gate tripped" in tripped.stderr
    ignored = "".join(f"      - id: {cve}\n        reason: not reachable\n        expires: 2999-01-01\n"
                      for cve, _, _ in merged_ids("debian-app"))
    cfg = config(tmp_path, vulndbs, "    ignore:\n" + ignored)
    passed = sc_ci("image", "scan", "-i", image.ref, "--config", str(cfg), "--fail-on", "high")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"{len(merged_ids('debian-app'))} suppressed" in passed.stdout


def test_one_db_load_for_many_images(fresh_image: FreshImage, vulndbs: ServedDbs, tmp_path: Path) -> None:
    images = [fresh_image(n) for n in ("alpine-app", "debian-app", "service-1", "service-2")]
    before = (vulndbs.grype_server.listing_fetches, vulndbs.grype_server.archive_fetches)
    args = [a for i in images for a in ("-i", i.ref)]
    done = sc_ci("image", "scan", *args, "--config", str(config(tmp_path, vulndbs)))
    assert done.returncode == 0, done.stdout + done.stderr
    after = (vulndbs.grype_server.listing_fetches, vulndbs.grype_server.archive_fetches)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)  # one grype DB download for four images
    assert done.stdout.count("ok   scan") == 4


def test_scan_result_attached_as_a_signed_vuln_attestation(fresh_image: FreshImage, vulndbs: ServedDbs,
                                                           keys: KeyPair, cosign: Path, tmp_path: Path) -> None:
    image = fresh_image("alpine-app")
    cfg = tmp_path / "release.yaml"
    cfg.write_text(config(tmp_path, vulndbs, "    enabled: true\n    attest: true\n").read_text()
                   + f"  signing:\n    enabled: true\n    privateKey: {keys.private}\n"
                     "    sigstore:\n      transparencyLog: false\n")
    done = sc_ci("action", "--config", str(cfg), env={"SC_CI_IMAGES": image.ref, "COSIGN_PASSWORD": keys.password})
    assert done.returncode == 0, done.stdout + done.stderr
    verified = subprocess.run([str(cosign), "verify-attestation", "--type", "vuln", "--key", str(keys.public),
                               "--insecure-ignore-tlog=true", image.by_digest], env=base_env(), text=True,
                              capture_output=True, timeout=120, check=False)
    assert verified.returncode == 0, verified.stderr
    payload = json.loads(verified.stdout.splitlines()[0])
    import base64

    statement: dict[str, Any] = json.loads(base64.b64decode(payload["payload"]))
    assert statement["predicateType"] == "https://cosign.sigstore.dev/attestation/vuln/v1"
    result = statement["predicate"]["scanner"]["result"]
    assert {(f["id"], f["package"]["name"], f["package"]["version"]) for f in result["findings"]} \
        == merged_ids("alpine-app")
