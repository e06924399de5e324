"""Key references with the real cosign (both majors): a KMS URI reaches cosign unchanged (a Vault stand-in on
loopback records what cosign asked), its failures are classified with the provider's fix, credentials in a
URI never show; inline key material reaches cosign v2.6 too as env:// (no key file)."""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sc_ci import retry
from sc_ci.errors import StepFailed
from sc_ci.runner import base_env
from sc_ci.session import open_session
from sc_ci.signing.signers import key_from_reference
from sc_ci.tools.cosign import SignOptions
from testbed.images import PushedImage
from testbed.registry import free_port

FreshImage = Callable[..., PushedImage]


class FakeVault:
    """Answers every request like a Vault that refuses the token (403 permission denied), recording it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        recorded = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                recorded.append({"method": self.command, "path": self.path,
                                 "token": self.headers.get("X-Vault-Token", "")})
                body = json.dumps({"errors": ["permission denied"]}).encode()
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    fake = FakeVault()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(params=["v3", "v2"])
def any_cosign(request: pytest.FixtureRequest) -> Path:
    return Path(request.getfixturevalue(f"cosign_{request.param}"))


def sc_ci(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "COSIGN_", "VAULT_", "AWS_", "GOOGLE_", "AZURE_"))}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=full, text=True, capture_output=True,
                          timeout=300, check=False)


def _github(workspace: Path) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/app",
            "GITHUB_SHA": "a" * 40, "GITHUB_REF": "refs/heads/main", "GITHUB_RUN_ID": "1",
            "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/heads/main",
            "GITHUB_OUTPUT": str(workspace / "output"), "GITHUB_STEP_SUMMARY": str(workspace / "summary.md")}


def test_hashivault_uri_reaches_cosign_unchanged(vault: FakeVault, any_cosign: Path, fresh_image: FreshImage,
                                                 tmp_path: Path) -> None:
    image = fresh_image()
    log, shim = tmp_path / "argv.log", tmp_path / "cosign-shim"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{any_cosign}" "$@"\n')
    shim.chmod(0o755)
    token = "hvs." + secrets.token_urlsafe(18)
    env = {"SC_CI_COSIGN_PATH": str(shim), "VAULT_ADDR": vault.url, "VAULT_TOKEN": token, **_github(tmp_path)}

    result = sc_ci("image", "sign", "-i", image.ref, "--key", "hashivault://release-key", "--no-tlog", env=env)

    assert result.returncode == 1
    sign_line = next(line for line in log.read_text().splitlines() if line.startswith("sign "))
    assert "--key hashivault://release-key " in sign_line  # unchanged in argv
    # cosign itself asked the Vault (VAULT_ADDR) for that transit key, with the token from the environment
    assert vault.requests[0] == {"method": "GET", "path": "/v1/transit/keys/release-key", "token": token}
    assert "the KMS refused or could not find the key hashivault://release-key" in result.stdout
    assert f"GET {vault.url}/v1/transit/keys/release-key" in result.stderr  # cosign's own error, as the why
    assert "permission denied" in result.stderr
    assert "VAULT_ADDR" in result.stderr  # the fix names the provider's settings
    assert "kms-key-unusable" in result.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "hashivault://release-key" in summary
    assert token not in result.stdout + result.stderr + summary + log.read_text()


def test_credentials_in_a_key_uri_are_masked_in_the_summary(any_cosign: Path, fresh_image: FreshImage,
                                                            tmp_path: Path) -> None:
    image = fresh_image()
    credential = "s." + secrets.token_hex(12)
    uri = f"hashivault://release-key?token={credential}"
    env = {"SC_CI_COSIGN_PATH": str(any_cosign), "VAULT_ADDR": f"http://127.0.0.1:{free_port()}", **_github(tmp_path)}

    result = sc_ci("image", "sign", "-i", image.ref, "--key", uri, "--no-tlog", env=env)

    assert result.returncode == 1
    summary = (tmp_path / "summary.md").read_text()
    assert "hashivault://release-key?token=***" in summary
    assert "hashivault://release-key?token=***" in result.stdout
    assert "kms specification should be in the format hashivault://<key>" in result.stderr  # cosign's own words
    for text in (result.stdout, result.stderr, summary):
        assert credential not in text


def test_unreachable_kms_is_retried_then_named(cosign_v3: Path, fresh_image: FreshImage,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    image = fresh_image()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused (loopback only)
    monkeypatch.setattr(retry, "call", functools.partial(retry.call, initial=0.01, attempts=4))
    env = {**base_env(), "SC_CI_COSIGN_PATH": str(cosign_v3), "VAULT_ADDR": dead, "VAULT_TOKEN": "hvs.x" * 3,
           "SC_CI_SECURITY__SIGNING__PRIVATEKEY": "hashivault://release-key"}
    session = open_session(argparse.Namespace(images=[image.ref]), env, {"signing.enabled": True})
    cosign = session.cosign()
    key = key_from_reference("hashivault://release-key", env, public=False)
    with pytest.raises(StepFailed) as failed:
        cosign.sign(image.by_digest, key, SignOptions(tlog=False, storage="legacy"))
    assert failed.value.what == f"signing {image.by_digest}: could not reach the KMS holding hashivault://release-key"
    assert f"{dead}/v1/transit/keys/release-key" in failed.value.why
    assert "connection refused" in failed.value.why
    assert "cosign failed 4 times in a row" in failed.value.why
    assert "VAULT_TOKEN" in failed.value.fix


def test_inline_keys_reach_cosign_v2_as_env_uris(cosign_v2: Path, fresh_image: FreshImage, tmp_path: Path) -> None:
    """${secret:…} key material: cosign v2.6 reads private and public keys from env:// as v3 does, so no key
    file is ever written (TMPDIR stays empty)."""
    password = "pw-" + secrets.token_hex(8)
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run([str(cosign_v2), "generate-key-pair"], cwd=keys, check=True, capture_output=True,
                   env={**base_env(), "COSIGN_PASSWORD": password}, stdin=subprocess.DEVNULL, timeout=60)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    log, shim = tmp_path / "argv.log", tmp_path / "cosign-shim"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{cosign_v2}" "$@"\n')
    shim.chmod(0o755)
    config = tmp_path / "security.yaml"
    config.write_text("security:\n  signing:\n    enabled: true\n    privateKey: ${secret:cosign-private-key}\n"
                      "    publicKey: ${secret:cosign-public-key}\n    sigstore:\n      transparencyLog: false\n")
    image = fresh_image()
    env = {"SC_CI_COSIGN_PATH": str(shim), "TMPDIR": str(scratch), "COSIGN_PASSWORD": password,
           "COSIGN_PRIVATE_KEY": (keys / "cosign.key").read_text(),
           "COSIGN_PUBLIC_KEY": (keys / "cosign.pub").read_text()}

    result = sc_ci("image", "sign", "-i", image.ref, "--config", str(config), env=env)

    assert result.returncode == 0, result.stderr
    assert "signed with inline secret (" in result.stdout
    assert "ok   verify" in result.stdout
    lines = log.read_text().splitlines()
    assert any(line.startswith("sign --yes --key env://SC_CI_COSIGN_KEY ") for line in lines)
    assert any(line.startswith("verify --key env://SC_CI_COSIGN_PUB ") for line in lines)
    assert list(scratch.rglob("*")) == []  # no key file, not even for a moment's leftovers
    body = "".join((keys / "cosign.key").read_text().splitlines()[1:-1])[:40]
    assert body not in result.stdout + result.stderr + log.read_text()
