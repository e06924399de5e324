"""The image, built here with buildah and run the way the GitHub runner runs a container action: the
workspace at /github/workspace, every input as INPUT_<NAME>, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files in
the workspace, and the demo release inside it against a registry on 127.0.0.1. Run by `make image-test`."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from xml.etree import ElementTree

import pytest
import yaml

from testbed.defectdojo import FakeDefectDojo
from testbed.demo import ENVIRONMENT, SERVICES, STACK, UPSTREAM, VERSION, client_yaml, compose_yaml, git
from testbed.github import parse_output
from testbed.images import push_image
from testbed.oci import RegistryClient
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
                 timeout: float = 900, workdir: str = WORKSPACE, user: str | None = None,
                 volumes: Sequence[tuple[Path, str]] = ()) -> subprocess.CompletedProcess[str]:
    """`docker run` as the runner does it, with buildah: a container from the image, the mounts, the
    environment, the working directory /github/workspace, and the image's own ENTRYPOINT unless argv."""
    config = json.loads(_buildah("inspect", "--type", "image", image))["OCIv1"]["config"]
    command = list(argv) if argv is not None else list(config["Entrypoint"])
    container = _buildah("from", "--pull-never", "--quiet", image).strip()
    try:
        cmd = ["buildah", "run", "--isolation", "chroot", "--workingdir", workdir,
               "-v", f"{mounts.workspace}:{WORKSPACE}", "-v", f"{mounts.home}:/github/home",
               "-v", f"{mounts.runner_temp}:/github/runner_temp"]
        for host, inside in volumes:
            cmd += ["-v", f"{host}:{inside}"]
        if user is not None:
            cmd += ["--user", user]
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
    oci = json.loads(_buildah("inspect", "--type", "image", built.image))["OCIv1"]
    config = oci["config"]
    platform = os.environ.get("SC_CI_IMAGE_PLATFORM") or f"linux/{_host_arch()}"
    assert f"{oci['os']}/{oci['architecture']}" == platform
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
    machine = run_in_image(built.image, mounts, {"HOME": "/github/home"}, ["uname", "-m"])
    REPORT["platform"] = f"{platform} (uname -m in the container: {machine.stdout.strip()})"


def _host_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()



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
        git(project, "init", "-q", "-b", "main")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "demo shop")
        sha = git(project, "rev-parse", "HEAD")
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
    outputs = parse_output(outputs_file.read_text(encoding="utf-8")) if outputs_file.exists() else {}
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
    assert git(project, "tag", "-l") == outputs["tag"]
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


