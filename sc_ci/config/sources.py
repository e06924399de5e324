"""The non-YAML sources: flags, `SC_CI_*` environment, GitHub action inputs (`INPUT_*`) and runtime knobs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from sc_ci.config.diagnose import FieldKind, Loc, canonical, dotted
from sc_ci.config.model import SHORTHANDS, SecurityConfig, tool_dicts
from sc_ci.config.yamlio import YamlDoc, parse_yaml
from sc_ci.errors import ConfigError
from sc_ci.sanitize import one_line, quoted

OriginKind = Literal["flag", "env", "input", "yaml", "default"]
ENV_PREFIX = "SC_CI_"
SECURITY_ENV_PREFIX = "SC_CI_SECURITY__"
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


@dataclass(frozen=True)
class Origin:
    """Who set a value: kind, a human `where`, and how to set it there instead (`{value}` template)."""

    kind: OriginKind
    where: str
    setting: str | None = None
    doc: YamlDoc | None = None  # for YAML: the file, to point at line:column
    at: Loc = ()  # for YAML: where this layer's block sits inside the file

    def describe(self, loc: Loc = ()) -> str:
        if self.doc is not None:
            return f"set in {self.doc.where((*self.at, *loc))}"
        return f"set by {self.where}"


@dataclass
class Layer:
    """One source's leaf values and who set each, keyed by schema location (a list counts as one leaf)."""

    kind: OriginKind
    entries: dict[Loc, tuple[object, Origin]] = field(default_factory=dict)

    def set(self, segments: list[str], value: object, origin: Origin) -> None:
        """Set a value named by loose key segments (checked against the schema, coerced to its type)."""
        loc, kind = canonical(SecurityConfig, segments, where=origin.where)
        loc, value = coerce(loc, kind, value, origin)
        self.entries[loc] = (value, origin)


# ---------------------------------------------------------------------------------------------- values


