"""`sc-ci release create` end to end with the real tools: a Simple Container project in a real git repository
(with a bare remote on disk), images named as Simple Container pushes them, scan → sign → SBOM → provenance →
verify, the summary, release.json, the git tag; a second release of the same digests adds nothing."""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sc_ci.runner import base_env
from testbed.cli import sc_ci
from testbed.demo import git
from testbed.images import PushedImage, push_image
from testbed.keys import KeyPair
from testbed.registry import LocalRegistry

if TYPE_CHECKING:
    from testbed.vulndb.fixtures import ServedDbs

pytest_plugins = ["testbed.vulndb.fixtures"]
VERSION = "2026.1.7"
BUILDER = "https://ci.example.com/release"
SOURCE = "https://github.com/acme/shop"



@dataclass
class Project:
    root: Path
    remote: Path
    head: str
    registry: str  # REGISTRY/PREFIX
    images: dict[str, PushedImage]  # service → pushed image
    upstream: PushedImage
    out: Path

    def run(self, *extra: str, keys: KeyPair) -> subprocess.CompletedProcess[str]:
        return sc_ci("release", "create", "-s", "shop", "-e", "production", "--version", VERSION,
                     "--registry", self.registry, "--output", str(self.out), "--source-repo", SOURCE,
                     "--git-sha", self.head, "--workflow-name", "release", *extra, cwd=self.root,
                     env={"COSIGN_PASSWORD": keys.password})

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.out / "release.json").read_text())
        return data


def _security(key: Path, dbs: ServedDbs, cache: Path, fail_on: str = "") -> str:
    gate = f"    failOn: {fail_on}\n" if fail_on else ""
    return (
        "security:\n"
        "  scan:\n    enabled: true\n    tools: [grype, trivy]\n" + gate +
        f"    db:\n      cacheDir: {cache}\n      grypeUpdateUrl: {dbs.grype_update_url}\n"
        f"      trivyRepository: {dbs.trivy_repository}\n"
        f"  signing:\n    enabled: true\n    privateKey: {key}\n    sigstore:\n      transparencyLog: false\n"
        "  sbom:\n    enabled: true\n    format: cyclonedx-json\n    extraFormats: [spdx-json]\n"
        f"  provenance:\n    enabled: true\n    builder:\n      id: {BUILDER}\n"
        "  policy:\n    failOpen: false\n"
    )


@pytest.fixture
def project(tmp_path: Path, registry: LocalRegistry, keys: KeyPair, vulndbs: ServedDbs) -> Project:
    """A Simple Container project: stack `shop`, env `production`, cloud-compose with two built services and
    one upstream image; committed in a git repository whose `origin` is a bare repository on disk."""
    prefix = f"acme-{secrets.token_hex(3)}"
    images = {svc: push_image(registry.host, base, repository=f"{prefix}/shop--{svc}", tag=VERSION)
              for svc, base in (("api", "alpine-app"), ("web", "service-2"))}
    upstream = push_image(registry.host, "debian-app", repository=f"{prefix}/upstream-db", tag="16")
    root = tmp_path / "repo"
    stack = root / ".sc" / "stacks" / "shop"
    stack.mkdir(parents=True)
    (root / "docker-compose.yaml").write_text(
        "services:\n  api:\n    build: ./api\n  web:\n    build: ./web\n"
        f"  db:\n    image: {upstream.ref}\n")
    (stack / "client.yaml").write_text(
        "schemaVersion: 1.0\n" + _security(keys.private, vulndbs, tmp_path / "vulndb") +
        "stacks:\n  production:\n    type: cloud-compose\n    parent: acme/infra\n    config:\n"
        "      dockerComposeFile: ${git:root}/docker-compose.yaml\n      runs: [api, web, db]\n")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "origin", "main")
    return Project(root, remote, git(root, "rev-parse", "HEAD"), f"{registry.host}/{prefix}", images, upstream,
                  tmp_path / "out")



