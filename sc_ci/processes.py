"""Child process lifetime: stop a whole process group, tie a server to its parent, stop leftovers at exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

Readiness = Literal["ready", "exited", "port-taken", "timeout"]


def stop_group(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after `grace` seconds; reap it either way."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def die_with_parent(argv: Sequence[str]) -> list[str]:
    """argv wrapped in `setpriv --pdeathsig KILL` where available: the kernel kills the server if the
    thread that started it dies, even by SIGKILL (start servers from the main thread)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else list(argv)


class Stoppable(Protocol):
    def stop(self) -> None: ...


class Tracker:
    """Servers still running at interpreter exit are stopped (atexit registered on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[Stoppable] = set()
        self._registered = False

    def add(self, item: Stoppable) -> None:
        with self._lock:
            self._live.add(item)
            if not self._registered:
                atexit.register(self.stop_all)
                self._registered = True

    def discard(self, item: Stoppable) -> None:
        with self._lock:
            self._live.discard(item)

    def stop_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for item in live:
            item.stop()


def wait_ready(proc: subprocess.Popen[Any], ready: Callable[[], bool], timeout: float,
               log_tail: Callable[[], str], interval: float = 0.05) -> Readiness:
    """Poll `ready()` until it answers True, the server exits (port taken, or another reason) or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "port-taken" if "address already in use" in log_tail() else "exited"
        if ready():
            return "ready"
        time.sleep(interval)
    return "timeout"
