"""The image, built here with buildah and run the way the GitHub runner runs a container action: the
workspace at /github/workspace, every input as INPUT_<NAME>, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files in
the workspace, and the demo release inside it against a registry on 127.0.0.1. Run by `make image-test`."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
import yaml

from testbed.defectdojo import FakeDefectDojo
from testbed.demo import ENVIRONMENT, SERVICES, STACK, UPSTREAM, VERSION, client_yaml, compose_yaml
from testbed.images import push_image
from testbed.registry import LocalRegistry
from testbed.vulndb import grype_db, trivy_db
from testbed.vulndb.serve import GrypeListingServer, push_trivy_db

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = "/github/workspace"
REPORT: dict[str, object] = {}


def _missing(what: str) -> NoReturn:
    """In CI (CI=true) a missing prerequisite fails; on a developer's machine it skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: missing prerequisites fail)", pytrace=False)
    pytest.skip(what)


@dataclass(frozen=True)
class Built:
    image: str
    image_id: str
    revision: str
    seconds: int
    size: int  # bytes, uncompressed (the sum of the layers as stored)


def _buildah(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built() -> Built:
    for binary in ("buildah", "debootstrap", "go"):
        if shutil.which(binary) is None:
            _missing(f"{binary} is not installed (tools/image/deps.sh; Go for the tools stage)")
    started = time.monotonic()
    done = subprocess.run(["bash", "tools/image/build.sh"], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-8000:]
    fields = dict(f.split("=", 1) for f in done.stdout.strip().splitlines()[-1].split())
    image = fields["IMAGE"]
    manifest = json.loads(json.loads(_buildah("inspect", "--type", "image", image))["Manifest"])
    size = sum(int(layer["size"]) for layer in manifest["layers"])  # uncompressed tar layers in local storage
    built = Built(image, fields["IMAGE_ID"], fields["REVISION"], round(time.monotonic() - started), size)
    REPORT.update(image=image, image_id=built.image_id, build_seconds=built.seconds,
                  size_mb=round(built.size / 1e6, 1), layers_local=len(manifest["layers"]))
    return built


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    if shutil.which("docker-registry") is None:
        _missing("docker-registry is not installed (tools/image/deps.sh)")
    with LocalRegistry() as reg:
        yield reg


def parse_github_output(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: name=value, or name<<DELIM … DELIM."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1:end])
            i = end + 1
        else:
            name, _, value = line.partition("=")
            out[name] = value
            i += 1
    return out


def runner_env(inputs: Mapping[str, str]) -> dict[str, str]:
    """The environment the runner gives a container action: every declared input (empty when unset),
    the GITHUB_* context with container paths, HOME=/github/home."""
    declared = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))["inputs"]
    env = {f"INPUT_{name.upper()}": "" for name in declared}
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    env.update({
        "HOME": "/github/home", "CI": "true", "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_SHA": "a" * 40, "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main",
        "GITHUB_WORKFLOW": "release",
        "GITHUB_WORKFLOW_REF": "acme/shop/.github/workflows/release.yml@refs/heads/main",
        "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_EVENT_NAME": "push",
        "GITHUB_ACTOR": "octocat", "RUNNER_OS": "Linux", "RUNNER_TEMP": "/github/runner_temp",
        "GITHUB_WORKSPACE": WORKSPACE, "GITHUB_OUTPUT": f"{WORKSPACE}/output.txt",
        "GITHUB_STEP_SUMMARY": f"{WORKSPACE}/summary.md",
    })
    return env


@dataclass(frozen=True)
class Mounts:
    workspace: Path
    home: Path
    runner_temp: Path


