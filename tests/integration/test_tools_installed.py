"""Every required pinned tool is installed, is the pinned version, and passes the version policy."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from sc_ci.tools import locate
from sc_ci.tools import pins as pins_mod
from sc_ci.tools.semver import same_version
from sc_ci.tools.versions import detect

PINS = pins_mod.load()

pytestmark = pytest.mark.integration


def _missing(what: str) -> NoReturn:
    """In CI a missing tool is a failure, never a skip."""
    message = f"{what}: run make tools (python -m sc_ci.tools.installer)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("name", [p.name for p in PINS.required()])
def test_required_tool_is_installed_at_the_pinned_version(name: str) -> None:
    pin = PINS.get(name)
    found = locate.locate(name)
    if found is None:
        _missing(f"{name} {pin.version} is not installed")
    result = detect(name, found.path)
    assert result.version is not None, result.fix
    assert same_version(result.version, pin.version), (
        f"{found.path} ({found.source}) is {name} {result.version}, pinned {pin.version}; "
        f"run `python -m sc_ci.tools.installer --tool {name}` or fix {pin.env_var}")
    assert result.meets_minimum, result.fix
    assert not result.forbidden, result.fix
    assert result.ok


@pytest.mark.parametrize("name", [p.name for p in PINS.optional()])
def test_optional_tool_when_installed(name: str) -> None:
    pin = PINS.get(name)
    path = locate.find_version(pin.cache, pin.version)
    if path is None:
        pytest.skip(f"optional {name} {pin.version} not installed (make tools with --with-optional)")
    result = detect(name, path)
    assert result.version is not None, result.fix
    assert same_version(result.version, pin.version)
    assert result.ok, result.fix


@pytest.mark.parametrize("name", [p.name for p in PINS.required()])
def test_cached_binary_matches_its_install_marker(name: str) -> None:
    """A cache hit is only trusted with its marker; the marker's hash is the binary's hash."""
    from sc_ci.tools.installer import verify_cached

    pin = PINS.get(name)
    if locate.cached(pin, locate.tools_dir()) is None:
        pytest.skip(f"{name} is not in the cache ({locate.tools_dir()})")
    assert verify_cached(pin, locate.tools_dir())
