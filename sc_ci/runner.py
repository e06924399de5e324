"""The one subprocess wrapper: argv lists, explicit env, timeout, stderr kept, secrets masked."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sc_ci import deadline, processes, secrets
from sc_ci.errors import ToolError
from sc_ci.log import get_logger

log = get_logger("runner")

# Variables a tool may inherit from the caller's environment (never credentials).
BASE_ENV_KEYS = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR",
                 "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
DEFAULT_TIMEOUT = 600.0

_LIVE: set[subprocess.Popen[str]] = set()  # children running now, from any thread
_LIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Completed:
    """A finished command: its (masked) argv, exit code, output and duration."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str  # already masked
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.stderr.strip().splitlines()[-lines:])


def base_env(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The minimal inherited environment for a tool: PATH, HOME, locale, proxies and CA settings."""
    src = os.environ if source is None else source
    env = {k: src[k] for k in BASE_ENV_KEYS if k in src}
    no_proxy = env.get("NO_PROXY", "")
    if "127.0.0.1" not in no_proxy:
        env["NO_PROXY"] = ",".join(p for p in (no_proxy, "127.0.0.1,localhost") if p)
    return env


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    cwd: str | Path | None = None,
    stdin: str | None = None,
    check: bool = False,
) -> Completed:
    """Run argv (never through a shell) with exactly `env`. Stdout is returned unmasked (tools print
    JSON we parse); stderr and every log line are masked."""
    args = tuple(str(a) for a in argv)
    shown = secrets.mask(" ".join(args))
    left = deadline.remaining()  # a step timeout (engine) bounds every tool the step runs
    if left is not None:
        if left <= 0:
            raise ToolError(f"{Path(args[0]).name} not started: the step ran out of time",
                            fix="Raise --step-timeout (SC_CI_STEP_TIMEOUT), or find what made the step slow (-v).")
        timeout = min(timeout, max(left, 0.5))
    log.debug("run: %s", shown)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            args, env=dict(env), cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, start_new_session=True,
        )
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except BaseException:
            processes.stop_group(proc)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
    except FileNotFoundError as exc:
        raise ToolError(f"{args[0]} not found", why=str(exc),
                        fix="Install the pinned tools with `make tools` (or `sc-ci tools install`).") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{Path(args[0]).name} timed out after {timeout:g}s",
                        why=f"command: {shown}",
                        fix="Check network access to the registry, or raise the timeout.") from exc
    seconds = time.monotonic() - started
    result = Completed(tuple(secrets.mask(a) for a in args), proc.returncode, out, secrets.mask(err), seconds)
    for line in result.stderr.splitlines():
        log.debug("  %s: %s", Path(args[0]).name, line)
    log.debug("exit %d after %.2fs", proc.returncode, seconds)
    if check and not result.ok:
        raise ToolError(f"{Path(args[0]).name} failed (exit {result.returncode})", why=result.tail(),
                        fix="See the tool output above; rerun with -v for the full log.")
    return result



def stop_all(grace: float = 3.0) -> int:
    """Stop every child tool still running (each in its own process group), from whichever thread started
    it: what cancellation does before the temporary files holding secrets are removed. Returns how many."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        processes.stop_group(proc, grace)
    return len(live)
