"""A release cancelled in the middle (SIGTERM from a CI cancelling the job, SIGINT from Ctrl-C) while cosign
and syft run: the exit code says so (143 / 130), no private file with a secret in it stays in TMPDIR (the
Docker config with the registry password, token files, the run's work directory), no tool keeps running,
and a re-run finishes the release without a duplicate signature or attestation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from testbed.demo import offline_release_config
from testbed.images import push_image
from testbed.keys import KeyPair
from testbed.registry import LocalRegistry

TOOLS = frozenset({"cosign", "syft", "grype", "trivy"})
PRIVATE = ("sc-ci-docker-", "sc-ci-oidc-", "sc-ci-run-", "sc-ci-attest-", "sc-ci-sbom-", "sc-ci-trust-")
ATTESTATIONS = 3  # cyclonedx, spdx, provenance


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def tools_running(marker: str) -> list[tuple[int, str]]:
    """(pid, name) of every cosign/syft/grype/trivy whose environment carries this run's TMPDIR, or a
    directory inside it (each tool inherits it from sc-ci, whatever became of its parent; syft gets a
    private one under it)."""
    found = []
    needle = f"TMPDIR={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        environ = b"\0" + _environ(int(entry.name)) + b"\0"
        if name in TOOLS and (b"\0" + needle + b"\0" in environ or b"\0" + needle + b"/" in environ):
            found.append((int(entry.name), name))
    return found



class Release:
    def __init__(self, registry: LocalRegistry, keys: KeyPair, tmp_path: Path, count: int = 3) -> None:
        run = uuid.uuid4().hex[:8]
        self.registry, self.keys, self.root = registry, keys, tmp_path
        self.images = [push_image(registry.host, ("alpine-app", "service-1", "service-2")[i % 3],
                                  repository=f"cancel-{run}/svc-{i}", tag="1.0.0", auth=registry.auth,
                                  extra_files={"etc/sc-ci-fresh-id": f"{run}-{i}\n"}) for i in range(count)]
        (tmp_path / "security.yaml").write_text(offline_release_config(keys.private))
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir()
        user, password = registry.auth or ("", "")
        drop = ("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_", "ACTIONS_", "SIGSTORE_", "BUILDKITE", "CIRCLE")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        self.env.pop("CI", None)
        self.env.update({"COSIGN_PASSWORD": keys.password, "TMPDIR": str(self.tmp),
                         "NO_PROXY": "127.0.0.1,localhost", "SC_CI_REGISTRY_HOST": registry.host,
                         "SC_CI_REGISTRY_USERNAME": user, "SC_CI_REGISTRY_PASSWORD": password})
        self.argv = [sys.executable, "-m", "sc_ci", "release", "create", "--config", str(tmp_path / "security.yaml"),
                     *(a for image in self.images for a in ("--image", image.ref)), "--version", "1.0.0",
                     "--no-tag", "--output", str(tmp_path / "out"), "--source-repo", "https://github.com/acme/shop",
                     "--git-sha", "0123456789abcdef0123456789abcdef01234567", "--workflow-name", "release",
                     "--workers", "2"]

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv, cwd=self.root, env=self.env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.tmp.iterdir())


@pytest.mark.parametrize(("signum", "code", "said"), [
    (signal.SIGTERM, 143, "cancelled (SIGTERM)"),
    (signal.SIGINT, 130, "interrupted"),
])
def test_cancel_mid_release_leaves_nothing_and_a_rerun_completes(
        signum: signal.Signals, code: int, said: str, auth_registry: LocalRegistry, keys: KeyPair,
        tmp_path: Path) -> None:
    release = Release(auth_registry, keys, tmp_path)
    proc = release.start()
    seen: set[str] = set()
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:  # both a signer and syft at work
            seen |= {name for _, name in tools_running(str(release.tmp))}
            if {"cosign", "syft"} <= seen and tools_running(str(release.tmp)):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the release ended before cosign and syft were both seen"
        during = release.leftovers()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert {"cosign", "syft"} <= seen, seen
    assert any(name.startswith("sc-ci-docker-") for name in during), during  # the secret was on disk then
    assert proc.returncode == code, out[-3000:] + err[-3000:]
    assert said in err, err[-3000:]
    assert "every child tool was stopped and temporary files removed" in err

    # nothing left: no private file in TMPDIR, no tool still running a few seconds later
    assert [n for n in release.leftovers() if n.startswith(PRIVATE)] == [], release.leftovers()
    time.sleep(3)
    assert tools_running(str(release.tmp)) == []
    password = (auth_registry.auth or ("", ""))[1]
    for path in release.tmp.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path

    # a re-run completes the release, with one signature and one attestation per document
    again = subprocess.run(release.argv, cwd=release.root, env=release.env, text=True, capture_output=True,
                           timeout=150, check=False)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert release.leftovers() == []
    for image in release.images:
        assert auth_registry.legacy_layers(image, "sig") == 1, image.ref
        assert auth_registry.legacy_layers(image, "att") == ATTESTATIONS, image.ref