def test_release_create_runs_everything_tags_and_is_idempotent(project: Project, keys: KeyPair,
                                                               registry: LocalRegistry, cosign: Path) -> None:
    done = project.run("--push-tag", keys=keys)
    assert done.returncode == 0, done.stdout + done.stderr
    # the summary table: one row per image, a column per feature, the upstream image scanned only
    for svc in ("api", "web"):
        assert f"{project.registry}/shop--{svc}@" in done.stdout
    assert "(upstream)" in done.stdout
    assert "Verify it yourself:" in done.stdout
    assert f"release passed; git tag: v{VERSION} created at {project.head[:12]}, pushed to origin" in done.stdout
    # scan findings on the console (AC-4.2): the merged ids of alpine-app
    assert "findings in" in done.stdout
    assert "CVE-2018-18074" in done.stdout

    manifest = project.manifest()
    assert manifest["schema"] == "sc-ci/release/v1"
    assert manifest["verdict"] == {"status": "passed", "exitCode": 0, "blocking": 0, "tolerated": 0}
    assert manifest["steps"] == ["scan", "sign", "sbom", "sbom-attach", "provenance", "verify"]
    by_digest = {i["digest"]: i for i in manifest["images"]}
    upstream = by_digest[project.upstream.by_digest]
    assert upstream["built"] is False
    assert {r["step"]: r["outcome"] for r in upstream["results"]}["scan"] == "ok"
    signing = [r for r in upstream["results"] if r["step"] in ("sign", "sbom-attach", "provenance", "verify")]
    assert len(signing) == 4
    assert all(r["outcome"] == "skipped" and "upstream image" in r["summary"]
                                     for r in signing)
    api = by_digest[project.images["api"].by_digest]
    outcomes = {(r["step"], r["outcome"]) for r in api["results"]}
    assert outcomes == {("scan", "ok"), ("sign", "ok"), ("sbom", "ok"), ("sbom-attach", "ok"),
                        ("provenance", "ok"), ("verify", "ok")}
    formats = {a["format"] for r in api["results"] if r["step"] == "sbom-attach" for a in r["artifacts"]}
    assert formats == {"cyclonedx-json", "spdx-json"}

    # the tag: annotated, on the provenance's commit, listing the digests, pushed to the bare remote
    assert git(project.root, "cat-file", "-t", f"v{VERSION}") == "tag"
    assert git(project.root, "rev-parse", f"v{VERSION}^{{commit}}") == project.head
    message = git(project.root, "tag", "-l", "--format=%(contents)", f"v{VERSION}")
    assert project.images["api"].by_digest in message
    assert project.images["web"].by_digest in message
    assert git(project.remote, "rev-parse", f"v{VERSION}^{{commit}}") == project.head

    # plain cosign accepts what was made; the upstream image got nothing written
    for image in project.images.values():
        ok = subprocess.run([str(cosign), "verify", "--key", str(keys.public), "--insecure-ignore-tlog=true",
                             image.by_digest], env=base_env(), capture_output=True, text=True, check=False)
        assert ok.returncode == 0, ok.stderr
    assert registry.legacy_layers(project.upstream, "sig") == 0

    before = {(s, k): registry.legacy_layers(img, k) for s, img in project.images.items() for k in ("sig", "att")}
    assert all(n >= 1 for n in before.values())
    again = project.run("--push-tag", keys=keys)
    assert again.returncode == 0, again.stdout + again.stderr
    after = {(s, k): registry.legacy_layers(img, k) for s, img in project.images.items() for k in ("sig", "att")}
    assert after == before  # zero new signatures and zero new attestations
    assert again.stdout.count("already signed") == 2
    assert again.stdout.count("already attested") >= 6  # 2 SBOM formats + provenance, per built image
    assert f"v{VERSION} already there at {project.head[:12]}" in again.stdout


def test_a_tripped_gate_stops_signing_that_image_and_no_tag(project: Project, keys: KeyPair,
                                                            registry: LocalRegistry, tmp_path: Path) -> None:
    client = project.root / ".sc" / "stacks" / "shop" / "client.yaml"
    client.write_text(client.read_text().replace("    tools: [grype, trivy]\n",
                                                 "    tools: [grype, trivy]\n    failOn: high\n"))
    done = project.run(keys=keys)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the scan gate tripped" in done.stderr
    assert f"v{VERSION} not created: the release failed" in done.stdout
    assert registry.legacy_layers(project.images["api"], "sig") == 0  # alpine-app has High findings
    manifest = project.manifest()
    api = next(i for i in manifest["images"] if i["digest"] == project.images["api"].by_digest)
    sign = next(r for r in api["results"] if r["step"] == "sign")
    assert sign["outcome"] == "skipped"
    assert "scan failed" in sign["summary"]
    assert subprocess.run(["git", "-C", str(project.root), "rev-parse", "-q", "--verify", f"refs/tags/v{VERSION}"],
                          capture_output=True, check=False).returncode != 0


