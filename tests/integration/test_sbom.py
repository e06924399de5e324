"""SBOMs with the real syft and cosign against the real registry, through the CLI: known packages found,
every SBOM validated, attestations accepted by plain `cosign verify-attestation`, multi-arch, large SBOMs,
stack runs. Each SBOM set is generated once per module where tests can share it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sc_ci.runner import base_env
from testbed.images import PushedImage, known_packages, push_image
from testbed.keys import KeyPair, generate_keypair
from testbed.registry import LocalRegistry

FreshImage = Callable[..., PushedImage]
REFERENCE_TYPE = "https://simple-container.com/attestations/sbom-reference/v1"
# format → (cosign --type, in-toto predicateType, file extension)
TYPES = {
    "cyclonedx-json": ("cyclonedx", "https://cyclonedx.org/bom", "cdx.json"),
    "spdx-json": ("spdxjson", "https://spdx.dev/Document", "spdx.json"),
    "syft-json": ("https://syft.dev/bom", "https://syft.dev/bom", "syft.json"),
}
ALL_FORMATS = ("-f", "cyclonedx-json", "-f", "spdx-json", "-f", "syft-json")


def sc_ci(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process, as a user or CI runs it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_"))}
    full_env.pop("COSIGN_PASSWORD", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=full_env, cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def syft(tool: Callable[[str], Path]) -> Path:
    return tool("syft")


def verify_attestation(cosign: Path, image: str, cosign_type: str, public: Path,
                       *extra: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Plain `cosign verify-attestation` (none of our code), and its statements decoded here."""
    done = subprocess.run([str(cosign), "verify-attestation", "--key", str(public), "--type", cosign_type,
                           "--insecure-ignore-tlog=true", *extra, image], env=base_env(), text=True,
                          capture_output=True, timeout=120, check=False)
    statements = [json.loads(base64.b64decode(json.loads(line)["payload"]))
                  for line in done.stdout.splitlines() if line.strip().startswith("{")]
    return done, statements


def sbom_files(directory: Path, ext: str) -> list[Path]:
    return sorted(directory.glob(f"*.{ext}"))


def one_file(directory: Path, ext: str) -> Path:
    found = sbom_files(directory, ext)
    assert len(found) == 1, [p.name for p in directory.iterdir()]
    return found[0]


def name_versions(document: dict[str, Any], fmt: str) -> set[tuple[str, str]]:
    """Packages as the format itself lists them (read here, independently of sc_ci.sbom)."""
    if fmt == "cyclonedx-json":
        return {(c["name"], c.get("version", "")) for c in document["components"]
                if c["type"] not in ("file", "operating-system")}
    if fmt == "spdx-json":
        return {(p["name"], p.get("versionInfo", "")) for p in document["packages"]
                if p.get("primaryPackagePurpose") != "CONTAINER"}
    return {(a["name"], a["version"]) for a in document["artifacts"]}


# ---------------------------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def demo_sboms(demo_images: dict[str, PushedImage], syft: Path,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """All three formats of alpine-app, debian-app and multiarch, from one CLI run (read-only images)."""
    out = tmp_path_factory.mktemp("demo-sboms") / "sbom"
    images = [a for name in ("alpine-app", "debian-app", "multiarch") for a in ("-i", demo_images[name].ref)]
    done = sc_ci("sbom", "generate", *images, *ALL_FORMATS, "--output", f"{out}/", "--workers", "3")
    assert done.returncode == 0, done.stderr
    return out, done


@pytest.mark.parametrize("fmt", list(TYPES))
@pytest.mark.parametrize(("name", "platform"), [
    ("alpine-app", None), ("debian-app", None), ("multiarch", "linux/amd64"), ("multiarch", "linux/arm64/v8"),
])
def test_sbom_lists_the_known_os_and_language_packages(
        demo_sboms: tuple[Path, subprocess.CompletedProcess[str]], demo_images: dict[str, PushedImage],
        fmt: str, name: str, platform: str | None) -> None:
    out, _ = demo_sboms
    image = demo_images[name]
    digest = image.platform_digest(platform) if platform else image.digest
    suffix = f".{platform.replace('/', '-')}" if platform else ""
    path = out / f"{image.host.replace(':', '_')}+{image.repository.replace('/', '+')}@" \
                 f"{digest.replace(':', '-')}{suffix}.{TYPES[fmt][2]}"
    document = json.loads(path.read_text())
    known = known_packages(name, platform or "linux/amd64")
    listed = name_versions(document, fmt)
    assert {(p.name, p.version) for p in known.os_packages} <= listed
    assert {(p.name, p.version) for p in known.language_packages} <= listed
    assert listed == known.name_versions()  # nothing more either
    if name == "alpine-app":
        assert {p.type for p in known.language_packages} == {"python", "npm"}


