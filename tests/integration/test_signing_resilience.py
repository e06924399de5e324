"""Idempotent and resilient signing with the real cosign: a digest already signed by the same key is skipped
(unless forced), a registry that refuses connections while cosign runs is retried until it answers, and an
outage that outlasts the retries fails the step with its cause (the policy decides about the job)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sc_ci import retry
from sc_ci.errors import StepFailed
from sc_ci.results.step import Outcome
from sc_ci.runner import base_env
from sc_ci.session import open_session
from sc_ci.signing import setup as signing
from sc_ci.steps import sign as sign_step
from testbed.images import PushedImage, push_image
from testbed.keys import KeyPair as Keys
from testbed.registry import LocalRegistry, free_port

FreshImage = Callable[..., PushedImage]


def _env(cosign: Path, keys: Keys, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "COSIGN_"))}
    env.update({"SC_CI_COSIGN_PATH": str(cosign), "COSIGN_PASSWORD": keys.password, **extra})
    return env


def sc_ci(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], env=env, text=True, capture_output=True,
                          timeout=300, check=False)


def _shim(directory: Path, real: Path) -> tuple[Path, Path]:
    log, shim = directory / "argv.log", directory / "cosign-shim"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    log.touch()
    return shim, log


def _sign_calls(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("sign ")]


@pytest.mark.parametrize("major", ["v3", "v2"])
def test_already_signed_digest_is_skipped_unless_forced(major: str, request: pytest.FixtureRequest, keys: Keys,
                                                        fresh_image: FreshImage, tmp_path: Path) -> None:
    real = Path(request.getfixturevalue(f"cosign_{major}"))
    shim, log = _shim(tmp_path, real)
    image = fresh_image()
    args = ("image", "sign", "-i", image.ref, "-k", str(keys.private), "--no-tlog")

    first = sc_ci(*args, env=_env(shim, keys))
    assert first.returncode == 0, first.stderr
    assert "ok   sign" in first.stdout
    assert len(_sign_calls(log)) == 1

    again = sc_ci(*args, env=_env(shim, keys))
    assert again.returncode == 0, again.stderr
    assert f"skip sign    {image.by_digest.split('@')[0]}" in again.stdout
    assert f"already signed by {keys.private}" in again.stdout
    assert "(before signing)" in again.stdout  # verification reused the check: no second verify
    assert f"cosign verify --key cosign.pub --insecure-ignore-tlog=true {image.by_digest}" in again.stdout
    assert len(_sign_calls(log)) == 1  # nothing was signed
    verify_calls = [line for line in log.read_text().splitlines() if line.startswith("verify ")]
    # first run: no .sig tag yet (no check), the verify after signing; second run: the check only
    assert len(verify_calls) == 2

    # a different key is not "the same key": that image gets signed
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    subprocess.run([str(real), "generate-key-pair"], cwd=other_dir, check=True, capture_output=True,
                   env={**base_env(), "COSIGN_PASSWORD": keys.password}, stdin=subprocess.DEVNULL, timeout=60)
    other = sc_ci("image", "sign", "-i", image.ref, "-k", str(other_dir / "cosign.key"), "--no-tlog",
                  env=_env(shim, keys))
    assert other.returncode == 0, other.stderr
    assert "ok   sign" in other.stdout
    assert len(_sign_calls(log)) == 2

    forced = sc_ci(*args, "--force", env=_env(shim, keys))
    assert forced.returncode == 0, forced.stderr
    assert "ok   sign" in forced.stdout
    assert len(_sign_calls(log)) == 3
    by_config = sc_ci(*args, env=_env(shim, keys, SC_CI_SECURITY__SIGNING__FORCE="true"))
    assert "ok   sign" in by_config.stdout
    assert len(_sign_calls(log)) == 4


def test_only_the_missing_format_is_signed(cosign_v3: Path, keys: Keys, fresh_image: FreshImage,
                                           tmp_path: Path) -> None:
    shim, log = _shim(tmp_path, cosign_v3)
    image = fresh_image()
    base = ("image", "sign", "-i", image.ref, "-k", str(keys.private), "--no-tlog")
    assert sc_ci(*base, "--storage", "referrers", env=_env(shim, keys)).returncode == 0
    both = sc_ci(*base, "--storage", "both", env=_env(shim, keys))
    assert both.returncode == 0, both.stderr
    assert "(legacy only: the rest was already signed)" in both.stdout
    last = _sign_calls(log)[-1]
    assert "--new-bundle-format=false" in last
    again = sc_ci(*base, "--storage", "both", env=_env(shim, keys))
    assert "skip sign" in again.stdout
    assert len(_sign_calls(log)) == 2


class FlakyProxy:
    """A TCP forwarder on 127.0.0.1:PORT in front of the registry. `down()` stops listening (clients get
    connection refused, as from a registry that is restarting); `up()` listens on the same port again."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(0.05)
        self._server = server
        thread = threading.Thread(target=self._accept, args=(server,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def _accept(self, server: socket.socket) -> None:
        while self._server is server:
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=30)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(registry.host)
    flaky.up()
    try:
        yield flaky
    finally:
        flaky.down()


def test_registry_refusing_connections_while_cosign_signs_is_retried(
        proxy: FlakyProxy, registry: LocalRegistry, cosign_v3: Path, keys: Keys, tmp_path: Path) -> None:
    """The first `cosign sign` meets a registry that refuses connections (cosign's own HTTP client does not
    retry that); sc-ci retries the command with backoff, the registry is back, the second run signs."""
    repo = f"flaky/app-{secrets.token_hex(4)}"
    pushed = push_image(registry.host, "service-1", repository=repo, tag="1.0")
    control = tmp_path / "control"
    control.mkdir()
    log, shim = tmp_path / "argv.log", tmp_path / "cosign-flaky"
    # The first `sign`: take the registry down (via the proxy), run the real cosign against it, bring it back.
    shim.write_text(f"""#!/bin/sh
printf "%s\\n" "$*" >> "{log}"
if [ "$1" = sign ] && [ ! -e "{control}/first" ]; then
  touch "{control}/first" "{control}/down.req"
  while [ ! -e "{control}/down.ack" ]; do sleep 0.02; done
  "{cosign_v3}" "$@"; rc=$?
  touch "{control}/up.req"
  while [ ! -e "{control}/up.ack" ]; do sleep 0.02; done
  exit $rc
fi
exec "{cosign_v3}" "$@"
""")
    shim.chmod(0o755)
    stop = threading.Event()

    def operate() -> None:
        while not stop.is_set():
            if (control / "down.req").exists() and not (control / "down.ack").exists():
                proxy.down()
                (control / "down.ack").touch()
            if (control / "up.req").exists() and not (control / "up.ack").exists():
                proxy.up()
                (control / "up.ack").touch()
            time.sleep(0.01)

    operator = threading.Thread(target=operate, daemon=True)
    operator.start()
    try:
        result = sc_ci("image", "sign", "-i", f"{proxy.host}/{repo}:1.0", "-k", str(keys.private), "--no-tlog",
                       env=_env(shim, keys))
    finally:
        stop.set()
        operator.join(timeout=5)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (control / "up.ack").exists()
    signs = [line for line in log.read_text().splitlines() if line.startswith("sign ")]
    assert len(signs) == 2  # the refused run, then the retry
    assert "transient failure (attempt 1)" in result.stderr
    assert "dial tcp" in result.stderr  # the refused connection, as cosign reports it
    assert "ok   sign" in result.stdout
    assert "ok   verify" in result.stdout
    signed = f"{registry.host}/{repo}@{pushed.digest}"  # verify directly, not through the proxy
    verified = sc_ci("image", "verify", "-i", signed, "-k", str(keys.public), "--no-tlog", env=_env(cosign_v3, keys))
    assert verified.returncode == 0, verified.stderr


def test_outage_outlasting_the_retries_fails_the_step_with_its_cause(
        registry_factory: Callable[..., LocalRegistry], cosign_v3: Path, keys: Keys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry that stays down: every attempt fails, the sign step's result is FAILED and carries a
    StepFailed naming the cause and the attempts (action.py's policy then decides whether the job fails)."""
    reg = registry_factory()
    pushed = push_image(reg.host, "service-2", repository=f"gone/app-{secrets.token_hex(4)}", tag="1.0")
    env = _env(cosign_v3, keys, SC_CI_SECURITY__SIGNING__PRIVATEKEY=str(keys.private),
               SC_CI_SECURITY__SIGNING__SIGSTORE__TRANSPARENCYLOG="false", SC_CI_SECURITY__SIGNING__FORCE="true")
    session = open_session(argparse.Namespace(images=[pushed.by_digest]), env, {"signing.enabled": True})
    cosign = session.cosign()
    plan = signing.plan(session, cosign)
    assert plan.check_existing is None  # signing.force: no check before signing
    reg.stop()
    monkeypatch.setattr(retry, "call", functools.partial(retry.call, initial=0.01, attempts=4))  # 4 tries, short waits
    attempts_before = _count_runs(monkeypatch)

    result = sign_step.sign(cosign, pushed.by_digest, plan)

    assert result.outcome is Outcome.FAILED
    assert result.failed
    assert isinstance(result.error, StepFailed)
    assert "the registry (or a Sigstore service) could not be reached" in result.summary
    assert "connection refused" in result.error.why
    assert "cosign failed 4 times in a row with a transient error" in result.error.why
    assert "transient-failures-retried" in result.error.fix
    assert attempts_before() == 4


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count cosign runs (every attempt goes through the one subprocess wrapper)."""
    from sc_ci import runner

    calls: list[list[str]] = []
    real = runner.run

    def counting(argv: list[str], **kwargs: object) -> runner.Completed:
        calls.append(argv)
        return real(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "run", counting)
    return lambda: sum(1 for argv in calls if "sign" in argv)
