"""Keyless test bed fixtures: local OIDC issuers and a real Fulcio (ephemeral CA) trusting them, its trust files,
both cosign majors, and `python -m sc_ci` run as a CI step would (session-scoped; everything stopped after)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from sc_ci.tools.locate import find_version
from testbed.keyless import KeylessBed
from testbed.keyless import keyless_bed as start_keyless_bed
from testbed.keys import KeyPair, generate_keypair

RunScCi = Callable[..., subprocess.CompletedProcess[str]]
Shim = Callable[[Path], tuple[Path, Path]]


def missing(message: str) -> NoReturn:
    """A prerequisite is absent: fail in CI (CI=true), skip on a developer's machine (as tests/conftest.py)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: missing prerequisites fail, they never skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def cosign(tool: Callable[[str], Path]) -> Path:
    """The pinned cosign (v3)."""
    return tool("cosign")


@pytest.fixture(scope="session")
def keys(cosign: Path, tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A throwaway cosign key pair shared by the integration tests (images are fresh per test)."""
    return generate_keypair(cosign, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keys(cosign: Path, tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A second, unrelated key pair: what a wrong-key verification uses."""
    return generate_keypair(cosign, tmp_path_factory.mktemp("other-keys"))


@pytest.fixture(scope="session")
def cosign_v3(tool: Callable[[str], Path]) -> Path:
    return tool("cosign")


@pytest.fixture(scope="session")
def cosign_v2() -> Path:
    path = find_version("cosign", "v2.6.4")
    if path is None:
        missing("cosign v2.6.4 is not installed: python -m sc_ci.tools.installer --with-optional")
    return path


@pytest.fixture(scope="session", params=["v3", "v2"])
def cosign_any(request: pytest.FixtureRequest, cosign_v3: Path) -> Path:
    """Each keyless test runs with both majors: the pinned v3, and v2.6.4."""
    if request.param == "v3":
        return cosign_v3
    return Path(request.getfixturevalue("cosign_v2"))


@pytest.fixture(scope="session")
def keyless_bed(tool: Callable[[str], Path], cosign_v3: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeylessBed]:
    """GitHub-, GitLab- and email-like issuers and one Fulcio trusting them, for the whole session."""
    fulcio_binary = tool("fulcio")
    with start_keyless_bed(fulcio=fulcio_binary, cosign=cosign_v3,
                           directory=tmp_path_factory.mktemp("fulcio-trust")) as bed:
        yield bed
    assert not bed.fulcio.running


@pytest.fixture
def request_token(keyless_bed: KeylessBed) -> str:
    """A fresh ACTIONS_ID_TOKEN_REQUEST_TOKEN; the fake exchange mints GitHub-like tokens for it (and only it)."""
    value = "ghrt-" + secrets.token_urlsafe(24)
    keyless_bed.github.github_exchange(value, keyless_bed.github_claims())
    return value


@pytest.fixture(scope="session")
def run_sc_ci() -> RunScCi:
    """run_sc_ci(*args, env=None, cwd=None): `python -m sc_ci` in a child process, as a CI step runs it
    (the parent's SC_CI_*, INPUT_*, CI platform and token variables removed)."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        drop = ("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_", "ACTIONS_", "SIGSTORE_", "BUILDKITE", "CIRCLE")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        full_env.pop("COSIGN_PASSWORD", None)
        full_env["NO_PROXY"] = "127.0.0.1,localhost"
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=full_env, cwd=cwd, text=True,
                              capture_output=True, timeout=300, check=False)

    return run


@pytest.fixture
def cosign_shim(tmp_path: Path) -> Shim:
    """cosign_shim(real) -> (shim, argv log): a stand-in `cosign` appending its argv to the log, then
    running the real one."""

    def make(real: Path) -> tuple[Path, Path]:
        log, shim = tmp_path / "cosign-argv.log", tmp_path / "cosign-shim"
        shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
        log.touch()
        return shim, log

    return make