def test_generated_sboms_pass_the_validators_independently(
        demo_sboms: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """The files on disk pass cyclonedx-python-lib and spdx-tools called directly (not through sc-ci)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    out, done = demo_sboms
    cdx = sbom_files(out, "cdx.json")
    assert len(cdx) == 4  # alpine-app, debian-app, two multiarch platforms
    for path in cdx:
        text = path.read_text()
        assert json.loads(text)["specVersion"] == "1.6"  # the documented default (GitLab ingests ≤ 1.6)
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    for path in sbom_files(out, "spdx.json"):
        assert validate_full_spdx_document(parse_file(str(path))) == []
    assert (out / ".gitignore").read_text().splitlines()[-1] == "*"
    assert done.stdout.count("ok   sbom") == 4
    assert "valid" in done.stdout


def test_stdout_when_no_output_is_given(demo_images: dict[str, PushedImage], syft: Path) -> None:
    done = sc_ci("sbom", "generate", "-i", demo_images["service-1"].ref, "--cyclonedx-version", "1.7")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # stdout is the SBOM and nothing else
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.7")
    assert document["metadata"]["component"]["version"] == demo_images["service-1"].digest
    assert "ok   sbom" in done.stderr


# ---------------------------------------------------------------------------------------------- attach & verify


@pytest.fixture(scope="module")
def attached(registry: LocalRegistry, keys: KeyPair, syft: Path, cosign: Path,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[PushedImage, Path, subprocess.CompletedProcess[str]]:
    """A fresh alpine-app with its three SBOMs generated and attached in one run (key-based, no tlog)."""
    image = push_image(registry.host, "alpine-app", repository=f"sbom/attached-{secrets.token_hex(5)}",
                       extra_files={"etc/sc-ci-fresh-id": secrets.token_hex(8)})
    out = tmp_path_factory.mktemp("attached") / "sbom"
    done = sc_ci("sbom", "generate", "-i", image.ref, *ALL_FORMATS, "-o", f"{out}/", "--attach",
                 "--key", str(keys.private), "--no-tlog", env={"COSIGN_PASSWORD": keys.password})
    assert done.returncode == 0, done.stderr
    return image, out, done


@pytest.mark.parametrize("fmt", list(TYPES))
def test_plain_cosign_accepts_every_attestation_and_the_predicate_is_the_sbom(
        attached: tuple[PushedImage, Path, subprocess.CompletedProcess[str]], cosign: Path, keys: KeyPair,
        fmt: str) -> None:
    image, out, done = attached
    cosign_type, predicate_type, ext = TYPES[fmt]
    assert f"attached as {cosign_type}" in done.stdout
    assert (f"cosign verify-attestation --type {cosign_type} --key cosign.pub --insecure-ignore-tlog=true "
            f"{image.by_digest}") in done.stdout
    result, statements = verify_attestation(cosign, image.by_digest, cosign_type, keys.public)
    assert result.returncode == 0, result.stderr
    assert len(statements) == 1
    statement = statements[0]
    assert statement["predicateType"] == predicate_type
    assert statement["subject"][0]["digest"] == {"sha256": image.digest.removeprefix("sha256:")}
    assert statement["predicate"] == json.loads(one_file(out, ext).read_text())


@pytest.mark.parametrize("fmt", list(TYPES))
def test_sc_ci_verify_uses_the_matching_type_and_saves_the_sbom(
        attached: tuple[PushedImage, Path, subprocess.CompletedProcess[str]], keys: KeyPair, fmt: str,
        tmp_path: Path) -> None:
    image, out, _ = attached
    saved = tmp_path / f"verified.{TYPES[fmt][2]}"
    done = sc_ci("sbom", "verify", "-i", image.ref, "--format", fmt, "--key", str(keys.public), "--no-tlog",
                 "--output", str(saved))
    assert done.returncode == 0, done.stderr
    assert "ok   sbom-verify" in done.stdout
    assert "attestation verified, 9 packages: 5 OS (apk 5), 4 language (npm 2, python 2), valid" in done.stdout
    assert json.loads(saved.read_text()) == json.loads(one_file(out, TYPES[fmt][2]).read_text())


def test_verify_prints_the_sbom_and_checks_a_local_copy(
        attached: tuple[PushedImage, Path, subprocess.CompletedProcess[str]], keys: KeyPair) -> None:
    image, out, _ = attached
    spdx = one_file(out, "spdx.json")
    # the format comes from the --sbom file when --format is not given
    done = sc_ci("sbom", "verify", "-i", image.by_digest, "--sbom", str(spdx), "--key", str(keys.public),
                 "--no-tlog", "--output", "-")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(spdx.read_text())
    assert "spdx-json: attestation verified" in done.stderr


def test_wrong_key_fails_verification(attached: tuple[PushedImage, Path, subprocess.CompletedProcess[str]],
                                      cosign: Path, tmp_path: Path) -> None:
    image, _, _ = attached
    other = generate_keypair(cosign, tmp_path / "other")
    done = sc_ci("sbom", "verify", "-i", image.ref, "--key", str(other.public), "--no-tlog")
    assert done.returncode == 1
    assert "FAIL sbom-verify" in done.stdout
    assert "no signature matches the given key" in done.stdout


def test_attach_reads_the_format_from_content_and_spdx_is_not_checked_as_cyclonedx(
        fresh_image: FreshImage, cosign: Path, keys: KeyPair, tmp_path: Path) -> None:
    image = fresh_image("alpine-app")
    generated = tmp_path / "gen"
    assert sc_ci("sbom", "generate", "-i", image.ref, "-f", "spdx-json", "-o", f"{generated}/").returncode == 0
    disguised = tmp_path / "looks-like.cdx.json"  # an SPDX document under a CycloneDX-looking name
    disguised.write_bytes(one_file(generated, "spdx.json").read_bytes())
    env = {"COSIGN_PASSWORD": keys.password}
    done = sc_ci("sbom", "attach", "-i", image.ref, "--sbom", str(disguised), "--key", str(keys.private),
                 "--no-tlog", env=env)
    assert done.returncode == 0, done.stderr
    assert "spdx-json: attached as spdxjson" in done.stdout
    result, statements = verify_attestation(cosign, image.by_digest, "spdxjson", keys.public)
    assert result.returncode == 0, result.stderr
    assert statements[0]["predicate"] == json.loads(disguised.read_text())
    assert verify_attestation(cosign, image.by_digest, "cyclonedx", keys.public)[0].returncode != 0

    # verifying it as CycloneDX (the default format) fails and points at --format
    done = sc_ci("sbom", "verify", "-i", image.ref, "--key", str(keys.public), "--no-tlog")
    assert done.returncode == 1
    assert "no attestation of the requested type" in done.stdout
    assert "pass --format" in done.stderr

    # an SPDX document attached under the CycloneDX type (by other tooling) is caught by content
    subprocess.run([str(cosign), "attest", "--yes", "--key", str(keys.private), "--type", "cyclonedx",
                    "--predicate", str(disguised), "--tlog-upload=false", "--use-signing-config=false",
                    image.by_digest], env={**base_env(), **env}, check=True, capture_output=True, timeout=120)
    done = sc_ci("sbom", "verify", "-i", image.ref, "--format", "cyclonedx-json", "--key", str(keys.public),
                 "--no-tlog")
    assert done.returncode == 1
    assert "holds a SPDX JSON document, not CycloneDX JSON" in done.stdout


def test_invalid_sbom_is_not_attached(attached: tuple[PushedImage, Path, subprocess.CompletedProcess[str]],
                                      fresh_image: FreshImage, cosign: Path, keys: KeyPair, tmp_path: Path) -> None:
    _, out, _ = attached
    image = fresh_image("alpine-app")
    document = json.loads(one_file(out, "cdx.json").read_text())
    document["metadata"]["component"]["version"] = image.digest  # right subject, broken content
    document["components"][0]["type"] = "gadget"
    broken = tmp_path / "broken.cdx.json"
    broken.write_text(json.dumps(document))
    done = sc_ci("sbom", "attach", "-i", image.ref, "--sbom", str(broken), "--key", str(keys.private),
                 "--no-tlog", env={"COSIGN_PASSWORD": keys.password})
    assert done.returncode == 1
    assert "is not a valid CycloneDX JSON SBOM" in done.stderr
    assert "at components/0/type: 'gadget' is not one of" in done.stderr
    assert "cyclonedx-python-lib" in done.stderr
    assert verify_attestation(cosign, image.by_digest, "cyclonedx", keys.public)[0].returncode != 0


def test_sbom_of_another_image_is_refused(attached: tuple[PushedImage, Path, subprocess.CompletedProcess[str]],
                                          fresh_image: FreshImage, keys: KeyPair) -> None:
    _, out, _ = attached
    other = fresh_image("service-2")
    done = sc_ci("sbom", "attach", "-i", other.ref, "--sbom", str(one_file(out, "cdx.json")),
                 "--key", str(keys.private), "--no-tlog", env={"COSIGN_PASSWORD": keys.password})
    assert done.returncode == 1
    assert f"not {other.by_digest}" in done.stderr
    assert f"sc-ci sbom generate --image {other.by_digest}" in done.stderr


def test_dry_run_runs_neither_syft_nor_cosign(fresh_image: FreshImage, cosign: Path, keys: KeyPair) -> None:
    image = fresh_image("service-3")
    done = sc_ci("sbom", "generate", "-i", image.ref, "-o", "unused/", "--attach", "--key", str(keys.private),
                 "--no-tlog", "--dry-run", env={"COSIGN_PASSWORD": keys.password})
    assert done.returncode == 0, done.stderr
    assert f"scan registry:{image.by_digest} -o cyclonedx-json@1.6=<private temp dir>/sbom.cdx.json" \
        in done.stdout
    assert "attest-blob --yes --key" in done.stdout
    assert "attach attestation --attestation" in done.stdout
    assert not Path("unused").exists()
    assert verify_attestation(cosign, image.by_digest, "cyclonedx", keys.public)[0].returncode != 0


# ---------------------------------------------------------------------------------------------- multi-arch


def test_multiarch_sbom_per_platform_and_a_reference_on_the_index(
        fresh_image: FreshImage, cosign: Path, keys: KeyPair, tmp_path: Path) -> None:
    image = fresh_image("multiarch")
    assert image.is_index
    out = tmp_path / "sbom"
    done = sc_ci("sbom", "generate", "-i", image.ref, "-o", f"{out}/", "--attach", "--key", str(keys.private),
                 "--no-tlog", env={"COSIGN_PASSWORD": keys.password})
    assert done.returncode == 0, done.stderr
    assert "index: SBOM reference to 2 platform manifest(s) (linux/amd64, linux/arm64/v8)" in done.stdout
    for platform in ("linux/amd64", "linux/arm64/v8"):
        manifest = image.platform_by_digest(platform)
        result, statements = verify_attestation(cosign, manifest, "cyclonedx", keys.public)
        assert result.returncode == 0, result.stderr
        file = one_file(out, f"{platform.replace('/', '-')}.cdx.json")
        assert statements[0]["predicate"] == json.loads(file.read_text())
        known = known_packages("multiarch", platform)
        assert name_versions(statements[0]["predicate"], "cyclonedx-json") == known.name_versions()
    # nothing but the reference sits on the index; plain cosign reads it
    assert verify_attestation(cosign, image.by_digest, "cyclonedx", keys.public)[0].returncode != 0
    result, statements = verify_attestation(cosign, image.by_digest, REFERENCE_TYPE, keys.public)
    assert result.returncode == 0, result.stderr
    listed = {(s["platform"], s["subject"], s["digest"]["sha256"]) for s in statements[0]["predicate"]["sboms"]}
    assert listed == {
        (p, image.platform_by_digest(p),
         hashlib.sha256(one_file(out, f"{p.replace('/', '-')}.cdx.json").read_bytes()).hexdigest())
        for p in ("linux/amd64", "linux/arm64/v8")}

    done = sc_ci("sbom", "verify", "-i", image.ref, "--key", str(keys.public), "--no-tlog")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok   sbom-verify") == 3
    assert "index: SBOM reference verified, names the cyclonedx-json SBOM of all 2 platforms" in done.stdout


# ---------------------------------------------------------------------------------------------- large SBOMs


def test_oversize_digest_fallback_keeps_the_file_and_attests_its_digest(
        fresh_image: FreshImage, cosign: Path, keys: KeyPair, tmp_path: Path) -> None:
    image = fresh_image("service-4")
    out = tmp_path / "sbom"
    done = sc_ci("sbom", "generate", "-i", image.ref, "-o", f"{out}/", "--attach", "--key", str(keys.private),
                 "--no-tlog", "--max-size", "1KB", env={"COSIGN_PASSWORD": keys.password})
    assert done.returncode == 0, done.stderr
    assert "above security.sbom.attach.maxSize (1000 B)" in done.stderr
    file = one_file(out, "cdx.json")
    assert f"SBOM kept at {file}" in done.stdout
    assert verify_attestation(cosign, image.by_digest, "cyclonedx", keys.public)[0].returncode != 0
    result, statements = verify_attestation(cosign, image.by_digest, REFERENCE_TYPE, keys.public)
    assert result.returncode == 0, result.stderr
    entry = statements[0]["predicate"]["sboms"][0]
    assert statements[0]["predicate"]["reason"] == "oversize"
    assert entry["digest"]["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert (entry["format"], entry["attached"], entry["size"]) == ("cyclonedx-json", False, file.stat().st_size)

    ok = sc_ci("sbom", "verify", "-i", image.ref, "--sbom", str(file), "--key", str(keys.public), "--no-tlog")
    assert ok.returncode == 0, ok.stderr
    assert "digest reference (sha256" in ok.stdout
    assert "matches the given file" in ok.stdout
    tampered = tmp_path / "tampered.cdx.json"
    tampered.write_text(file.read_text().replace('"busybox"', '"busybox-patched"'))
    bad = sc_ci("sbom", "verify", "-i", image.ref, "--sbom", str(tampered), "--key", str(keys.public), "--no-tlog")
    assert bad.returncode == 1
    assert "is not the SBOM whose digest was attested" in bad.stdout


def test_oversize_no_tlog_and_fail(fresh_image: FreshImage, cosign: Path, keys: KeyPair, tmp_path: Path) -> None:
    image = fresh_image("service-5")
    env = {"COSIGN_PASSWORD": keys.password}
    # transparency log left on (the default): the large SBOM alone skips it, nothing tries to reach Rekor
    done = sc_ci("sbom", "generate", "-i", image.ref, "-o", f"{tmp_path}/a/", "--attach", "--key",
                 str(keys.private), "--max-size", "1KB", "--oversize", "no-tlog", env=env)
    assert done.returncode == 0, done.stderr
    assert "attached as cyclonedx without the transparency log" in done.stdout
    assert "--insecure-ignore-tlog=true" in done.stdout
    result, statements = verify_attestation(cosign, image.by_digest, "cyclonedx", keys.public)
    assert result.returncode == 0, result.stderr
    assert statements[0]["predicate"] == json.loads(one_file(tmp_path / "a", "cdx.json").read_text())

    other = fresh_image("service-6")  # (the first image already carries this SBOM: it would be reused)
    failed = sc_ci("sbom", "generate", "-i", other.ref, "-o", f"{tmp_path}/b/", "--attach", "--key",
                   str(keys.private), "--no-tlog", "--max-size", "1KB", "--oversize", "fail", env=env)
    assert failed.returncode == 1
    assert "above security.sbom.attach.maxSize" in failed.stdout
    assert "oversize: digest" in failed.stderr


# ---------------------------------------------------------------------------------------------- stack


def test_stack_sbom_for_every_image_kept_out_of_git(fresh_image: FreshImage, cosign: Path, keys: KeyPair,
                                                     tmp_path: Path) -> None:
    images = {f"svc{i}": fresh_image(f"service-{i}") for i in (6, 7, 8)}
    compose = "services:\n" + "".join(f"  {name}:\n    image: {img.ref}\n" for name, img in images.items())
    (tmp_path / "docker-compose.yaml").write_text(compose)
    stack = tmp_path / ".sc" / "stacks" / "web"
    stack.mkdir(parents=True)
    (stack / "client.yaml").write_text(
        "schemaVersion: 1.0\nsecurity:\n  sbom:\n    enabled: true\n    extraFormats: [spdx-json]\n"
        "stacks:\n  prod:\n    type: cloud-compose\n    config:\n"
        "      dockerComposeFile: ${project:root}/docker-compose.yaml\n"
        f"      runs: [{', '.join(images)}]\n")
    done = sc_ci("stack", "sbom", "-s", "web", "-e", "prod", "--output", "build/sbom", "--key", str(keys.private),
                 "--no-tlog", env={"COSIGN_PASSWORD": keys.password}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok   sbom ") == 3
    assert done.stdout.count("ok   sbom-attach") == 6
    out = tmp_path / "build" / "sbom"
    assert len(sbom_files(out, "cdx.json")) == 3
    assert len(sbom_files(out, "spdx.json")) == 3
    assert (out / ".gitignore").read_text().splitlines()[-1] == "*"
    git = subprocess.run(["git", "init", "-q", str(tmp_path)], capture_output=True, check=False)
    if git.returncode == 0:  # git is optional here; when present it must agree
        status = subprocess.run(["git", "-C", str(tmp_path), "status", "--porcelain", "--untracked-files=all"],
                                capture_output=True, text=True, check=True).stdout
        assert "build/sbom" not in status
        assert "docker-compose.yaml" in status
    for img in images.values():
        result, _ = verify_attestation(cosign, img.by_digest, "spdxjson", keys.public)
        assert result.returncode == 0, result.stderr
