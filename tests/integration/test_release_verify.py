"""`sc-ci release verify` end to end with the real tools against a real registry: a key-signed release of a
Simple Container project (two built images, one upstream) verified from its release.json, the evidence
report (JSON against its schema, Markdown, HTML), and tampered releases each failing the right check."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from testbed import crds
from testbed.cli import sc_ci
from testbed.demo import git
from testbed.images import PushedImage, push_image
from testbed.keys import KeyPair
from testbed.oci import Blob
from testbed.registry import LocalRegistry

if TYPE_CHECKING:
    from testbed.keyless import KeylessBed
    from testbed.vulndb.fixtures import ServedDbs

pytest_plugins = ["testbed.vulndb.fixtures"]
RunScCi = Callable[..., subprocess.CompletedProcess[str]]
VERSION = "3.1.4"
BUILDER = "https://ci.example.com/release"
SOURCE = "https://github.com/acme/shop"
SCHEMA = Path(__file__).resolve().parents[2] / "sc_ci" / "schemas" / "evidence-v1.schema.json"


@dataclass
class Released:
    root: Path
    head: str
    images: dict[str, PushedImage]
    upstream: PushedImage
    out: Path
    keys: KeyPair

    @property
    def manifest_path(self) -> Path:
        return self.out / "release.json"

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.manifest_path.read_text())
        return data

    def verify(self, *extra: str, manifest: Path | None = None, evidence: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        args = ["release", "verify", "--manifest", str(manifest or self.manifest_path), "--key", str(self.keys.public),
                "--no-tlog"]
        if evidence is not None:
            args += ["--evidence", str(evidence)]
        return sc_ci(*args, *extra, cwd=self.root, env=env)


def make_release(base: Path, registry: LocalRegistry, keys: KeyPair, dbs: ServedDbs, *,
                 services: tuple[tuple[str, str], ...] = (("api", "alpine-app"), ("web", "service-2")),
                 upstream_base: str = "debian-app", tools: str = "grype, trivy") -> Released:
    prefix = f"acme-{secrets.token_hex(3)}"
    images = {svc: push_image(registry.host, image, repository=f"{prefix}/shop--{svc}", tag=VERSION)
              for svc, image in services}
    upstream = push_image(registry.host, upstream_base, repository=f"{prefix}/upstream-db", tag="16")
    root = base / "repo"
    stack = root / ".sc" / "stacks" / "shop"
    stack.mkdir(parents=True)
    compose = "services:\n" + "".join(f"  {svc}:\n    build: ./{svc}\n" for svc, _ in services)
    (root / "docker-compose.yaml").write_text(compose + f"  db:\n    image: {upstream.ref}\n")
    runs = ", ".join([svc for svc, _ in services] + ["db"])
    (stack / "client.yaml").write_text(
        "schemaVersion: 1.0\nsecurity:\n"
        f"  scan:\n    enabled: true\n    tools: [{tools}]\n    attest: true\n    failOn: critical\n"
        f"    db:\n      cacheDir: {base / 'vulndb'}\n      grypeUpdateUrl: {dbs.grype_update_url}\n"
        f"      trivyRepository: {dbs.trivy_repository}\n"
        f"  signing:\n    enabled: true\n    privateKey: {keys.private}\n    publicKey: {keys.public}\n"
        "    sigstore:\n      transparencyLog: false\n"
        "  sbom:\n    enabled: true\n    format: cyclonedx-json\n    extraFormats: [spdx-json]\n"
        f"  provenance:\n    enabled: true\n    builder:\n      id: {BUILDER}\n"
        "  policy:\n    failOpen: false\n"
        "stacks:\n  production:\n    type: cloud-compose\n    parent: acme/infra\n    config:\n"
        f"      dockerComposeFile: ${{git:root}}/docker-compose.yaml\n      runs: [{runs}]\n")
    git(base, "init", "-q", "-b", "main", str(root))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    head = git(root, "rev-parse", "HEAD")
    out = base / "out"
    done = sc_ci("release", "create", "-s", "shop", "-e", "production", "--version", VERSION,
                 "--registry", f"{registry.host}/{prefix}", "--output", str(out), "--source-repo", SOURCE,
                 "--git-sha", head, "--workflow-name", "release", "--no-tag", cwd=root,
                 env={"COSIGN_PASSWORD": keys.password})
    assert done.returncode == 0, done.stdout + done.stderr
    return Released(root, head, images, upstream, out, keys)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, registry: LocalRegistry, keys: KeyPair,
             vulndbs: ServedDbs) -> Released:
    return make_release(tmp_path_factory.mktemp("release"), registry, keys, vulndbs)


def checks(data: dict[str, Any], digest: str) -> dict[str, str]:
    image = next(i for i in data["images"] if i["digest"] == digest)
    return {c["check"]: c["status"] for c in image["checks"]}


def test_a_release_verifies_from_its_manifest_with_evidence(released: Released, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    result = released.verify(evidence=evidence)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((evidence / "evidence.json").read_text())
    Draft202012Validator(json.loads(SCHEMA.read_text())).validate(data)
    assert data["verdict"]["status"] == "verified"
    for svc, image in released.images.items():
        assert checks(data, image.by_digest) == {"tag": "pass", "signature": "pass", "sbom": "pass",
                                                 "provenance": "pass", "vuln": "pass"}, svc
        entry = next(i for i in data["images"] if i["digest"] == image.by_digest)
        assert entry["slsa"]["level"] >= 1
        signature = next(c for c in entry["checks"] if c["check"] == "signature")
        assert signature["artifacts"]
        assert all(a["digest"].startswith("sha256:") for a in signature["artifacts"])
    upstream = next(i for i in data["images"] if i["digest"] == released.upstream.by_digest)
    assert upstream["status"] == "scanned-only"
    assert {k: v for k, v in checks(data, released.upstream.by_digest).items() if k != "tag"} == {
        "signature": "skipped", "sbom": "skipped", "provenance": "skipped", "vuln": "skipped"}  # never a failure
    assert upstream["slsa"]["level"] == 0
    ssdf = {t["id"]: t for t in data["ssdf"]["tasks"]}
    assert ssdf["PS.2.1"]["practice"] == "Provide a Mechanism for Verifying Software Release Integrity"
    assert ssdf["PS.3.2"]["status"] == "pass"
    assert "sbom" in ssdf["PS.3.2"]["checks"]
    assert "PS.1.1" not in ssdf  # not a task these checks give evidence for (NIST: least-privilege storage)
    assert "all verified" in result.stdout
    markdown = (evidence / "evidence.md").read_text()
    assert markdown.count("| `") == len(data["images"])
    assert (evidence / "evidence.html").read_text().startswith("<!DOCTYPE html>")


def test_expectations_that_differ_from_the_release_fail_the_right_check(released: Released, tmp_path: Path) -> None:
    """Provenance for another commit, another builder, a scan older than the bound: each fails its check only."""
    other = "0" * 40
    result = released.verify("--git-sha", other, "--builder-id", "https://ci.example.com/other",
                             "--max-scan-age", "1s", evidence=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (tmp_path / "evidence.json").is_file(), result.stdout + result.stderr
    data = json.loads((tmp_path / "evidence.json").read_text())
    for image in released.images.values():
        found = checks(data, image.by_digest)
        assert found["provenance"] == "fail", found
        assert found["vuln"] == "fail", found
        assert found["signature"] == found["sbom"] == found["tag"] == "pass", found
    provenance = next(c for i in data["images"] for c in i["checks"] if c["check"] == "provenance")
    assert other in json.dumps(provenance["error"])
    assert "https://ci.example.com/other" in json.dumps(provenance)
    vuln = next(c for i in data["images"] for c in i["checks"] if c["check"] == "vuln")
    assert "older" in vuln["error"]["what"] or "old" in vuln["error"]["what"], vuln
    assert "FAIL provenance" in result.stdout
    assert "fix:" in result.stdout


def test_a_wrong_key_fails_every_signed_check(released: Released, other_keys: KeyPair, tmp_path: Path) -> None:
    result = sc_ci("release", "verify", "--manifest", str(released.manifest_path), "--key", str(other_keys.public),
                   "--no-tlog", "--evidence", str(tmp_path), cwd=released.root)
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads((tmp_path / "evidence.json").read_text())
    for image in released.images.values():
        found = checks(data, image.by_digest)
        assert {found[c] for c in ("signature", "sbom", "provenance", "vuln")} == {"fail"}, found


def _legacy(registry: LocalRegistry, image: PushedImage, suffix: str) -> str:
    return image.digest.replace(":", "-") + suffix


def test_a_tampered_release_fails_the_right_check(tmp_path: Path, registry: LocalRegistry, keys: KeyPair,
                                                  cosign: Path, vulndbs: ServedDbs) -> None:
    """One repository, five images released with --image; then: B's signature replaced by A's, A's attestations
    replaced by B's, C's tag re-pointed at B, an SBOM of B signed with the release's own key attached to D, E's
    attestations removed. Each fails exactly its check; what was not touched still passes."""
    repo = f"tamper-{secrets.token_hex(3)}/app"
    pushed = {n: push_image(registry.host, base, repository=repo, tag=n)
              for n, base in (("a", "service-1"), ("b", "service-2"), ("c", "service-3"), ("d", "service-4"),
                                                                  ("e", "service-5"))}
    work = tmp_path / "work"
    work.mkdir()
    (work / "security.yaml").write_text(
        "security:\n"
        f"  scan:\n    enabled: true\n    tools: [grype]\n    attest: true\n"
        f"    db:\n      cacheDir: {tmp_path / 'vulndb'}\n      grypeUpdateUrl: {vulndbs.grype_update_url}\n"
        f"  signing:\n    enabled: true\n    privateKey: {keys.private}\n"
        "    sigstore:\n      transparencyLog: false\n"
        f"  sbom:\n    enabled: true\n    format: cyclonedx-json\n    output:\n      local: {work / 'sbom'}/\n"
        f"  provenance:\n    enabled: true\n    builder:\n      id: {BUILDER}\n")
    out = work / "out"
    refs = [a for i in pushed.values() for a in ("-i", i.ref)]
    done = sc_ci("release", "create", "--config", "security.yaml", *refs, "--version", "1.0.0", "--output", str(out),
                 "--source-repo", SOURCE, "--git-sha", "1" * 40, "--workflow-name", "release",
                 "--no-tag", cwd=work, env={"COSIGN_PASSWORD": keys.password})
    assert done.returncode == 0, done.stdout + done.stderr
    client = registry.client()

    def copy(tag_from: str, tag_to: str) -> None:
        fetched = client.get_manifest(repo, tag_from)
        client.push_manifest(repo, tag_to, Blob(fetched.media_type, fetched.body))

    a, b, c, d = (pushed[n] for n in "abcd")
    copy(_legacy(registry, a, ".sig"), _legacy(registry, b, ".sig"))  # a signature copied from another image
    copy(_legacy(registry, b, ".att"), _legacy(registry, a, ".att"))  # attestations replaced
    copy(b.digest, "c")  # C's tag re-pointed at B's image
    empty = Blob("application/vnd.oci.image.index.v1+json",
                 b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}')
    client.push_manifest(repo, _legacy(registry, pushed["e"], ".att"), empty)  # E's attestations removed
    sbom_b = next((work / "sbom").glob(f"*{b.digest.replace(':', '-')}*.cdx.json"))
    forged = subprocess.run([str(cosign), "attest", "--yes", "--key", str(keys.private), "--type", "cyclonedx",
                             "--predicate", str(sbom_b), "--tlog-upload=false", "--new-bundle-format=false",
                             "--use-signing-config=false", d.by_digest],
                            env={**os.environ, "COSIGN_PASSWORD": keys.password}, capture_output=True, text=True,
                            check=False)  # an SBOM of B attested onto D with the release's own key
    assert forged.returncode == 0, forged.stderr

    result = sc_ci("release", "verify", "--manifest", str(out / "release.json"), "--key", str(keys.public),
                   "--no-tlog", "--evidence", str(tmp_path / "evidence"), cwd=work)
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads((tmp_path / "evidence" / "evidence.json").read_text())
    found = {n: checks(data, pushed[n].by_digest) for n in "abcde"}
    assert found["a"] == {"tag": "pass", "signature": "pass", "sbom": "fail", "provenance": "fail", "vuln": "fail"}
    assert found["b"] == {"tag": "pass", "signature": "fail", "sbom": "pass", "provenance": "pass", "vuln": "pass"}
    assert found["c"] == {"tag": "fail", "signature": "pass", "sbom": "pass", "provenance": "pass", "vuln": "pass"}
    assert found["d"] == {"tag": "pass", "signature": "pass", "sbom": "fail", "provenance": "pass", "vuln": "pass"}
    assert found["e"] == {"tag": "pass", "signature": "pass", "sbom": "fail", "provenance": "fail", "vuln": "fail"}
    d_sbom = next(ch for i in data["images"] if i["digest"] == d.by_digest for ch in i["checks"]
                  if ch["check"] == "sbom")
    assert b.digest in json.dumps(d_sbom) or "describ" in json.dumps(d_sbom), d_sbom
    c_tag = next(ch for i in data["images"] if i["digest"] == c.by_digest for ch in i["checks"]
                 if ch["check"] == "tag")
    assert b.digest in c_tag["error"]["what"]


def test_keyless_release_pins_identity_and_certificate_extensions(
        tmp_path: Path, registry: LocalRegistry, keyless_bed: KeylessBed, request_token: str, vulndbs: ServedDbs,
        run_sc_ci: RunScCi) -> None:
    """Signed keyless by a GitHub-shaped token through the real Fulcio; verified with the exact identity and the
    certificate's extensions (read from the stored certificate) pinned. An identity or a pin that differs only in
    its ref or in the repository owner fails the signature check."""
    image = push_image(registry.host, "service-6", repository=f"keyless-{secrets.token_hex(3)}/app", tag="1.0.0")
    work = tmp_path / "work"
    work.mkdir()
    (work / "security.yaml").write_text(
        "security:\n"
        "  scan:\n    enabled: true\n    tools: [grype]\n    attest: true\n"
        f"    db:\n      cacheDir: {tmp_path / 'vulndb'}\n      grypeUpdateUrl: {vulndbs.grype_update_url}\n"
        "  signing:\n    enabled: true\n    keyless: true\n"
        "  sbom:\n    enabled: true\n    format: cyclonedx-json\n"
        "  provenance:\n    enabled: true\n")
    out = work / "out"
    env = {**keyless_bed.github_env(request_token), "GITHUB_OUTPUT": str(tmp_path / "o1"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "s1")}
    done = run_sc_ci("release", "create", "--config", "security.yaml", "-i", image.ref, "--version", "1.0.0",
                     "--output", str(out), "--no-tag", env=env, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    identity, issuer = keyless_bed.github_identity, keyless_bed.github.url
    origin = keyless_bed.github.origin
    trust = keyless_bed.sigstore_env()  # the verifier's own trust: the private Fulcio's root, no Rekor

    def verify(*flags: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        evidence_dir = tmp_path / f"ev-{secrets.token_hex(3)}"
        result = run_sc_ci("release", "verify", "--manifest", str(out / "release.json"), "--no-tlog",
                           "--certificate-oidc-issuer", issuer, "--evidence", str(evidence_dir), *flags,
                           env=trust, cwd=work)
        return result, json.loads((evidence_dir / "evidence.json").read_text())

    ok, data = verify("--certificate-identity", identity, "--source-repo", f"{origin}/acme/app",
                      "--source-ref", "refs/heads/main", "--runner-environment", "github-hosted",
                      "--build-signer", identity)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert checks(data, image.by_digest) == {"tag": "pass", "signature": "pass", "sbom": "pass",
                                             "provenance": "pass", "vuln": "pass"}
    entry = data["images"][0]
    signature = next(c for c in entry["checks"] if c["check"] == "signature")
    assert signature["found"]["identity"] == identity
    assert signature["found"]["runnerEnvironment"] == "github-hosted"
    assert signature["found"]["sourceRepositoryRef"] == "refs/heads/main"
    cert = signature["artifacts"][0]["signer"]
    assert cert["kind"] == "keyless"
    assert cert["extensions"]["sourceRepositoryDigest"] == "3b9f1a7c" * 5
    assert entry["slsa"]["level"] == 2, entry["slsa"]  # a hosted platform's signature; not an isolated builder

    other_ref = identity.replace("@refs/heads/main", "@refs/heads/main-evil")
    other_owner = identity.replace("/acme/app/", "/acme-evil/app/")
    for flags in (("--certificate-identity", other_ref), ("--certificate-identity", other_owner),
                  ("--certificate-identity", identity, "--source-ref", "refs/heads/release"),
                  ("--certificate-identity", identity, "--source-repo", f"{origin}/acme-evil/app")):
        failed, data = verify(*flags)
        assert failed.returncode == 1, (flags, failed.stdout + failed.stderr)
        assert checks(data, image.by_digest)["signature"] == "fail", flags


def test_attest_vsa_attaches_a_summary_plain_cosign_verifies(released: Released, cosign: Path, cosign_v2: Path,
                                                            tmp_path: Path) -> None:
    result = released.verify("--attest-vsa", "--vsa-key", str(released.keys.private), evidence=tmp_path,
                             env={"COSIGN_PASSWORD": released.keys.password})
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "evidence.json").read_text())
    for image in released.images.values():
        assert checks(data, image.by_digest)["vsa"] == "pass"
        for binary in (cosign, cosign_v2):
            done = subprocess.run([str(binary), "verify-attestation", "--key", str(released.keys.public),
                                   "--type", "https://slsa.dev/verification_summary/v1",
                                   "--insecure-ignore-tlog=true", image.by_digest],
                                  capture_output=True, text=True, check=False, timeout=120)
            assert done.returncode == 0, (binary, done.stderr)
            statements = [json.loads(base64.b64decode(json.loads(line)["payload"]))
                          for line in done.stdout.splitlines() if line.strip()]
            vsa = next(s for s in statements if s["predicateType"] == "https://slsa.dev/verification_summary/v1")
            predicate = vsa["predicate"]
            assert predicate["verificationResult"] == "PASSED"
            assert predicate["verifiedLevels"] == ["SLSA_BUILD_LEVEL_1"]
            assert image.digest.replace(":", "%3A") in predicate["resourceUri"]
            assert predicate["inputAttestations"]
            assert all(len(i["digest"]["sha256"]) == 64 for i in predicate["inputAttestations"])
            assert predicate["policy"]["digest"]["sha256"]
            assert vsa["subject"][0]["digest"]["sha256"] == image.digest.removeprefix("sha256:")
    upstream = checks(data, released.upstream.by_digest)
    assert upstream["vsa"] == "skipped"  # upstream images are never attested


@pytest.mark.parametrize("fmt", ["kyverno", "policy-controller"])
def test_release_policy_from_the_manifest_matches_the_crds(released: Released, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "policy.yaml"
    result = sc_ci("release", "policy", "--format", fmt, "--manifest", str(released.manifest_path), "--key",
                   str(released.keys.public), "--no-tlog", "--output", str(out), cwd=released.root)
    assert result.returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load(out.read_text())
    assert crds.schema_errors(fmt, document) == []
    assert (crds.kyverno_errors if fmt == "kyverno" else crds.policy_controller_errors)(document) == []
    text = out.read_text()
    assert released.keys.public.read_text().strip().splitlines()[1] in text
    for image in released.images.values():
        assert f"{image.host}/{image.repository}@*" in text
    assert released.upstream.repository not in text  # upstream images are not the release's to admit
    for predicate in ("https://cyclonedx.org/bom", "https://spdx.dev/Document", "https://slsa.dev/provenance/v1",
                      "https://cosign.sigstore.dev/attestation/vuln/v1", BUILDER):
        assert predicate in text