def parse_bool(value: object, *, loc: Loc, origin: Origin) -> bool:
    """true/false/yes/no/1/0 in any case; anything else is a ConfigError naming the key and the source."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    fix = origin.setting.format(value="true") if origin.setting else "true"
    raise ConfigError(
        f"{quoted(value, 60)} is not a boolean",
        path=dotted(loc),
        why=origin.describe(),
        fix=f"use true or false (yes/no and 1/0 also work): {fix}",
    )


def parse_list(value: str) -> list[str]:
    """A newline- or comma-separated list; blanks dropped."""
    return [item.strip() for item in re.split(r"[,\n]", value) if item.strip()]


def _tools(value: object, *, loc: Loc, origin: Origin) -> object:
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:  # the bounded loader: a flag or variable is as untrusted as a file
            value = parse_yaml(value, Path(origin.where)).data
        except ConfigError as exc:
            raise ConfigError(
                "not a valid list",
                path=dotted(loc),
                why=f"{origin.describe()}: {one_line(exc.what)}",
                fix="grype,trivy",
            ) from exc
    return tool_dicts(parse_list(value) if isinstance(value, str) else value)


def coerce(loc: Loc, kind: FieldKind, value: object, origin: Origin) -> tuple[Loc, object]:
    """Turn a flag/env/input value into the type the schema expects at `loc` (shorthands expanded)."""
    if kind == "section" and loc in SHORTHANDS:
        loc, kind = (*loc, SHORTHANDS[loc]), "bool"
    if kind == "bool":
        return loc, parse_bool(value, loc=loc, origin=origin)
    if kind == "list" and loc[-1] != "tools":
        return loc, parse_list(value) if isinstance(value, str) else value
    if kind == "list":
        return loc, _tools(value, loc=loc, origin=origin)
    if kind == "section":
        raise ConfigError(
            f"{dotted(loc)} is a section, not a value",
            path=dotted(loc),
            why=origin.describe(),
            fix=f"set one of its keys, e.g. {dotted((*loc, 'enabled'))}",
        )
    return loc, value.strip() if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------------- flags & env


def flag_layer(flags: Mapping[str, object]) -> Layer:
    """`{"signing.enabled": True, ...}` (dotted camelCase, optional `security.` prefix); None = not given."""
    layer = Layer("flag")
    for key, value in flags.items():
        if value is None:
            continue
        segments = key.split(".")
        if segments[0].lower() == "security":
            segments = segments[1:]
        origin = Origin("flag", f"flag {key}", setting=f"the flag for {key} → {{value}}")
        layer.set(segments, value, origin)
    return layer


def env_layer(env: Mapping[str, str]) -> Layer:
    """`SC_CI_SECURITY__SIGNING__ENABLED=true`: `__` nests, keys match case-, `_`- and `-`-insensitively."""
    layer = Layer("env")
    for name in sorted(env):
        if not name.upper().startswith(SECURITY_ENV_PREFIX) or not env[name].strip():
            continue
        origin = Origin("env", f"environment variable {name}", setting=f"{name}={{value}}")
        layer.set(name[len(SECURITY_ENV_PREFIX) :].split("__"), env[name], origin)
    return layer


# ---------------------------------------------------------------------------------------------- action inputs


@dataclass(frozen=True)
class ActionInput:
    """One input of the GitHub container action; `target` is a config path or `runtime.<field>`."""

    name: str
    target: str
    description: str

    @property
    def env_var(self) -> str:
        return f"INPUT_{self.name.upper()}"


ACTION_INPUTS: tuple[ActionInput, ...] = (
    ActionInput("sign", "security.signing.enabled", "Sign each image with cosign (true/false)."),
    ActionInput("keyless", "security.signing.keyless", "Keyless (OIDC) signing; false needs private-key."),
    ActionInput("private-key", "security.signing.privateKey", "Key: file path, cosign URI or ${secret:NAME}."),
    ActionInput("public-key", "security.signing.publicKey", "Public key for verification (path, URI, ref)."),
    ActionInput("verify", "security.signing.verify.enabled", "Verify signatures after signing (true/false)."),
    ActionInput("storage", "security.signing.storage", "Where signatures go: legacy (.sig tags), referrers, both."),
    ActionInput("oidc-issuer", "security.signing.verify.oidcIssuer", "Expected OIDC issuer when verifying."),
    ActionInput("identity-regexp", "security.signing.verify.identityRegexp", "Expected signer identity regexp."),
    ActionInput("sbom", "security.sbom.enabled", "Generate and attach an SBOM (true/false)."),
    ActionInput("sbom-format", "security.sbom.format", "cyclonedx-json, spdx-json or syft-json."),
    ActionInput("provenance", "security.provenance.enabled", "Attach SLSA v1 provenance (true/false)."),
    ActionInput("scan", "security.scan.enabled", "Scan for vulnerabilities (true/false)."),
    ActionInput("scan-tools", "security.scan.tools", "Scanners, comma separated: grype,trivy."),
    ActionInput("fail-on", "security.scan.failOn", "Fail on this severity or worse, for every scanner."),
    ActionInput("fail-open", "security.policy.failOpen", "Report failed steps without failing the job."),
    ActionInput("config", "runtime.config", "Path to a security YAML or a Simple Container client.yaml."),
    ActionInput("images", "runtime.images", "Image references, newline or comma separated."),
    ActionInput("stack", "runtime.stack", "Simple Container stack (.sc/stacks/<stack>/client.yaml)."),
    ActionInput("environment", "runtime.environment", "Simple Container environment (stacks.<env>)."),
    ActionInput("registry", "runtime.registry", "Registry prefix for images built from the project."),
    ActionInput("version", "runtime.version", "Tag for images built from the project."),
)


def input_value(env: Mapping[str, str], spec: ActionInput) -> str | None:
    """An input's value (INPUT_NAME-WITH-HYPHENS, or the `_` spelling); empty means not set."""
    for var in (spec.env_var, spec.env_var.replace("-", "_")):
        value = env.get(var, "")
        if value.strip():
            return value
    return None


