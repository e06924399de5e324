"""The GitHub container-action contract: run ./entrypoint exactly as the runner does and read what it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sc_ci.runner import base_env
from testbed.github import parse_output
from testbed.images import PushedImage
from testbed.keys import generate_keypair

ROOT = Path(__file__).resolve().parents[2]
FreshImage = Callable[..., PushedImage]
_ARMOUR = "ENCRYPTED SIGSTORE " + "PRIVATE KEY-----"
BROKEN_PEM = f"-----BEGIN {_ARMOUR}\nbroken\n-----END {_ARMOUR}\n"  # not a key: cosign rejects it



@pytest.fixture(scope="module")
def keypair(tool: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    keys = generate_keypair(tool("cosign"), tmp_path_factory.mktemp("gh-keys"))
    return keys.pem, keys.public.read_text(), keys.password


def runner_env(workspace: Path, inputs: dict[str, str]) -> dict[str, str]:
    declared = yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "COSIGN_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    # The runner sets every declared input; unset ones are empty strings.
    env.update({f"INPUT_{name.upper()}": "" for name in declared})
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    env.update({
        "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": "a" * 40, "GITHUB_REF": "refs/heads/main",
        "GITHUB_WORKFLOW": "release", "GITHUB_WORKFLOW_REF": "acme/shop/.github/workflows/release.yml@refs/heads/main",
        "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_EVENT_NAME": "push",
        "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(workspace / "output.txt"),
        "GITHUB_STEP_SUMMARY": str(workspace / "summary.md"), "RUNNER_TEMP": str(workspace / "tmp"),
    })
    return env


def test_entrypoint_signs_and_writes_outputs(fresh_image: FreshImage, keypair: tuple[str, str, str],
                                             tmp_path: Path) -> None:
    private_pem, _public_pem, password = keypair
    images = [fresh_image("service-5"), fresh_image("service-6")]
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "security.yaml").write_text("security:\n  signing:\n    sigstore:\n      transparencyLog: false\n")
    env = runner_env(workspace, {
        "config": "security.yaml", "images": "\n".join(i.ref for i in images), "sign": "true",
        "private-key": private_pem, "cosign-password": password,
    })
    done = subprocess.run([str(ROOT / "entrypoint")], cwd=workspace, env=env, text=True, capture_output=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    outputs = parse_output((workspace / "output.txt").read_text())
    assert outputs["digests"].splitlines() == sorted(i.by_digest for i in images)
    assert outputs["signed"].splitlines() == sorted(i.by_digest for i in images)
    assert all(c.startswith("cosign verify --key cosign.pub") for c in outputs["verify-commands"].splitlines())
    summary = (workspace / "summary.md").read_text()
    assert "## sc-ci release" in summary
    assert "| image | signature | verify |" in summary
    assert summary.count(" | signed | verified |") == 2  # one row per image
    assert summary.count("| ok | sign |") == 2  # and each step in the details

    # Masks come before anything else, and no secret shows outside ::add-mask:: commands.
    stdout_lines = done.stdout.splitlines()
    first_other = next(i for i, line in enumerate(stdout_lines) if not line.startswith("::add-mask::"))
    masked = {line.removeprefix("::add-mask::") for line in stdout_lines[:first_other]}
    assert password in masked
    pem_lines = [line for line in private_pem.splitlines() if line and not line.startswith("-----")]
    assert set(pem_lines) <= masked
    shown = "\n".join(stdout_lines[first_other:]) + done.stderr + summary + (workspace / "output.txt").read_text()
    for secret in (password, *pem_lines):
        assert secret not in shown
    assert sorted(p.name for p in workspace.iterdir()) == ["output.txt", "security.yaml", "summary.md"]


@pytest.mark.parametrize(("fail_open", "exit_code"), [(False, 1), (True, 0)])
def test_failed_signing_follows_the_policy(fail_open: bool, exit_code: int, fresh_image: FreshImage,
                                           tmp_path: Path) -> None:
    """A key cosign cannot read fails the sign step: exit 1 and an error annotation when fail-closed; a
    warning annotation and `status: degraded` when fail-open (a tolerated failure is loud)."""
    image = fresh_image("service-7")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "security.yaml").write_text(
        f"security:\n  policy:\n    failOpen: {str(fail_open).lower()}\n"
        "  signing:\n    sigstore:\n      transparencyLog: false\n")
    env = runner_env(workspace, {"config": "security.yaml", "images": image.ref, "sign": "true",
                                 "private-key": "env://BROKEN_KEY"})
    env["BROKEN_KEY"] = BROKEN_PEM
    done = subprocess.run([str(ROOT / "entrypoint")], cwd=workspace, env=env, text=True, capture_output=True,
                          timeout=300, check=False)
    assert done.returncode == exit_code, done.stdout + done.stderr
    if fail_open:
        assert "::warning title=sc-ci sign failed (tolerated)::" in done.stdout
        assert "tolerated by the fail-open policy" in done.stdout
        assert "status=degraded" in (workspace / "output.txt").read_text()
    else:
        assert "::error title=sc-ci sign failed::" in done.stdout
        assert "status=failed" in (workspace / "output.txt").read_text()


def test_full_release_sign_sbom_provenance(fresh_image: FreshImage, keypair: tuple[str, str, str],
                                           tool: Callable[[str], Path], tmp_path: Path) -> None:
    """The whole release through the entrypoint on a GitHub-like runner; plain cosign checks the result."""
    import base64
    import json

    private_pem, public_pem, password = keypair
    image = fresh_image("alpine-app")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "security.yaml").write_text(
        "security:\n  policy:\n    failOpen: false\n  signing:\n    sigstore:\n      transparencyLog: false\n"
        "  sbom:\n    enabled: true\n  provenance:\n    enabled: true\n")
    env = runner_env(workspace, {"config": "security.yaml", "images": image.ref, "sign": "true",
                                 "private-key": private_pem, "cosign-password": password})
    done = subprocess.run([str(ROOT / "entrypoint")], cwd=workspace, env=env, text=True, capture_output=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("sign", "verify", "sbom", "sbom-attach", "provenance"):
        assert f"ok   {step} " in done.stdout, done.stdout
    commands = parse_output((workspace / "output.txt").read_text())["verify-commands"].splitlines()
    assert any("--type cyclonedx" in c for c in commands)
    assert any("--type slsaprovenance1" in c for c in commands)

    pub = tmp_path / "cosign.pub"
    pub.write_text(public_pem)
    cosign = tool("cosign")
    for kind in ("cyclonedx", "slsaprovenance1"):
        check = subprocess.run([str(cosign), "verify-attestation", "--key", str(pub), "--type", kind,
                                "--insecure-ignore-tlog=true", image.by_digest], text=True, capture_output=True,
                               env=base_env(), stdin=subprocess.DEVNULL, timeout=120, check=False)
        assert check.returncode == 0, check.stderr
        statement = json.loads(base64.b64decode(json.loads(check.stdout.splitlines()[0])["payload"]))
        assert statement["subject"][0]["digest"]["sha256"] == image.digest.removeprefix("sha256:")
        if kind == "slsaprovenance1":
            predicate = statement["predicate"]
            assert predicate["runDetails"]["builder"]["id"] == (
                "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main")
            deps = predicate["buildDefinition"]["resolvedDependencies"]
            assert deps[0]["digest"]["gitCommit"] == "a" * 40


@pytest.mark.parametrize(("sbom_fail_open", "exit_code"), [(True, 0), (False, 1)])
def test_policy_is_per_feature(sbom_fail_open: bool, exit_code: int, fresh_image: FreshImage,
                               keypair: tuple[str, str, str], tmp_path: Path) -> None:
    """Fail-closed overall, but a broken SBOM stage only fails the job when sbom.failOpen is false."""
    private_pem, _public_pem, password = keypair
    image = fresh_image("service-9")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "security.yaml").write_text(
        "security:\n  policy:\n    failOpen: false\n  signing:\n    sigstore:\n      transparencyLog: false\n"
        f"  sbom:\n    enabled: true\n    failOpen: {str(sbom_fail_open).lower()}\n")
    env = runner_env(workspace, {"config": "security.yaml", "images": image.ref, "sign": "true",
                                 "private-key": private_pem, "cosign-password": password})
    env["SC_CI_SYFT_PATH"] = "/bin/false"  # syft "exists" but cannot even report its version
    done = subprocess.run([str(ROOT / "entrypoint")], cwd=workspace, env=env, text=True, capture_output=True,
                          timeout=300, check=False)
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert "ok   sign " in done.stdout
    assert "FAIL sbom " in done.stdout