@pytest.mark.parametrize("login", ["inputs", "docker-config"])
def test_registry_login_inside_the_container(built: Built, mounts: Mounts, login: str) -> None:
    """The two documented ways credentials reach the action's container (docs/ci.md, "Registry login"):
    the registry-username / registry-password inputs, or a runner-side login whose Docker config sits in
    RUNNER_TEMP (mounted at /github/runner_temp) named by DOCKER_CONFIG on the step. Against a registry
    that refuses anonymous pushes and pulls; the password appears in nothing the action wrote."""
    user, password = "runner", "login-" + secrets.token_hex(12)
    with LocalRegistry(auth=(user, password)) as reg:
        pushed = push_image(reg.host, "service-1", repository="acme/api", tag="1.0.0", auth=(user, password))
        keygen = run_in_image(built.image, mounts, {"HOME": "/github/home", "COSIGN_PASSWORD": "k"},
                              ["sh", "-c", "mkdir -p /github/home/keys && cd /github/home/keys && "
                                           "cosign generate-key-pair"])
        assert keygen.returncode == 0, keygen.stderr
        inputs = {"images": pushed.by_digest, "sign": "true", "private-key": "/github/home/keys/cosign.key",
                  "public-key": "/github/home/keys/cosign.pub", "cosign-password": "k", "sbom": "true",
                  "scan": "false", "provenance": "false", "verify": "true", "fail-open": "false",
                  "registry-host": reg.host, "transparency-log": "false"}
        env = runner_env(inputs)
        if login == "inputs":
            env.update({"INPUT_REGISTRY-USERNAME": user, "INPUT_REGISTRY-PASSWORD": password})
        else:  # what `docker login` on the runner writes, with DOCKER_CONFIG=$RUNNER_TEMP/docker on the job
            reg.write_docker_config(mounts.runner_temp / "docker")
            env["DOCKER_CONFIG"] = "/github/runner_temp/docker"
        done = run_in_image(built.image, mounts, env)
        outputs_file = mounts.workspace / "output.txt"
        outputs = parse_output(outputs_file.read_text(encoding="utf-8")) if outputs_file.exists() else {}
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        assert outputs["status"] == "passed", outputs
        assert outputs["signed"].splitlines() == [pushed.by_digest], outputs
        with RegistryClient(reg.host, auth=(user, password)) as client:
            tags = client.tags("acme/api")
        assert any(t.endswith(".sig") for t in tags), tags  # the signature is in the authenticated registry
        # ::add-mask:: is how the runner learns to mask a secret: it consumes those lines, never prints them.
        logs = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                         if not line.startswith("::add-mask::"))
        written = {"log": logs, **{str(p): p.read_text(encoding="utf-8", errors="replace")
                                   for p in mounts.workspace.rglob("*") if p.is_file()}}
        leaked = [where for where, text in written.items() if password in text or token_of(user, password) in text]
        assert not leaked
        REPORT[f"login_{login}"] = "signed, SBOM attached, verified"