def test_an_existing_tag_at_another_commit_is_refused_before_anything_runs(project: Project, keys: KeyPair,
                                                                           registry: LocalRegistry) -> None:
    (project.root / "README").write_text("next\n")
    git(project.root, "add", "README")
    git(project.root, "commit", "-q", "-m", "next")
    git(project.root, "tag", "-a", "-m", "old", f"v{VERSION}", "HEAD")
    done = project.run(keys=keys)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"tag v{VERSION} already exists at" in done.stderr
    assert "a release tag is never moved" in done.stderr
    assert registry.legacy_layers(project.images["api"], "sig") == 0


def test_dry_run_prints_the_commands_and_changes_nothing(project: Project, keys: KeyPair,
                                                         registry: LocalRegistry) -> None:
    done = project.run("--dry-run", keys=keys)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dry run: nothing was executed" in done.stdout
    for step in ("scan", "sign", "sbom", "sbom-attach", "provenance", "verify"):
        assert f"  [{step}] " in done.stdout
    assert f"v{VERSION} not created (dry run)" in done.stdout
    assert registry.legacy_layers(project.images["api"], "sig") == 0
    assert subprocess.run(["git", "-C", str(project.root), "tag", "-l"], capture_output=True, text=True,
                          check=False).stdout == ""


def test_shards_cover_every_image_once_and_merge_into_one_verdict(project: Project, keys: KeyPair,
                                                                  tmp_path: Path) -> None:
    manifests = []
    seen: list[str] = []
    for k in (1, 2):
        out = tmp_path / f"shard-{k}"
        done = sc_ci("release", "create", "-s", "shop", "-e", "production", "--version", VERSION, "--registry",
                     project.registry, "--shard", f"{k}/2", "--output", str(out), "--no-tag", "--source-repo",
                     SOURCE, "--git-sha", project.head, "--workflow-name", "release", cwd=project.root,
                     env={"COSIGN_PASSWORD": keys.password})
        assert done.returncode == 0, done.stdout + done.stderr
        data = json.loads((out / "release.json").read_text())
        assert data["shard"] == f"{k}/2"
        seen += [i["digest"] for i in data["images"]]
        manifests.append(out / "release.json")
    assert sorted(seen) == sorted([*(i.by_digest for i in project.images.values()), project.upstream.by_digest])
    merged = sc_ci("release", "merge", *map(str, manifests), "--output", str(tmp_path / "merged"), cwd=tmp_path)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    data = json.loads((tmp_path / "merged" / "release.json").read_text())
    assert len(data["images"]) == 3
    assert data["verdict"]["status"] == "passed"
    assert "release passed" in merged.stdout


def test_release_merge_refuses_what_is_not_a_manifest(tmp_path: Path) -> None:
    bogus = tmp_path / "release.json"
    bogus.write_text('{"schema": "something-else", "images": []}')
    done = sc_ci("release", "merge", str(bogus), cwd=tmp_path)
    assert done.returncode == 2
    assert "is not an sc-ci release manifest" in done.stderr


def test_a_second_release_with_the_cache_reuses_records_until_the_registry_changes(
        project: Project, keys: KeyPair, other_keys: KeyPair, registry: LocalRegistry, cosign: Path,
        tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache"), "--no-tag"]
    first = project.run(*cache, keys=keys)
    assert first.returncode == 0, first.stdout + first.stderr
    before = {(s, k): registry.legacy_layers(img, k) for s, img in project.images.items() for k in ("sig", "att")}
    again = project.run(*cache, keys=keys)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("unchanged since") >= 2 * 5  # every signing step of both built images
    assert "(cached)" in again.stdout  # the SBOMs came from the digest-keyed cache, syft did not run
    assert {(s, k): registry.legacy_layers(img, k) for s, img in project.images.items()
            for k in ("sig", "att")} == before
    # someone else signs the api image: its tags changed, so its record no longer applies
    other = subprocess.run([str(cosign), "sign", "--yes", "--key", str(other_keys.private), "--tlog-upload=false",
                            "--new-bundle-format=false", "--use-signing-config=false",
                            project.images["api"].by_digest],
                           env={**base_env(), "COSIGN_PASSWORD": other_keys.password}, capture_output=True,
                           text=True, check=False)
    assert other.returncode == 0, other.stderr
    third = project.run(*cache, keys=keys)
    assert third.returncode == 0, third.stdout + third.stderr
    api = next(i for i in project.manifest()["images"] if i["digest"] == project.images["api"].by_digest)
    sign = next(r for r in api["results"] if r["step"] == "sign")
    assert sign["summary"].startswith("already signed")  # checked with cosign again, not taken from the record
    assert registry.legacy_layers(project.images["api"], "sig") == before[("api", "sig")] + 1  # only theirs
