"""Tool version detection: run `<tool> version` as JSON, parse it, and judge it against the pins."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sc_ci import runner as runner_mod
from sc_ci.errors import ToolError
from sc_ci.tools import locate
from sc_ci.tools import pins as pins_mod
from sc_ci.tools.pins import Pins, ToolPin
from sc_ci.tools.semver import compare_versions, is_version, normalize, parse_version, version_at_least

if TYPE_CHECKING:
    from sc_ci.runner import Completed

VERSION_TIMEOUT = 30.0

# `<binary> version` as JSON, per binary (cosign-v2 is still the `cosign` binary).
VERSION_ARGS: Mapping[str, tuple[str, ...]] = {
    "cosign": ("version", "--json"),
    "syft": ("version", "-o", "json"),
    "grype": ("version", "-o", "json"),
    "trivy": ("version", "-f", "json"),
    "fulcio": ("version", "--json"),
}
# The JSON key holding the version, per binary (first match wins).
_VERSION_KEYS: Mapping[str, tuple[str, ...]] = {
    "cosign": ("gitVersion", "GitVersion"),
    "syft": ("version", "Version"),
    "grype": ("version", "Version"),
    "trivy": ("Version", "version"),
}
# Text output fallback ("GitVersion:    v2.6.4", "Version:  1.51.0").
_TEXT_RE = re.compile(r"(?im)^\s*(?:git)?version:?\s+(v?\d+\.\d+[^\s]*)\s*$")
_NOT_PROVIDED = ("[not provided]", "devel", "unknown", "(devel)")

# Environment for version probes: nothing inherited but PATH and HOME; no update checks.
_QUIET_ENV = {
    "SYFT_CHECK_FOR_APP_UPDATE": "false",
    "GRYPE_CHECK_FOR_APP_UPDATE": "false",
    "TRIVY_SKIP_VERSION_CHECK": "true",
    "TRIVY_DISABLE_TELEMETRY": "true",
}


# --- version strings --------------------------------------------------------------------------------


def parse_output(binary: str, stdout: str) -> str | None:
    """The version a `<binary> version` command printed (JSON, or text as a fallback), without a
    leading "v"; None when it printed none (e.g. syft/grype built without -X main.version)."""
    keys = _VERSION_KEYS.get(binary, ("version", "Version", "gitVersion"))
    data = _first_json_object(stdout)
    if data is not None:
        for key in keys:
            value = data.get(key)
            if isinstance(value, str):
                return _clean(value)
        return None
    match = _TEXT_RE.search(stdout)
    return _clean(match.group(1)) if match else None


def _clean(value: str) -> str | None:
    value = value.strip()
    if not value or value.lower() in _NOT_PROVIDED or not is_version(value):
        return None
    return normalize(value)


def _first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in text (tools may print log lines before it)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


# --- judging a version against the pins (pure) -----------------------------------------------------


@dataclass(frozen=True)
class ToolVersion:
    """What `<tool> version` reported and whether the engine may use it."""

    name: str
    path: Path
    version: str | None  # without a leading "v"; None when it could not be read
    major: int | None
    meets_minimum: bool
    forbidden: bool
    warning: str | None = None
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.meets_minimum and not self.forbidden


def evaluate(pin: ToolPin, path: Path, version: str | None, *, why: str = "") -> ToolVersion:
    """Judge a reported version against a pin: minimum, accepted older major (warning), forbidden."""
    reinstall = f"python -m sc_ci.tools.installer --tool {pin.name} --force"
    if version is None or not is_version(version):
        detail = f" ({why})" if why else ""
        return ToolVersion(pin.name, path, None, None, False, False, None,
                           f"Could not read the version of {path}{detail}. Reinstall the pinned "
                           f"{pin.binary} {pin.version}: `make tools` (or `{reinstall}`), or point "
                           f"{pin.env_var} at a working {pin.binary}.")
    version = normalize(version)
    major = parse_version(version).major
    bad = pin.forbidden_entry(version)
    if bad is not None:
        return ToolVersion(pin.name, path, version, major, version_at_least(version, pin.minimum), True,
                           None,
                           f"{pin.binary} {version} is forbidden: {bad.advisory} ({bad.reason}). Remove it "
                           f"and install the pinned {pin.version}: `make tools` (or `{reinstall}`).")
    if version_at_least(version, pin.minimum):
        return ToolVersion(pin.name, path, version, major, True, False)
    compat = pin.compat
    if (compat is not None and version_at_least(version, compat.minimum)
            and compare_versions(version, compat.below) < 0):
        return ToolVersion(pin.name, path, version, major, True, False, compat.warning)
    oldest = pin.minimum
    if compat is not None:
        oldest += f" (or {compat.minimum} for v{parse_version(compat.minimum).major})"
    return ToolVersion(pin.name, path, version, major, False, False, None,
                       f"{pin.binary} {version} is older than the minimum {oldest}. Install the pinned "
                       f"{pin.version}: `make tools` (or `{reinstall}`), or point {pin.env_var} at a "
                       "newer one.")


# --- running the tool --------------------------------------------------------------------------------


class Runner(Protocol):
    """The shape of sc_ci.runner.run (argv list, explicit env, timeout) that detect() needs."""

    def __call__(self, argv: Sequence[str | Path], *, env: Mapping[str, str], timeout: float) -> Completed:
        ...


def version_argv(binary: str, path: Path) -> list[str]:
    args = VERSION_ARGS.get(binary)
    if args is None:
        raise ValueError(f"no version command known for {binary!r}")
    return [str(path), *args]


def probe_env(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The minimal environment for a version probe: PATH and HOME, update checks off."""
    src = os.environ if source is None else source
    env = {k: src[k] for k in ("PATH", "HOME") if k in src}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(_QUIET_ENV)
    return env


def detect(name: str, path: Path, runner: Runner | None = None, *, pins: Pins | None = None,
           env: Mapping[str, str] | None = None) -> ToolVersion:
    """Run `<path> version` (JSON) for the pinned tool `name` and judge what it reports."""
    pin = (pins or pins_mod.load()).get(name)
    if runner is None:
        runner = runner_mod.run
    argv = version_argv(pin.binary, path)
    try:
        done = runner(argv, env=probe_env(env), timeout=VERSION_TIMEOUT)
    except ToolError as exc:
        return evaluate(pin, path, None, why=exc.what)
    except OSError as exc:
        return evaluate(pin, path, None, why=f"cannot run it: {exc.strerror or exc}")
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [""])[-1]
        why = f"`{' '.join(argv[1:])}` exited {done.returncode}: {tail}".strip()
        return evaluate(pin, path, None, why=why)
    version = parse_output(pin.binary, done.stdout)
    why = ""
    if version is None:
        why = ("it reports no version (built without -ldflags -X main.version)"
               if "[not provided]" in done.stdout else "unrecognised `version` output")
    return evaluate(pin, path, version, why=why)


def require(name: str, env: Mapping[str, str]) -> ToolVersion:
    """The pinned `name` found and judged usable (path and version), or a ToolError with the fix: what every
    tool module's `find` and the engine's tool lookup share."""
    path = locate.find(name, env=env)
    if path is None:
        raise ToolError(f"{name} is not installed",
                        fix="Install the pinned tools: `make tools` (or `sc-ci tools install`), use the "
                            f"sc-security-action container image, or set SC_CI_{name.upper()}_PATH.")
    found = detect(name, path, env=env)
    if not found.ok or found.version is None:
        raise ToolError(f"{name} at {path} cannot be used", fix=found.fix or "Reinstall it: make tools")
    return found
