"""Loads the configuration: flags > SC_CI_* > action inputs > YAML > defaults, merged per key."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from sc_ci.config.diagnose import Loc, dotted, field_at, issues_from, model_at, to_error
from sc_ci.config.model import SHORTHANDS, SecurityConfig, is_severity, tool_dicts
from sc_ci.config.project import ImageNaming, ProjectConfig, SecurityBlock, read_file, read_stack
from sc_ci.config.refs import KeyFile, KeyUri, SecretRef
from sc_ci.config.sources import (
    Layer,
    Origin,
    OriginKind,
    RuntimeSettings,
    env_layer,
    flag_layer,
    input_layer,
    runtime_field,
)
from sc_ci.errors import ConfigError
from sc_ci.secrets import Secret

_Ranked = tuple[int, Origin]


@dataclass(frozen=True)
class LoadedConfig:
    """The validated policy, the images to work on, the runtime knobs, and who set each key."""

    security: SecurityConfig
    images: tuple[str, ...]
    runtime: RuntimeSettings
    project_root: Path
    origins: Mapping[Loc, _Ranked] = field(repr=False)
    env: Mapping[str, str] = field(repr=False)
    upstream: tuple[str, ...] = ()  # project images it does not build (compose services without build)

    def origin(self, path: str) -> OriginKind:
        """Which source set `path` ("signing.enabled" or "security.signing.enabled"): flag, env, input, yaml
        or default. For a section, the highest-precedence source among its keys. KeyError if no such key."""
        loc = parse_path(path)
        found = _find(self.origins, loc)
        if found is not None:
            return found[1][1].kind
        if loc and model_at(SecurityConfig, loc) is None and field_at(SecurityConfig, loc) is None:
            raise KeyError(f"no configuration key {dotted(loc)}")
        return "default"

    def describe_origin(self, path: str) -> str:
        """Human form of the origin: "set in client.yaml:12:7", "set by environment variable …", "default"."""
        loc = parse_path(path)
        found = _find(self.origins, loc)
        return found[1][1].describe(loc) if found else "default"

    def secret(self, path: str) -> Secret:
        """The secret value of a key field (`${secret:…}`/`${env:…}`, `env://VAR`, or a file's contents)."""
        loc = parse_path(path)
        value = _value_at(self.security, loc)
        where = dotted(loc)
        if isinstance(value, SecretRef):
            return value.resolve(self.env, self.runtime.secrets_file, path=where)
        if isinstance(value, KeyUri) and value.scheme == "env":
            return SecretRef("env", value.uri.split("://", 1)[1]).resolve(self.env, path=where)
        if isinstance(value, KeyFile):
            return _read_key_file(value, self.project_root, where)
        raise ConfigError(
            f"{value if value is not None else 'nothing'} is not a value this engine can read",
            path=where,
            why="unset" if value is None else "KMS and Kubernetes keys are read by cosign itself",
            fix="give a ${secret:NAME} / ${env:NAME} reference, env://VAR, or a file path",
        )

    def check_secrets(self) -> None:
        """Resolve every reference an enabled feature will need; one ConfigError listing all that fail."""
        sec = self.security
        paths = []
        if sec.signing.enabled or sec.sbom.enabled or sec.provenance.enabled:
            paths += ["signing.privateKey", "signing.publicKey"]
        if sec.scan.enabled and sec.scan.upload.defectdojo.enabled:
            paths.append("scan.upload.defectdojo.apiKey")
        errors = []
        for path in paths:
            value = _value_at(sec, parse_path(path))
            if isinstance(value, SecretRef):
                try:
                    value.resolve(self.env, self.runtime.secrets_file, path=dotted(parse_path(path)))
                except ConfigError as exc:
                    errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ConfigError(
                f"{len(errors)} secret references cannot be resolved",
                path=errors[0].path,
                why="\n".join(f"- {e.what}: {e.why}" for e in errors),
                fix=errors[0].fix,
            )


def load(
    *,
    env: Mapping[str, str],
    flags: Mapping[str, object] | None = None,
    config_path: str | Path | None = None,
    stack: str | None = None,
    environment: str | None = None,
    project_root: Path | None = None,
) -> LoadedConfig:
    """Read every source, merge per key by precedence, validate once. Raises ConfigError (exit code 2)."""
    security_flags, runtime_flags = _split_flags(flags or {})
    arguments = {"config": config_path, "stack": stack, "environment": environment}
    runtime = RuntimeSettings.from_env(env, {**runtime_flags, **{k: v for k, v in arguments.items() if v is not None}})
    root = Path(project_root) if project_root is not None else Path.cwd()
    runtime = _rooted(runtime, root)
    project = _read_yaml(runtime, root, env)
    layers = [
        *(yaml_layer(b) for b in project.blocks),
        input_layer(env),
        env_layer(env),
        flag_layer(security_flags),
    ]
    values, origins = merge(layers)
    _push_fail_on(values, origins)
    data = unflatten(values)
    try:
        security = SecurityConfig.model_validate(data)
    except ValidationError as exc:
        raise to_error(issues_from(exc, SecurityConfig, data, _Lookup(origins))) from exc
    images = runtime.images or project.images
    upstream = () if runtime.images else tuple(i.ref for i in project.project_images if not i.built)
    return LoadedConfig(security, images, runtime, root, origins, env, upstream)


def _split_flags(flags: Mapping[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    security: dict[str, object] = {}
    runtime: dict[str, object] = {}
    for key, value in flags.items():
        name = runtime_field(key)
        if name is not None and "." not in key:
            runtime[name] = value
        else:
            security[key] = value
    return security, runtime


def _rooted(runtime: RuntimeSettings, root: Path) -> RuntimeSettings:
    """Relative config and secrets-file paths are relative to the project root."""
    update = {
        name: root / path
        for name, path in (("config", runtime.config), ("secrets_file", runtime.secrets_file))
        if path is not None and not path.is_absolute()
    }
    return runtime.model_copy(update=update) if update else runtime


def _read_yaml(runtime: RuntimeSettings, root: Path, env: Mapping[str, str]) -> ProjectConfig:
    naming = ImageNaming(runtime.registry, runtime.version, env, wanted=not runtime.images)
    if runtime.config is not None:
        return read_file(runtime.config, root=root, stack=runtime.stack, environment=runtime.environment, naming=naming)
    if runtime.stack is not None:
        return read_stack(root, runtime.stack, runtime.environment, naming)
    return ProjectConfig()


# ---------------------------------------------------------------------------------------------- merging


def yaml_layer(block: SecurityBlock) -> Layer:
    """A YAML `security:` block as leaves; `attach: true` shorthand expanded, empty sections dropped."""
    layer = Layer("yaml")
    origin = Origin("yaml", str(block.doc.path), doc=block.doc, at=block.at)
    _flatten(block.data, (), layer, origin)
    return layer


def _flatten(
    data: Mapping[str, object] | Mapping[object, object],
    loc: Loc,
    layer: Layer,
    origin: Origin,
) -> None:
    for key, value in data.items():
        child = (*loc, str(key))
        if child in SHORTHANDS and isinstance(value, bool):
            layer.entries[(*child, SHORTHANDS[child])] = (value, origin)
        elif isinstance(value, dict):
            _flatten(value, child, layer, origin)
        elif value is None and model_at(SecurityConfig, child) is not None:
            continue  # `signing:` with nothing under it means "defaults"
        else:
            layer.entries[child] = (value, origin)


def merge(layers: Sequence[Layer]) -> tuple[dict[Loc, object], dict[Loc, _Ranked]]:
    """Later layers win per leaf; a leaf replaces any leaves above or below it (lists replace whole)."""
    values: dict[Loc, object] = {}
    origins: dict[Loc, _Ranked] = {}
    for rank, layer in enumerate(layers):
        for loc, (value, origin) in layer.entries.items():
            for clash in [k for k in values if k[: len(loc)] == loc or loc[: len(k)] == k]:
                del values[clash], origins[clash]
            values[loc] = value
            origins[loc] = (rank, origin)
    return values, origins


def unflatten(values: Mapping[Loc, object]) -> dict[str, object]:
    root: dict[str, object] = {}
    for loc, value in values.items():
        node = root
        for part in loc[:-1]:
            child = node.get(str(part))
            if not isinstance(child, dict):  # merge() already removed scalar/section clashes
                child = node[str(part)] = {}
            node = child
        node[str(loc[-1])] = value
    return root


def _push_fail_on(values: dict[Loc, object], origins: dict[Loc, _Ranked]) -> None:
    """`scan.failOn` (e.g. the `fail-on` input) overrides per-tool thresholds set by lower-precedence
    sources, and fills in tools without one; each tool's threshold is recorded as coming from it."""
    fail_on, tools = ("scan", "failOn"), ("scan", "tools")
    if not is_severity(values.get(fail_on)):
        return  # nothing valid to push; an invalid value is reported once, at scan.failOn
    listed = tool_dicts(values.get(tools, ["grype"]))
    if not isinstance(listed, list):
        return
    outranks = tools not in origins or origins[fail_on][0] > origins[tools][0]
    for index, tool in enumerate(listed):
        if isinstance(tool, dict) and (outranks or tool.get("failOn") in (None, "")):
            origins[(*tools, index, "failOn")] = origins[fail_on]
    if outranks and tools in values:
        values[tools] = [{**t, "failOn": values[fail_on]} if isinstance(t, dict) else t for t in listed]


def _find(origins: Mapping[Loc, _Ranked], loc: Loc) -> tuple[Loc, _Ranked] | None:
    """The highest-precedence leaf at, above (a list holding `loc`) or below `loc`."""
    hits = [(k, r) for k, r in origins.items() if k[: len(loc)] == loc or loc[: len(k)] == k]
    return max(hits, key=lambda hit: hit[1][0]) if hits else None


class _Lookup:
    """Origins for error messages (see diagnose.OriginLookup)."""

    def __init__(self, origins: Mapping[Loc, _Ranked]) -> None:
        self._origins = origins

    def where(self, loc: Loc) -> str:
        """Where `loc` was set; for a key nobody set, where its nearest configured section was set."""
        for depth in range(len(loc), 0, -1):
            found = _find(self._origins, loc[:depth])
            if found is not None:
                described = found[1][1].describe(loc[:depth])
                return described if depth == len(loc) else f"{dotted(loc[:depth])} {described}"
        return ""

    def setting(self, loc: Loc, value: object) -> str | None:
        found = _find(self._origins, loc)
        if found is None or found[1][1].setting is None:
            return None
        return found[1][1].setting.format(value=_as_text(value))


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value)
    return str(value)


# ----------------------------------------------------------------------------------------- paths & values


def parse_path(path: str) -> Loc:
    """`security.scan.tools[0].failOn` → ("scan", "tools", 0, "failOn"); `security.` is optional."""
    loc: list[str | int] = []
    for part in path.split("."):
        match = re.fullmatch(r"([^\[\]]+)((?:\[\d+\])*)", part)
        if not match:
            raise KeyError(f"malformed configuration path {path!r}")
        loc.append(match.group(1))
        loc.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return tuple(loc[1:] if loc[:1] == ["security"] else loc)


def _value_at(model: BaseModel, loc: Loc) -> object:
    node: object = model
    for part in loc:
        if isinstance(part, int) and isinstance(node, tuple):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, BaseModel):
            name = next((n for n, f in type(node).model_fields.items() if (f.alias or n) == part), None)
            if name is None:
                raise KeyError(f"no configuration key {dotted(loc)}")
            node = getattr(node, name)
        else:
            raise KeyError(f"no configuration key {dotted(loc)}")
    return node


def _read_key_file(key: KeyFile, root: Path, where: str) -> Secret:
    path = Path(key.path) if Path(key.path).is_absolute() else root / key.path
    try:
        return Secret(path.read_text(encoding="utf-8").strip(), name=where)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror or exc}",
            path=where,
            fix=f"create the file, or set {where} to a ${{secret:NAME}} reference",
        ) from exc