def input_layer(env: Mapping[str, str]) -> Layer:
    layer = Layer("input")
    for spec in ACTION_INPUTS:
        value = input_value(env, spec)
        if value is None or not spec.target.startswith("security."):
            continue
        origin = Origin("input", f"action input '{spec.name}' ({spec.env_var})", f"with:\n  {spec.name}: {{value}}")
        layer.set(spec.target.split(".")[1:], value, origin)
    return layer


# ---------------------------------------------------------------------------------------------- runtime knobs


def _bool_value(value: object) -> object:
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in _TRUE | _FALSE:
            raise ValueError(f"{quoted(value, 60)} is not a boolean (true/false, yes/no, 1/0)")
        return text in _TRUE
    return value


def _image_list(value: object) -> object:
    return parse_list(value) if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class RuntimeSettings(BaseSettings):
    """How this run behaves (not what the policy says): `SC_CI_<FIELD>`, some also as action inputs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False, frozen=True, extra="forbid")

    config: Path | None = None
    stack: str | None = None
    environment: str | None = None
    secrets_file: Path | None = None
    workers: int = Field(default=4, ge=1, le=64)
    log_level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = "info"
    dry_run: Annotated[bool, BeforeValidator(_bool_value)] = False
    registry: str | None = None
    version: str | None = None
    images: Annotated[tuple[str, ...], BeforeValidator(_image_list)] = ()
    cache_dir: Path | None = None  # digest-keyed cache (SBOMs, scan results); keep it with the CI's cache
    output_dir: Path | None = None  # where release.json and reports go
    shard: str | None = None  # K/N: this job's share of the images
    tag_pattern: str = "v{version}"  # the git tag a successful release creates

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Never read os.environ: the environment is always passed in (see `from_env`)."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str], overrides: Mapping[str, object] | None = None) -> RuntimeSettings:
        """Layer action inputs < `SC_CI_*` < `overrides` (flags and arguments); empty values mean unset."""
        runtime_inputs = {s.env_var for s in ACTION_INPUTS if s.target.startswith("runtime.")}
        inputs = {k: v for k, v in env.items() if k.upper() in runtime_inputs}
        layers: list[tuple[str, Mapping[str, object]]] = [
            ("INPUT_", _MappingSource(cls, inputs, "INPUT_")()),
            (ENV_PREFIX, _MappingSource(cls, env, ENV_PREFIX)()),
            ("", {k: v for k, v in (overrides or {}).items() if v is not None}),
        ]
        merged: dict[str, object] = {}
        where: dict[str, str] = {}
        for prefix, values in layers:
            for key, value in values.items():
                merged[key] = value
                where[key] = f"{prefix}{key.upper()}" if prefix else f"argument {key}"
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            raise _runtime_error(exc, where) from exc


def runtime_field(key: str) -> str | None:
    """The RuntimeSettings field a flag key names (`dryRun`, `dry-run`, `dry_run` → dry_run), if any."""
    squashed = re.sub(r"[_\-]", "", key).lower()
    return next((f for f in RuntimeSettings.model_fields if f.replace("_", "") == squashed), None)


def _runtime_error(exc: ValidationError, where: dict[str, str]) -> ConfigError:
    problems = []
    for err in exc.errors(include_url=False):
        key = str(err["loc"][0]) if err["loc"] else ""
        problems.append(
            (
                one_line(where.get(key, f"SC_CI_{key.upper()}"), 80),
                one_line(err["msg"].removeprefix("Value error, "), 200),
            )
        )
    names = ", ".join(dict.fromkeys(name for name, _ in problems))
    if len(problems) == 1:
        return ConfigError(problems[0][1], path=problems[0][0], fix=f"correct or unset {names}")
    error = ConfigError(
        f"{len(problems)} invalid runtime settings",
        why="\n".join(f"- {name}: {msg}" for name, msg in problems),
        fix=f"correct or unset {names}",
    )
    error.path = problems[0][0]
    return error


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' env source over a given mapping (prefix and case handling), not os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str], prefix: str) -> None:
        self._mapping = env
        super().__init__(settings_cls, case_sensitive=False, env_prefix=prefix)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._mapping.items() if v.strip()}

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool) -> Any:
        return value  # no JSON decoding: list values are newline/comma separated
