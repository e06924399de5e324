"""The repository's CI examples run as close to the real runner as this machine allows.

GitLab: `examples/gitlab/component.gitlab-ci.yml` run by gitlab-ci-local (tools/ci-local, npm) with its shell
executor: GitLab's own include + `spec:inputs` interpolation of the component file, the job's variables,
the predefined CI_* variables, the `sc-ci action` script and the artifacts/reports paths, against a
registry that needs the job's CI_REGISTRY_USER / CI_REGISTRY_PASSWORD, with keyless signing through the
job's SIGSTORE_ID_TOKEN (a GitLab-like issuer and a Fulcio on loopback) and both scanners on the test-bed
DB mirrors given as project variables. What it cannot do: pull the component from a GitLab server (the
include is made `local:`), run the job in the engine image (the shell executor runs the same `sc-ci` on
this machine; the image itself is run by `make image-test`), and mint the id_token (given as a variable).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from testbed.demo import git
from testbed.images import push_image
from testbed.keyless import GITLAB_PROJECT, KeylessBed
from testbed.registry import LocalRegistry

if TYPE_CHECKING:
    from testbed.vulndb.serve import ServedDbs

pytest_plugins = ["testbed.vulndb.fixtures"]
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GITLAB_CI_LOCAL = ROOT / "tools" / "ci-local" / "node_modules" / ".bin" / "gitlab-ci-local"
COMPONENT_LINE = "  - component: $CI_SERVER_FQDN/simple-container-com/sc-security-action/sc-security@"


def _gitlab_ci_local() -> Path:
    if not GITLAB_CI_LOCAL.is_file() or shutil.which("node") is None:
        message = "gitlab-ci-local is not installed (make ci-local: npm ci in tools/ci-local)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: missing prerequisites fail)", pytrace=False)
        pytest.skip(message)
    return GITLAB_CI_LOCAL



def _example_project(tmp_path: Path) -> Path:
    """A checkout holding the example pipeline, its component include made local (same file, same inputs)."""
    project = tmp_path / "app"
    project.mkdir()
    example = (ROOT / "examples" / "gitlab" / "component.gitlab-ci.yml").read_text(encoding="utf-8")
    lines = example.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(COMPONENT_LINE))
    lines[at] = "  - local: templates/sc-security.yml"
    (project / ".gitlab-ci.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (project / "templates").mkdir()
    shutil.copy(ROOT / "templates" / "sc-security.yml", project / "templates" / "sc-security.yml")
    (project / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    git(project, "init", "-q", "-b", "main")
    git(project, "remote", "add", "origin", f"https://gitlab.example.com/{GITLAB_PROJECT}.git")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "app")
    return project


def test_gitlab_component_example(keyless_bed: KeylessBed, registry: LocalRegistry, vulndbs: ServedDbs,
                                  registry_factory: Callable[..., LocalRegistry], cosign: Path,
                                  tmp_path: Path) -> None:
    gcl = _gitlab_ci_local()
    project = _example_project(tmp_path)
    short_sha = git(project, "rev-parse", "--short=8", "HEAD")
    user, password = "gitlab-ci-token", "glcbt-" + secrets.token_hex(12)
    ci_registry = registry_factory(auth=(user, password))
    image = f"{ci_registry.host}/{GITLAB_PROJECT}"
    pushed = push_image(ci_registry.host, "alpine-app", repository=GITLAB_PROJECT, tag=short_sha,
                        auth=(user, password))
    token = keyless_bed.gitlab.mint(keyless_bed.gitlab_claims())

    # What GitLab would give the job: its registry and credentials, the server (the id_token's issuer),
    # the id_token itself, plus project-level variables: the private Sigstore and the DB mirrors.
    gitlab_env = keyless_bed.gitlab_env(token)
    variables = {
        "GITLAB_CI": "true",  # gitlab-ci-local says "false" to its jobs; a real runner says "true"
        "CI_REGISTRY": ci_registry.host, "CI_REGISTRY_IMAGE": image,
        "CI_REGISTRY_USER": user, "CI_REGISTRY_PASSWORD": password,
        "CI_SERVER_URL": gitlab_env["CI_SERVER_URL"], "CI_PROJECT_PATH": GITLAB_PROJECT,
        "CI_CONFIG_PATH": gitlab_env["CI_CONFIG_PATH"],
        # A runner predefines these; gitlab-ci-local does not (SLSA provenance records the builder).
        "CI_RUNNER_ID": "4242", "CI_RUNNER_VERSION": "17.7.0", "CI_RUNNER_DESCRIPTION": "gitlab-ci-local",
        "SIGSTORE_ID_TOKEN": token, **keyless_bed.sigstore_env(),
        "SC_CI_SECURITY__SCAN__DB__GRYPEUPDATEURL": vulndbs.grype_update_url,
        "SC_CI_SECURITY__SCAN__DB__TRIVYREPOSITORY": vulndbs.trivy_repository,
        "SC_CI_SECURITY__SCAN__DB__CACHEDIR": str(tmp_path / "vulndb"),
    }
    args = [str(gcl), "--force-shell-executor", "--home", str(tmp_path / "gcl-home"),
            "--no-color", "sc-security"]
    for key, value in variables.items():
        args += ["--variable", f"{key}={value}"]
    # Set on purpose: they are what a GitLab runner would predefine for this project and job.
    args += ["--ignore-predefined-vars", ",".join(k for k in variables if k.startswith(("CI_", "GITLAB_")))]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_", "SIGSTORE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env["NO_PROXY"] = "127.0.0.1,localhost"
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-8000:]

    # The job's dotenv report and artifacts, where the component's artifacts:reports say they are.
    artifacts = project / ".gitlab-ci-local" / "artifacts" / "sc-security"
    dotenv = dict(line.split("=", 1) for line in (artifacts / "sc-ci.env").read_text().splitlines() if line)
    assert dotenv["SC_CI_STATUS"] == "passed", dotenv
    assert pushed.by_digest.split("@")[1] in dotenv["SC_CI_DIGESTS"]
    report = json.loads((artifacts / "sc-ci-output" / "gl-container-scanning-report.json").read_text())
    assert report["scan"]["type"] == "container_scanning"
    assert report["vulnerabilities"], "alpine-app has known findings in the test-bed DBs"
    assert list((artifacts / "sc-ci-output" / "sbom").glob("*.cdx.json"))
    # Keyless: plain cosign finds a signature whose certificate names the GitLab config that ran.
    docker_config = ci_registry.write_docker_config(tmp_path / "docker").parent
    verify = subprocess.run(
        [str(cosign), "verify", "--certificate-identity", f"https://{keyless_bed.gitlab_config_ref}",
         "--certificate-oidc-issuer", keyless_bed.gitlab.origin, "--trusted-root", str(keyless_bed.trust.trusted_root),
         "--insecure-ignore-tlog=true", "--insecure-ignore-sct=true", pushed.by_digest],
        env={"PATH": env["PATH"], "HOME": str(tmp_path), "DOCKER_CONFIG": str(docker_config)},
        capture_output=True, text=True, timeout=120, check=False)
    assert verify.returncode == 0, verify.stderr
    for secret in (password, token):
        assert secret not in log
        for path in artifacts.rglob("*"):
            if path.is_file():
                assert secret not in path.read_text(encoding="utf-8", errors="replace"), path
    spec = yaml.safe_load_all((ROOT / "templates" / "sc-security.yml").read_text(encoding="utf-8"))
    assert next(spec)["spec"]["inputs"]["stage"]["default"] == "test"