def run_in_image(image: str, mounts: Mounts, env: Mapping[str, str], argv: Sequence[str] | None = None,
                 timeout: float = 900, workdir: str = WORKSPACE) -> subprocess.CompletedProcess[str]:
    """`docker run` as the runner does it, with buildah: a container from the image, the mounts, the
    environment, the working directory /github/workspace, and the image's own ENTRYPOINT unless argv."""
    config = json.loads(_buildah("inspect", "--type", "image", image))["OCIv1"]["config"]
    command = list(argv) if argv is not None else list(config["Entrypoint"])
    container = _buildah("from", "--pull-never", "--quiet", image).strip()
    try:
        cmd = ["buildah", "run", "--isolation", "chroot", "--workingdir", workdir,
               "-v", f"{mounts.workspace}:{WORKSPACE}", "-v", f"{mounts.home}:/github/home",
               "-v", f"{mounts.runner_temp}:/github/runner_temp"]
        for key, value in env.items():
            cmd += ["--env", f"{key}={value}"]
        return subprocess.run([*cmd, container, "--", *command], capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


@pytest.fixture
def mounts(tmp_path: Path) -> Mounts:
    made = Mounts(tmp_path / "workspace", tmp_path / "home", tmp_path / "runner_temp")
    for path in (made.workspace, made.home, made.runner_temp):
        path.mkdir()
    return made


def test_labels_and_tools(built: Built, mounts: Mounts) -> None:
    """The OCI labels come from the build arguments, and the pinned tools answer in the image."""
    config = json.loads(_buildah("inspect", "--type", "image", built.image))["OCIv1"]["config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == built.revision  # the commit built (HEAD may move on)
    known = subprocess.run(["git", "cat-file", "-e", f"{built.revision}^{{commit}}"], cwd=ROOT, check=False)
    assert known.returncode == 0, built.revision
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://github.com/")
    assert labels["org.opencontainers.image.version"]
    assert labels["org.opencontainers.image.created"][:4].isdigit()
    assert "@sha256:" in labels["org.opencontainers.image.base.name"]
    assert config["Entrypoint"] == ["/app/entrypoint"]
    assert config.get("User", "") in ("", "root", "0")  # GitHub runs container actions as root
    done = run_in_image(built.image, mounts, {"HOME": "/github/home"}, ["sc-ci", "doctor", "--tools-only"])
    assert done.returncode == 0, done.stdout + done.stderr
    for tool in ("cosign", "syft", "grype", "trivy"):
        assert tool in done.stdout, done.stdout
    REPORT["doctor"] = done.stdout.strip()


def _git(repo: Path, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo.parent),
           "GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
           "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@example.com"}
    done = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), *args], env=env, text=True,
                          capture_output=True, check=True)
    return done.stdout.strip()


RUNNER_UID = 1001  # the GitHub runner's user: the checkout in the workspace belongs to it, not to root


