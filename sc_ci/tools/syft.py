"""syft: argv for `syft scan` with several outputs from one run, its environment, and failures classified."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from sc_ci import retry, runner
from sc_ci.errors import ScError, StepFailed, ToolError
from sc_ci.runner import Completed
from sc_ci.tools import versions

SCAN_TIMEOUT = 1800.0  # large images take minutes to pull and catalog
QUIET_ENV = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}


class Syft:
    """One syft binary of a known version."""

    def __init__(self, path: Path, version: str, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.version = version.lstrip("v")
        self._env = dict(runner.base_env(env))
        self._caller_env = dict(env or {})

    # ---- argv builders (pure) -------------------------------------------------
    def scan_argv(self, image: str, outputs: Sequence[tuple[str, Path]]) -> list[str]:
        """`syft scan registry:IMG@DIGEST -o fmt=path …`: every format from one catalog pass.
        `registry:` makes syft pull from the registry (never a local daemon)."""
        if not outputs:
            raise ValueError("syft scan needs at least one output")
        # not --quiet: it silences syft's error messages too, and failures are classified (and retried) by them
        argv = [str(self.path), "scan", f"registry:{image}"]
        for fmt, path in outputs:
            argv += ["-o", f"{fmt}={path}"]
        return argv

    def env_for(self, *, plain_http: bool, docker_config: str | None = None) -> dict[str, str]:
        """Base environment, no update check, plain HTTP only for a loopback/insecure registry, and the
        Docker config (registry auth) the run uses."""
        env = {**self._env, **QUIET_ENV}
        if plain_http:
            env["SYFT_REGISTRY_INSECURE_USE_HTTP"] = "true"
        if docker_config:
            env["DOCKER_CONFIG"] = docker_config
        elif "DOCKER_CONFIG" in self._caller_env:
            env["DOCKER_CONFIG"] = self._caller_env["DOCKER_CONFIG"]
        return env

    # ---- execution --------------------------------------------------------------
    def scan(self, image: str, outputs: Sequence[tuple[str, Path]], *, plain_http: bool,
             docker_config: str | None = None, timeout: float = SCAN_TIMEOUT, tmpdir: Path | None = None) -> Completed:
        """Run one scan writing every output; transient registry failures are retried. `tmpdir` becomes
        syft's TMPDIR (where stereoscope unpacks layers): inside a directory of ours, a syft that is killed
        (cancellation, a timeout) leaves nothing behind once that directory is removed."""
        argv, env = self.scan_argv(image, outputs), self.env_for(plain_http=plain_http, docker_config=docker_config)
        if tmpdir is not None:
            env["TMPDIR"] = str(tmpdir)
        result = retry.call(lambda: _transient_or(runner.run(argv, env=env, timeout=timeout)))
        if not result.ok:
            raise classify(result, image)
        missing = [str(p) for _, p in outputs if not p.is_file()]
        if missing:
            raise ToolError(f"syft exited 0 for {image} but wrote no {', '.join(missing)}", why=result.tail(),
                            fix="Rerun with -v to see syft's output; check the disk has space.")
        return result


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # syft colours its log lines even without a terminal


def _transient_or(result: Completed) -> Completed:
    if not result.ok and retry.is_transient_text(result.stderr) and not _is_auth(result.stderr):
        raise retry.TransientError(result.tail(3))
    return result


def _is_auth(stderr: str) -> bool:
    return any(s in stderr for s in ("UNAUTHORIZED", "DENIED", "401 Unauthorized", "403 Forbidden"))


def classify(result: Completed, image: str) -> ScError:
    """Turn a failed scan into what the user can act on."""
    err = result.stderr
    tail = "\n".join(line for line in _ANSI.sub("", result.tail(6)).splitlines() if line.strip())
    if _is_auth(err):
        return StepFailed(f"syft could not pull {image}: the registry denied access", why=tail,
                          fix="Log in to the registry (docker login / DOCKER_CONFIG) or set SC_CI_REGISTRY_USERNAME "
                              "and SC_CI_REGISTRY_PASSWORD; generating an SBOM needs pull access.")
    if "no such host" in err:
        return StepFailed(f"syft could not pull {image}: the registry host name does not resolve", why=tail,
                          fix="Check the registry host in the image reference (a DNS 'no such host' is not retried: "
                              "the name does not exist for this runner's resolver).")
    if retry.is_transient_text(err):
        return StepFailed(f"syft could not pull {image}: the registry could not be reached", why=tail,
                          fix="Transient failures (connection refused or reset, timeouts, 429, 5xx) were retried "
                              "with backoff for the retry budget and kept failing: check the registry is up and "
                              "reachable from the runner (proxy: HTTPS_PROXY / NO_PROXY), then rerun. "
                              "See docs/reliability.md")
    if "MANIFEST_UNKNOWN" in err or "NAME_UNKNOWN" in err or "not found" in err.lower():
        return StepFailed(f"syft could not find {image} in the registry", why=tail,
                          fix="Check the image reference and that it was pushed.")
    if "server gave HTTP response to HTTPS client" in err:
        return StepFailed(f"syft could not pull {image}: the registry speaks plain HTTP", why=tail,
                          fix="sc-ci uses plain HTTP only for loopback registries (127.0.0.1, localhost); serve "
                              "the registry over HTTPS.")
    if "no space left" in err.lower():
        return ToolError(f"syft ran out of disk space scanning {image}", why=tail,
                         fix="Free space in TMPDIR (syft unpacks the image layers there) or point TMPDIR at a "
                             "larger disk.")
    return ToolError(f"syft failed for {image} (exit {result.returncode})", why=tail,
                     fix="Rerun with -v to see syft's full output.")


def find(env: Mapping[str, str]) -> Syft:
    """The pinned syft, checked against the minimum version (ToolError with the fix otherwise)."""
    found = versions.require("syft", env)
    return Syft(found.path, found.version or "", env)