def token_of(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


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


JENKINS_UID = 1000  # the jenkins user of the official images; a docker agent runs the container as it


def _jenkinsfile_parts(workspace: Path) -> tuple[dict[str, str], str]:
    """examples/jenkins/Jenkinsfile's `environment { K = 'V' }` entries (Groovy's "${WORKSPACE}" expanded)
    and its `sh '''…'''` script."""
    text = (ROOT / "examples" / "jenkins" / "Jenkinsfile").read_text(encoding="utf-8")
    block = text.split("    environment {", 1)[1].split("\n    }", 1)[0]
    environment = {key: value.replace("${WORKSPACE}", str(workspace)) for key, value in
                   re.findall(r"^\s*([A-Z0-9_]+) = ['\"]([^'\"]*)['\"]\s*$", block, re.MULTILINE)}
    script = text.split("sh '''", 1)[1].split("'''", 1)[0]
    return environment, textwrap.dedent(script)


def test_jenkinsfile_stage_as_a_docker_agent(built: Built, registry: LocalRegistry, mounts: Mounts,
                                             tmp_path: Path) -> None:
    """The Jenkinsfile's 'Supply chain' stage as Jenkins' docker agent runs it: the image with its
    entrypoint emptied, as uid 1000 (the jenkins user), the workspace mounted at the same path, the
    build's environment (JENKINS_URL, JOB_NAME, BUILD_URL, GIT_*; HOME is the agent's, which does not exist
    in the container), the `environment {}` block, the withEnv list, the credentials bindings (a secret
    file in WORKSPACE@tmp, secret text, username/password), then its `sh` script; afterwards the `post`
    step's inputs: sc-ci-output/junit.xml (one test case per image × step) and release.json. The Groovy
    itself runs on no Jenkins here (Jenkins is not served by the registries this machine reaches)."""
    workspace = tmp_path / "jenkins" / "workspace" / "shop-release"
    environment, script = _jenkinsfile_parts(workspace)
    assert "sc-ci action" in script
    assert environment["SC_CI_OUTPUT_DIR"] == "sc-ci-output"
    assert environment["SC_CI_SECURITY__SCAN__DB__CACHEDIR"] == f"{workspace}@tmp/sc-ci-vulndb"
    secret_dir = Path(f"{workspace}@tmp") / "secretFiles" / "3f1c2a"
    secret_dir.mkdir(parents=True)
    workspace.mkdir(exist_ok=True)
    images = [push_image(registry.host, name, repository=f"shop/{name}", tag="1.4.0")
              for name in ("service-1", "debian-app")]
    keygen = run_in_image(built.image, mounts, {"HOME": "/github/home", "COSIGN_PASSWORD": "jenkins-pw"},
                          ["sh", "-c", "cd /github/home && cosign generate-key-pair"])
    assert keygen.returncode == 0, keygen.stderr
    shutil.copy(mounts.home / "cosign.key", secret_dir / "cosign.key")
    for path in [tmp_path / "jenkins", *(tmp_path / "jenkins").rglob("*")]:
        os.lchown(path, JENKINS_UID, JENKINS_UID)
    mirror = mounts.runner_temp / "mirror"
    grype, trivy = grype_db.build(mirror / "grype"), trivy_db.build(mirror / "trivy")
    with GrypeListingServer(grype) as listing:
        trivy_repo = push_trivy_db(trivy, registry.host)
        env = {
            # what the agent's build environment holds (docker exec --env passes it into the container)
            "JENKINS_URL": "https://jenkins.example.com/", "JOB_NAME": "shop-release",
            "JOB_URL": "https://jenkins.example.com/job/shop-release/", "BUILD_NUMBER": "7", "BUILD_ID": "7",
            "BUILD_URL": "https://jenkins.example.com/job/shop-release/7/", "BUILD_TAG": "jenkins-shop-release-7",
            "WORKSPACE": str(workspace), "GIT_URL": "https://github.com/acme/shop.git", "GIT_COMMIT": "c" * 40,
            "GIT_BRANCH": "origin/main", "NODE_NAME": "built-in", "EXECUTOR_NUMBER": "0",
            "HOME": "/var/jenkins_home", "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
            # Manage Jenkins → System → Global properties: this machine's air gap (DB mirrors, no Rekor)
            "SC_CI_SECURITY__SCAN__DB__GRYPEUPDATEURL": listing.update_url,
            "SC_CI_SECURITY__SCAN__DB__TRIVYREPOSITORY": trivy_repo,
            "SC_CI_SECURITY__SIGNING__SIGSTORE__TRANSPARENCYLOG": "false",
            **environment,
            # withEnv([...]) and withCredentials([...]) of the stage
            "SC_CI_IMAGES": ",".join(i.by_digest for i in images), "SC_CI_REGISTRY_HOST": registry.host,
            "SC_CI_SECURITY__SIGNING__ENABLED": "true", "SC_CI_SIGNING_MODE": "key",
            "COSIGN_KEY_FILE": str(secret_dir / "cosign.key"), "COSIGN_PASSWORD": "jenkins-pw",
            "SC_CI_REGISTRY_USERNAME": "jenkins", "SC_CI_REGISTRY_PASSWORD": "jenkins-registry-pw",
        }
        done = run_in_image(built.image, mounts, env, ["sh", "-c", script], workdir=str(workspace),
                            user=f"{JENKINS_UID}:{JENKINS_UID}",
                            volumes=[(workspace, str(workspace)), (secret_dir.parents[1], f"{workspace}@tmp")])
    REPORT["jenkins_exit_code"] = done.returncode
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    output = workspace / "sc-ci-output"
    suite = ElementTree.parse(output / "junit.xml").getroot()  # noqa: S314 (our own output)
    cases = suite.findall(".//testcase")
    steps = {c.get("name") for c in cases}
    assert {"scan", "sign", "sbom", "provenance", "verify"} <= steps, steps
    assert len(cases) == len({(c.get("classname"), c.get("name")) for c in cases})  # one per image × step
    assert {c.get("classname") for c in cases} >= {i.by_digest for i in images}, [c.get("classname") for c in cases]
    assert not suite.findall(".//failure")
    manifest = json.loads((output / "release.json").read_text(encoding="utf-8"))
    assert manifest["verdict"]["status"] == "passed", manifest["verdict"]
    for path in [*workspace.rglob("*")]:
        assert path.lstat().st_uid == JENKINS_UID, path  # written by the jenkins user: the build can clean up
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "jenkins-pw" not in text, path
            assert "jenkins-registry-pw" not in text, path
    assert "jenkins-pw" not in done.stdout + done.stderr
    assert list(Path(f"{workspace}@tmp", "sc-ci-vulndb").iterdir())  # the DBs kept for the next build
    REPORT["jenkins_junit_cases"] = len(cases)


def _workflow_step(job: str, name: str) -> str:
    """The `run:` script of one step of this repository's release workflow, as committed."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"][job]["steps"]
    return str(next(step["run"] for step in steps if step.get("name") == name))


def _bash(script: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd.parent)}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=300, check=False)


def test_release_rehearsal(built: Built, registry: LocalRegistry, mounts: Mounts, tmp_path: Path) -> None:
    """.github/workflows/release.yml as far as this machine can run it, with its own scripts where they
    need no Docker engine or GitHub: the image pushed by digest, one index of the platform images, the
    publish job's `action.yml` rewrite, the action run FROM THAT INDEX on the index (sign, SBOMs,
    provenance, verify: key-based here, keyless on GitHub), and the tag job's script pushing the release
    commit's tags to a stand-in for github.com (a bare repository, through git's url.insteadOf)."""
    version = (ROOT / "sc_ci" / "__init__.py").read_text(encoding="utf-8").split('__version__ = "')[1].split('"')[0]
    check = _bash(_workflow_step("build", "Check the version"), ROOT, {"VERSION": version})
    assert check.returncode == 0, check.stdout + check.stderr
    wrong = _bash(_workflow_step("build", "Check the version"), ROOT, {"VERSION": "9.9.9"})
    assert wrong.returncode == 1
    assert "::error::" in wrong.stdout

    # build: each platform pushed by digest; publish: one index of them, tagged with the version.
    repo = f"{registry.host}/acme/sc-security-action"
    # SC_CI_IMAGE_INDEX_ALSO: another platform's image (built before) to put in the index beside this one.
    platforms = [built.image] + [i for i in [os.environ.get("SC_CI_IMAGE_INDEX_ALSO", "")] if i]
    digests = []
    for image in platforms:
        digest_file = tmp_path / "digest"
        _buildah("push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file), image,
                 f"docker://{repo}:build-{len(digests)}", timeout=900)
        digests.append(digest_file.read_text(encoding="utf-8").strip())
    index = f"sc-ci-rehearsal-{secrets.token_hex(4)}"
    _buildah("manifest", "create", index)
    try:
        for digest in digests:
            _buildah("manifest", "add", "--tls-verify=false", index, f"docker://{repo}@{digest}")
        index_file = tmp_path / "index-digest"
        _buildah("manifest", "push", "--all", "--quiet", "--tls-verify=false", "--digestfile", str(index_file),
                 index, f"docker://{repo}:{version}", timeout=900)
    finally:
        subprocess.run(["buildah", "manifest", "rm", index], capture_output=True, check=False)
    index_digest = index_file.read_text(encoding="utf-8").strip()

    # publish: the workflow's own rewrite of action.yml, then the action run from what it names.
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", "--no-local", str(ROOT), str(checkout)], check=True)
    rewrite = _bash(_workflow_step("publish", "Point action.yml at the image"), checkout,
                    {"IMAGE": repo, "DIGEST": index_digest})
    assert rewrite.returncode == 0, rewrite.stderr
    action = yaml.safe_load((checkout / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"] == {"using": "docker", "image": f"docker://{repo}@{index_digest}"}
    pulled = _buildah("pull", "--quiet", "--tls-verify=false", action["runs"]["image"], timeout=900).strip()
    keygen = run_in_image(pulled, mounts, {"HOME": "/github/home", "COSIGN_PASSWORD": "rehearsal"},
                          ["sh", "-c", "mkdir -p /github/home/keys && cd /github/home/keys && "
                                       "cosign generate-key-pair"])
    assert keygen.returncode == 0, keygen.stderr
    step = next(s for s in yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())["jobs"]
                ["publish"]["steps"] if s.get("id") == "release")
    inputs = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in step["with"].items()
              if not str(v).startswith("${{")}
    assert inputs.pop("keyless") == "true"  # GitHub's OIDC; no Fulcio is reachable here: a key instead
    inputs.update({"images": f"{repo}@{index_digest}", "private-key": "/github/home/keys/cosign.key",
                   "public-key": "/github/home/keys/cosign.pub", "cosign-password": "rehearsal", "scan": "false",
                   "transparency-log": "false"})
    started = time.monotonic()
    done = run_in_image(pulled, mounts, runner_env(inputs))
    REPORT["rehearsal_release_seconds"] = round(time.monotonic() - started, 1)
    outputs_file = mounts.workspace / "output.txt"
    outputs = parse_output(outputs_file.read_text(encoding="utf-8")) if outputs_file.exists() else {}
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert outputs["status"] == "passed", outputs
    assert outputs["signed"].splitlines() == [f"{repo}@{index_digest}"]
    commands = outputs["verify-commands"].splitlines()
    assert any(" --type slsaprovenance1 " in c for c in commands), commands
    assert any(" --type https://simple-container.com/attestations/sbom-reference/v1 " in c and index_digest in c
               for c in commands), commands  # an index carries the reference to its platforms' SBOMs
    for command in commands:  # every line the release printed works for a consumer
        verify = run_in_image(pulled, mounts, {"HOME": "/github/home"}, shlex.split(command),
                              workdir="/github/home/keys")
        assert verify.returncode == 0, command + "\n" + verify.stderr
    upload = next(s for s in yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())["jobs"]
                  ["publish"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    for path in upload["with"]["path"].split():  # what the tag job publishes with the GitHub release
        assert (mounts.workspace / path).exists(), path
    assert list((mounts.workspace / "release-evidence" / "sbom").glob("*.cdx.json"))
    REPORT["rehearsal_verify_commands"] = len(commands)

    # tag: the job's script; github.com is a bare repository here (git's url.insteadOf, read from a global
    # config file because the script sets GIT_CONFIG_* itself).
    remote = tmp_path / "github.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "{remote}"]\n\tinsteadOf = https://github.com/acme/sc-security-action.git\n',
                         encoding="utf-8")
    subprocess.run(["git", "-C", str(checkout), "checkout", "-q", "--", "action.yml"], check=True)
    token = "ghs_" + secrets.token_hex(16)
    tag = _bash(_workflow_step("tag", "Release commit and tags"), checkout,
                {"VERSION": version, "DIGEST": index_digest, "TOKEN": token, "REPO": "acme/sc-security-action",
                 "IMAGE": repo, "GITHUB_SHA": git(checkout, "rev-parse", "HEAD"),
                 "GIT_CONFIG_GLOBAL": str(gitconfig)})
    assert tag.returncode == 0, tag.stdout + tag.stderr
    assert token not in tag.stdout + tag.stderr
    tags = subprocess.run(["git", "-C", str(remote), "tag", "-l"], capture_output=True, text=True, check=True)
    major = version.split(".")[0]
    assert tags.stdout.split() == sorted([f"v{version}", f"v{major}"])
    released = subprocess.run(["git", "-C", str(remote), "show", f"v{version}:action.yml"], capture_output=True,
                              text=True, check=True).stdout
    assert yaml.safe_load(released)["runs"]["image"] == f"docker://{repo}@{index_digest}"
    assert token not in (remote / "config").read_text(encoding="utf-8")
    REPORT["rehearsal"] = {"platforms": len(digests), "index": index_digest, "tags": tags.stdout.split()}


def test_zz_report(built: Built) -> None:
    """Prints the measurements (make image-test shows them) and writes them to $SC_CI_IMAGE_REPORT."""
    text = json.dumps(REPORT, indent=2, default=str)
    print("\n== image report\n" + text)
    target = os.environ.get("SC_CI_IMAGE_REPORT")
    if target:
        Path(target).write_text(text + "\n", encoding="utf-8")
