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
    # signing
    ActionInput("sign", "security.signing.enabled",
                "Sign each image by digest with cosign (true/false). Default: `false`."),
    ActionInput("keyless", "security.signing.keyless",
                "Keyless (OIDC) signing; needs `permissions: id-token: write`. Default: `true`, or `false` when "
                "private-key is set."),
    ActionInput("private-key", "security.signing.privateKey",
                "Cosign private key: PEM contents (pass a secret), a file path, env://VAR, ${secret:NAME} or a KMS "
                "URI (awskms://, gcpkms://, azurekms://, hashivault://, k8s://). Default: none (keyless)."),
    ActionInput("public-key", "security.signing.publicKey",
                "Public key to verify with: PEM contents, a file path, env://VAR, an https:// URL or a KMS URI. "
                "Default: none (derived from private-key, or the keyless identity)."),
    ActionInput("verify", "security.signing.verify.enabled",
                "Verify each signature right after signing (true/false). Default: `true`."),
    ActionInput("storage", "security.signing.storage",
                "Where signatures and attestations go: legacy (sha256-<digest>.sig / .att tags every cosign reads), "
                "referrers (Sigstore bundles as OCI 1.1 referrers) or both. Default: `legacy`."),
    ActionInput("transparency-log", "security.signing.sigstore.transparencyLog",
                "Upload signatures to the Rekor transparency log (true/false); false for a private or offline "
                "Sigstore. Default: `true`."),
    ActionInput("oidc-issuer", "security.signing.verify.oidcIssuer",
                "Expected OIDC issuer for keyless verification. Default: none (detected from the CI)."),
    ActionInput("identity-regexp", "security.signing.verify.identityRegexp",
                "Expected certificate identity (regular expression) for keyless verification. Default: none "
                "(detected from the CI)."),
    # sbom
    ActionInput("sbom", "security.sbom.enabled", "Generate an SBOM and attach it as a signed attestation (true/false). "
                "Default: `false`."),
    ActionInput("sbom-format", "security.sbom.format",
                "SBOM format: cyclonedx-json, spdx-json or syft-json. Default: `cyclonedx-json`."),
    ActionInput("sbom-extra-formats", "security.sbom.extraFormats",
                "More SBOM formats from the same syft run, comma separated (e.g. spdx-json). Default: none."),
    ActionInput("sbom-output", "security.sbom.output.local",
                "Also save the SBOM files here (a directory ends in /), e.g. sbom/. Default: none."),
    # provenance
    ActionInput("provenance", "security.provenance.enabled",
                "Attach signed SLSA v1 provenance (true/false). Default: `false`."),
    # scan
    ActionInput("scan", "security.scan.enabled", "Scan each image for vulnerabilities (true/false). Default: `false`."),
    ActionInput("scan-tools", "security.scan.tools", "Scanners, comma separated: grype, trivy. Default: `grype`."),
    ActionInput("fail-on", "security.scan.failOn",
                "Fail when a scanner finds a vulnerability of this severity or worse (critical, high, medium, low), "
                "for every scanner. Default: none (report only)."),
    ActionInput("only-fixed", "security.scan.onlyFixed",
                "Only findings that have a fix count for fail-on (true/false). Default: `false`."),
    ActionInput("ignore-file", "security.scan.ignoreFile",
                "A YAML or JSON file of accepted findings (id, reason, expires, package). Default: none."),
    ActionInput("vex", "security.scan.vex",
                "An OpenVEX document; not_affected and fixed statements suppress findings. Default: none."),
    ActionInput("defectdojo", "security.scan.upload.defectdojo.enabled",
                "Upload the scan results to DefectDojo (true/false); needs defectdojo-url and defectdojo-api-key. "
                "Default: `false`."),
    ActionInput("defectdojo-url", "security.scan.upload.defectdojo.url",
                "DefectDojo base URL, e.g. https://defectdojo.example.com. Default: none."),
    ActionInput("defectdojo-api-key", "security.scan.upload.defectdojo.apiKey",
                "DefectDojo API v2 key (pass a secret; it is masked and never written to a file). Default: none."),
    ActionInput("defectdojo-product", "security.scan.upload.defectdojo.productName",
                "DefectDojo product name. Default: the stack, else the first image's repository."),
    ActionInput("defectdojo-engagement", "security.scan.upload.defectdojo.engagementName",
                "DefectDojo engagement name. Default: sc-ci <version> (or sc-ci)."),
    # policy
    ActionInput("fail-open", "security.policy.failOpen",
                "Report failed steps as warnings without failing the job (true/false); a tripped fail-on gate always "
                "fails. Default: `true`."),
    ActionInput("fail-fast", "security.policy.failFast",
                "After the first failure that fails the job, start no further step (true/false). Default: `false`."),
    # runtime
    ActionInput("config", "runtime.config",
                "Path to a YAML file with a `security:` block, or a Simple Container client.yaml. Default: none."),
    ActionInput("images", "runtime.images",
                "Image references, newline or comma separated; tags are resolved to digests once. Default: none."),
    ActionInput("stack", "runtime.stack",
                "Simple Container stack (reads .sc/stacks/<stack>/client.yaml). Default: none."),
    ActionInput("environment", "runtime.environment",
                "Simple Container environment (stacks.<env>.config.security overrides the top-level block). "
                "Default: none."),
    ActionInput("registry", "runtime.registry",
                "Registry prefix of the images a Simple Container stack builds (registry/<stack>--<service>:version). "
                "Default: none."),
    ActionInput("version", "runtime.version",
                "Release version: the tag of the images a stack builds, and the release's name. Default: none."),
    ActionInput("cache-dir", "runtime.cache_dir",
                "Digest-keyed cache (SBOMs, scan results, vulnerability DBs in vulndb/); keep it with actions/cache. "
                "Default: none (no cache)."),
    ActionInput("output-dir", "runtime.output_dir",
                "Directory for release.json and the scan reports (JSON, SARIF, GitLab); relative to the workspace. "
                "Default: none (no files)."),
    ActionInput("shard", "runtime.shard",
                "K/N: this job's deterministic share of the images (a matrix job). Default: none (all images)."),
    ActionInput("tag-pattern", "runtime.tag_pattern",
                "Name of the git tag a successful release creates ({version}, {stack}, {environment}). "
                "Default: `v{version}`."),
    ActionInput("dry-run", "runtime.dry_run",
                "Print the commands that would run and run nothing (true/false). Default: `false`."),
)


def runtime_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """The runtime-setting inputs in `env` under `INPUT_<FIELD>` (either spelling: INPUT_CACHE-DIR or
    INPUT_CACHE_DIR), keyed the way RuntimeSettings names its fields; empty values left out."""
    found: dict[str, str] = {}
    for spec in ACTION_INPUTS:
        if spec.target.startswith("runtime."):
            value = input_value(env, spec)
            if value is not None:
                found["INPUT_" + spec.target.removeprefix("runtime.").upper()] = value
    return found


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
    timeout: float | None = Field(default=None, gt=0)  # seconds for the whole run (then: stop, fail)
    step_timeout: float | None = Field(default=None, gt=0)  # seconds for one step on one image

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
        inputs = runtime_inputs(env)
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