def test_demo_release_as_a_github_container_action(built: Built, registry: LocalRegistry,
                                                   mounts: Mounts) -> None:
    """`make demo`'s release inside the image: the demo Simple Container project (a git checkout owned by
    the runner's user) as the workspace, its stack images and an upstream image in the registry, air-gapped
    vulnerability DB mirrors and a DefectDojo stand-in on loopback; the action started as the runner starts
    a container action with stack/environment/version inputs; then what it wrote is read."""
    prefix = f"{registry.host}/demo"
    pushed = {svc: push_image(registry.host, base, repository=f"demo/{STACK}--{svc}", tag=VERSION)
              for svc, base in SERVICES.items()}
    upstream = push_image(registry.host, UPSTREAM, repository="library/postgres", tag="16")
    mirror = mounts.runner_temp / "mirror"
    grype, trivy = grype_db.build(mirror / "grype"), trivy_db.build(mirror / "trivy")
    password = "image-test-" + secrets.token_hex(8)
    keygen = run_in_image(built.image, mounts, {"HOME": "/github/home", "COSIGN_PASSWORD": password},
                          ["sh", "-c", "mkdir -p /github/home/keys && cd /github/home/keys && "
                                       "cosign generate-key-pair"])
    assert keygen.returncode == 0, keygen.stderr
    with GrypeListingServer(grype) as listing, FakeDefectDojo(secrets.token_hex(16)) as dojo:
        trivy_repo = push_trivy_db(trivy, registry.host)
        project = mounts.workspace
        stack_dir = project / ".sc" / "stacks" / STACK
        stack_dir.mkdir(parents=True)
        (project / "docker-compose.yaml").write_text(compose_yaml(upstream), encoding="utf-8")
        (stack_dir / "client.yaml").write_text(
            client_yaml(Path("/github/home/keys/cosign.key"), (listing.update_url, trivy_repo), dojo.url,
                        Path("/github/runner_temp/vulndb")), encoding="utf-8")
        _git(project, "init", "-q", "-b", "main")
        _git(project, "add", "-A")
        _git(project, "commit", "-q", "-m", "demo shop")
        sha = _git(project, "rev-parse", "HEAD")
        for path in [project, *project.rglob("*")]:
            os.lchown(path, RUNNER_UID, RUNNER_UID)

        env = runner_env({"stack": STACK, "environment": ENVIRONMENT, "version": VERSION, "registry": prefix,
                          "cosign-password": password, "tag": "true"})
        env.update({"GITHUB_SHA": sha, "DEMO_DEFECTDOJO_KEY": dojo.api_key})
        started = time.monotonic()
        done = run_in_image(built.image, mounts, env)
        seconds = round(time.monotonic() - started, 1)
        uploads = len(dojo.tests)
    outputs_file = mounts.workspace / "output.txt"
    outputs = parse_github_output(outputs_file.read_text(encoding="utf-8")) if outputs_file.exists() else {}
    REPORT.update(demo_exit_code=done.returncode, demo_seconds=seconds, demo_outputs=outputs,
                  defectdojo_tests=uploads)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]

    released = sorted(i.by_digest for i in pushed.values())
    assert set(released) <= set(outputs["digests"].splitlines())
    assert outputs["signed"].splitlines() == released  # the upstream image is scanned, never signed
    assert upstream.by_digest not in outputs["signed"]
    commands = outputs["verify-commands"].splitlines()
    signatures = [c for c in commands if c.startswith("cosign verify --key cosign.pub")]
    assert len(signatures) == len(released)
    for kind in ("cyclonedx", "spdxjson", "slsaprovenance1", "vuln"):
        assert any(c.startswith(f"cosign verify-attestation --type {kind} ") for c in commands), kind
    assert outputs["status"] == "passed", outputs
    assert outputs["scan-verdict"] == "passed", outputs  # high findings, none critical: the gate passes
    assert int(outputs["high-count"]) > 0
    assert outputs["tag"], outputs
    assert _git(project, "tag", "-l") == outputs["tag"]
    assert uploads > 0
    summary = (mounts.workspace / "summary.md").read_text(encoding="utf-8")
    assert "## sc-ci release" in summary
    REPORT["summary_lines"] = len(summary.splitlines())
    sboms = sorted(p.name for p in (project / "sbom").glob("*.json"))
    assert len(sboms) >= 2 * len(released)  # CycloneDX + SPDX per image
    REPORT["sbom_files"] = len(sboms)
    # Written as root in the container, handed to the workspace's owner (the runner's user) afterwards.
    assert outputs_file.stat().st_uid == RUNNER_UID or outputs_file.stat().st_uid == 0
    assert all(p.lstat().st_uid == RUNNER_UID for p in (project / "sbom").iterdir())

    # A consumer's checks, with commands the action printed, run in the image beside the public key.
    for command in (signatures[0], next(c for c in commands if "--type slsaprovenance1 " in c)):
        check = run_in_image(built.image, mounts, {"HOME": "/github/home"}, shlex.split(command),
                             workdir="/github/home/keys")
        assert check.returncode == 0, command + "\n" + check.stdout + check.stderr


def test_pushed_size(built: Built, registry: LocalRegistry) -> None:
    """What a runner pulls: the image pushed (gzip layers, as a registry stores it) and its manifest read."""
    target = f"{registry.host}/sc-security-action:image-test"
    started = time.monotonic()
    _buildah("push", "--quiet", "--tls-verify=false", built.image, f"docker://{target}", timeout=900)
    REPORT["push_seconds"] = round(time.monotonic() - started, 1)
    inspect = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{target}"],
                             capture_output=True, text=True, timeout=120, check=False)
    assert inspect.returncode == 0, inspect.stderr
    manifest = json.loads(inspect.stdout)
    layers = manifest["layers"]
    assert all(layer["mediaType"].endswith("gzip") for layer in layers), [x["mediaType"] for x in layers]
    REPORT.update(layers=len(layers), compressed_mb=round(sum(x["size"] for x in layers) / 1e6, 1))


def test_zz_report(built: Built) -> None:
    """Prints the measurements (make image-test shows them) and writes them to $SC_CI_IMAGE_REPORT."""
    text = json.dumps(REPORT, indent=2, default=str)
    print("\n== image report\n" + text)
    target = os.environ.get("SC_CI_IMAGE_REPORT")
    if target:
        Path(target).write_text(text + "\n", encoding="utf-8")
