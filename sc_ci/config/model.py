"""The `security:` policy (spec FR-1..FR-5 plus a failure policy) as frozen pydantic models with defaults."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated, Any, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from sc_ci.config.diagnose import Invalid
from sc_ci.config.refs import KeySpec, contains_ref, parse_key_spec
from sc_ci.errors import UsageError
from sc_ci.imageref import parse as parse_image_ref

Feature = Literal["signing", "verify", "sbom", "provenance", "scan"]
Severity = Literal["critical", "high", "medium", "low"]
SbomFormat = Literal["cyclonedx-json", "spdx-json", "syft-json"]
CycloneDxVersion = Literal["1.4", "1.5", "1.6", "1.7"]
Oversize = Literal["digest", "no-tlog", "fail"]
ScannerName = Literal["grype", "trivy"]
#: Where signatures and attestations go (the same values as sc_ci.tools.cosign.Storage).
SigningStorage = Literal["referrers", "legacy", "both"]

#: Keys that also accept a bare boolean standing for one child key (spec FR-5: `attach: true`).
SHORTHANDS: dict[tuple[str | int, ...], str] = {("sbom", "attach"): "enabled"}


def _one_line(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):  # a URL, path, name or identity is one line
        raise Invalid("holds a line break or another control character",
                      fix="write the value on one line (a URL, a path, a name or an identity never spans lines)")
    return value


def _no_refs(value: str) -> str:
    if contains_ref(value):
        raise Invalid(
            "references are resolved only in privateKey, publicKey and apiKey",
            fix="write the value itself here, or pass it by flag / SC_CI_SECURITY__… / action input",
        )
    return value


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _http_url(value: str) -> str:
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):  # urlsplit would silently drop \n, \r and \t
        raise Invalid("is not an http(s) URL: it holds whitespace or a control character",
                      fix="use a full URL on one line, e.g. https://token.actions.githubusercontent.com")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"{value!r} is not an http(s) URL", fix="use a full URL, e.g. https://defectdojo.example.com")
    return value


def _regexp(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise Invalid(
            f"not a valid regular expression: {exc}", fix="identityRegexp: ^https://github.com/myorg/.*$"
        ) from exc
    return value


def is_severity(value: object) -> bool:
    return _severity(value) in get_args(Severity)


def _opt_regexp(value: str | None) -> str | None:
    return None if value is None else _regexp(value)


def _severity(value: object) -> object:
    return _blank_to_none(_lower(value))


def _private_key(value: object) -> KeySpec:
    return parse_key_spec(value, field="privateKey")


def _public_key(value: object) -> KeySpec:
    return parse_key_spec(value, field="publicKey", url=True)


def _api_key(value: object) -> KeySpec:
    return parse_key_spec(value, field="apiKey", kms=False)


Text = Annotated[str, AfterValidator(_no_refs), AfterValidator(_one_line)]
Prose = Annotated[str, AfterValidator(_no_refs)]  # free text that may span lines (an ignore's reason)
OptText = Annotated[Text | None, BeforeValidator(_blank_to_none)]
OptRegexp = Annotated[OptText, AfterValidator(_opt_regexp)]
OptUrl = Annotated[Annotated[str, AfterValidator(_http_url)] | None, BeforeValidator(_blank_to_none)]
OptSeverity = Annotated[Severity | None, BeforeValidator(_severity)]
# key fields keep the reference unresolved and dump back to the text the user wrote
KeyText = Annotated[KeySpec, PlainSerializer(str, return_type=str), WithJsonSchema({"type": "string"})]
PrivateKey = Annotated[KeyText, PlainValidator(_private_key)]
PublicKey = Annotated[KeyText, PlainValidator(_public_key)]
ApiKey = Annotated[KeyText, PlainValidator(_api_key)]


class Section(BaseModel):
    """Base of every section: camelCase keys, unknown keys rejected, immutable once loaded."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_default=False,
        hide_input_in_errors=True,  # the chained ValidationError must not echo pasted key material
    )


# ---------------------------------------------------------------------------------------------- signing


class VerifyConfig(Section):
    """Who must have signed: checked right after signing, by `image verify` and by `release verify`, which
    also pins the Fulcio certificate extensions below (GitHub and GitLab certificates carry them)."""

    enabled: StrictBool = True
    oidc_issuer: OptUrl = None
    identity: OptText = None  # the exact certificate identity (SAN); exclusive with identityRegexp
    identity_regexp: OptRegexp = None
    source_repository: OptText = None  # https://github.com/acme/app (also the provenance's source)
    source_ref: OptText = None  # refs/heads/main, refs/tags/v1.0.0
    build_signer: OptText = None  # the workflow that signed: https://github.com/acme/app/.github/workflows/x.yml@ref
    runner_environment: Annotated[Literal["github-hosted", "self-hosted"] | None,
                                  BeforeValidator(_blank_to_none)] = None

    @model_validator(mode="after")
    def _one_identity(self) -> Self:
        if self.identity is not None and self.identity_regexp is not None:
            raise Invalid("identity and identityRegexp exclude each other", key="identityRegexp",
                          fix="security:\n  signing:\n    verify:\n      identity: https://github.com/acme/app/"
                              ".github/workflows/release.yml@refs/heads/main\n      # or identityRegexp alone")
        return self


class SigstoreConfig(Section):
    """Which Sigstore services signing talks to (public-good by default), and what verification trusts."""

    transparency_log: StrictBool = True
    certificate_transparency: StrictBool = True
    fulcio_url: OptUrl = None
    rekor_url: OptUrl = None
    trusted_root: OptText = None
    signing_config: OptText = None
    tuf_mirror: OptUrl = None
    tuf_root: OptText = None

    @model_validator(mode="after")
    def _service_combination(self) -> Self:
        if self.rekor_url is not None and not self.transparency_log:
            raise Invalid(
                "rekorUrl contradicts transparencyLog: false (no log means no Rekor)",
                key="rekorUrl",
                fix="security:\n  signing:\n    sigstore:\n      transparencyLog: false\n"
                "      # and drop rekorUrl (or keep rekorUrl and drop transparencyLog: false)",
            )
        if self.signing_config is not None and (self.fulcio_url is not None or self.rekor_url is not None):
            raise Invalid(
                "signingConfig already names the Fulcio and Rekor URLs; give either the file or the URLs",
                key="signingConfig",
                fix="security:\n  signing:\n    sigstore:\n      signingConfig: sigstore/signing_config.json\n"
                "      trustedRoot: sigstore/trusted_root.json\n      # no fulcioUrl / rekorUrl",
            )
        if self.tuf_root is not None and self.tuf_mirror is None:
            raise Invalid(
                "tufRoot is the root.json of a TUF mirror, and no tufMirror is set",
                key="tufRoot",
                fix="security:\n  signing:\n    sigstore:\n      tufMirror: https://tuf.example.com\n"
                "      tufRoot: sigstore/root.json",
            )
        return self


class SigningConfig(Section):
    enabled: StrictBool = False
    provider: Literal["sigstore"] = "sigstore"
    keyless: StrictBool = True
    private_key: PrivateKey | None = None
    public_key: PublicKey | None = None
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    sigstore: SigstoreConfig = Field(default_factory=SigstoreConfig)
    # legacy: the .sig/.att tags every cosign release and admission controller reads (docs/configuration.md)
    storage: Annotated[SigningStorage, BeforeValidator(_lower)] = "legacy"
    force: StrictBool = False  # sign even when a valid signature by the same key or identity exists
    recursive: StrictBool = True  # an index: sign each platform manifest too (cosign --recursive)
    fail_open: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _keyless_follows_private_key(cls, data: Any) -> Any:
        """A privateKey without an explicit `keyless` means key-based signing."""
        if isinstance(data, dict) and _blank_to_none(data.get("privateKey")) is not None and "keyless" not in data:
            return {**data, "keyless": False}
        return data

    @model_validator(mode="after")
    def _key_combination(self) -> Self:
        if self.keyless and self.private_key is not None:
            raise Invalid(
                "keyless: true contradicts privateKey (a key means key-based signing)",
                key="keyless",
                fix="security:\n  signing:\n    privateKey: ...\n    # drop `keyless: true` (or set keyless: false)",
            )
        if not self.keyless and self.private_key is None:
            raise Invalid(
                "keyless: false needs a privateKey to sign with",
                key="privateKey",
                fix="security:\n  signing:\n    keyless: false\n"
                "    privateKey: ${secret:cosign-private-key}\n"
                "# or drop `keyless: false` to sign keyless (publicKey alone is enough to verify)",
            )
        return self


# ---------------------------------------------------------------------------------------------- sbom


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "gi": 1024**3,
}
MIB = 1024 * 1024


def byte_size(value: object) -> object:
    """4194304, "4MiB", "500 KB", "1.5MB" -> bytes (an int above zero)."""
    if isinstance(value, bool):
        return value  # rejected by the int type with its own message
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise Invalid(
                f"{value!r} is not a size", fix="maxSize: 4MiB  (or bytes: 4194304; units B KB KiB MB MiB GB GiB)"
            )
        number, unit = float(match.group(1)), (match.group(2) or "").lower()
    if not math.isfinite(number) or number * _UNITS[unit] > 2**53:
        raise Invalid(f"{value!r} is not a size", fix="maxSize: 4MiB  (a finite size: bytes or B KB KiB MB MiB GB GiB)")
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise Invalid(f"{value!r} is not a size above zero", fix="maxSize: 4MiB")
    return size


def _cyclonedx_version(value: object) -> object:
    """YAML reads `1.6` as a float; the spec version is text."""
    return f"{value:g}" if isinstance(value, float) else _blank_to_none(value)


class SbomAttach(Section):
    enabled: StrictBool = True
    sign: StrictBool = True
    max_size: Annotated[int, BeforeValidator(byte_size)] = 4 * MIB
    oversize: Annotated[Oversize, BeforeValidator(_lower)] = "digest"


class SbomOutput(Section):
    local: OptText = None
    registry: StrictBool = True


class SbomConfig(Section):
    enabled: StrictBool = False
    format: Annotated[SbomFormat, BeforeValidator(_lower)] = "cyclonedx-json"
    extra_formats: tuple[Annotated[SbomFormat, BeforeValidator(_lower)], ...] = ()
    cyclonedx_version: Annotated[CycloneDxVersion, BeforeValidator(_cyclonedx_version)] = "1.6"
    generator: Literal["syft"] = "syft"
    attach: SbomAttach = Field(default_factory=SbomAttach)
    output: SbomOutput = Field(default_factory=SbomOutput)
    fail_open: StrictBool | None = None

    @field_validator("attach", mode="before")
    @classmethod
    def _attach_shorthand(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    @property
    def formats(self) -> tuple[SbomFormat, ...]:
        """`format` first, then each extra format once (all come out of one generator run)."""
        return tuple(dict.fromkeys((self.format, *self.extra_formats)))

    @property
    def to_registry(self) -> bool:
        """Whether the SBOM is pushed as an attestation (needs both attach.enabled and output.registry)."""
        return self.attach.enabled and self.output.registry

    @model_validator(mode="after")
    def _goes_somewhere(self) -> Self:
        if self.enabled and not self.to_registry and self.output.local is None:
            raise Invalid(
                "the SBOM would be generated and dropped: not pushed to the registry and no output.local",
                key="output",
                fix="security:\n  sbom:\n    output:\n      local: ./sbom/",
            )
        return self


# ---------------------------------------------------------------------------------------------- provenance


def _slsa_version(value: object) -> object:
    if isinstance(value, bool):
        return value
    if str(value).strip() in ("1", "1.0"):
        return "1.0"
    raise Invalid(f"SLSA provenance version {value!r} is not supported; only 1.0 is", fix='version: "1.0"')


class BuilderConfig(Section):
    id: OptText = None  # auto-detected from the CI context when unset


class ProvenanceMetadata(Section):
    include_env: StrictBool = False
    include_materials: StrictBool = True


class ProvenanceConfig(Section):
    enabled: StrictBool = False
    version: Annotated[Literal["1.0"], BeforeValidator(_slsa_version)] = "1.0"
    builder: BuilderConfig = Field(default_factory=BuilderConfig)
    metadata: ProvenanceMetadata = Field(default_factory=ProvenanceMetadata)
    fail_open: StrictBool | None = None


# ---------------------------------------------------------------------------------------------- scan


class ScanTool(Section):
    name: Annotated[ScannerName, BeforeValidator(_lower)]
    required: StrictBool = False
    fail_on: OptSeverity = None


class DefectDojoConfig(Section):
    enabled: StrictBool = False
    url: OptUrl = None
    api_key: ApiKey | None = None
    product_name: OptText = None  # default: the stack, else the first image's repository
    engagement_name: OptText = None  # default: "sc-ci <version>" (or "sc-ci")
    product_type_name: OptText = None  # needed when autoCreateContext creates the product
    auto_create_context: StrictBool = False  # DefectDojo's default: product and engagement must exist
    tags: tuple[Text, ...] = ()
    fail_on_error: StrictBool = False  # an upload failure fails the job (default: warn and continue)
    verify_tls: StrictBool = True

    @model_validator(mode="after")
    def _complete(self) -> Self:
        for key, value in (("url", self.url), ("apiKey", self.api_key)):
            if self.enabled and value is None:
                raise Invalid(
                    f"DefectDojo upload is enabled but {key} is not set",
                    key=key,
                    fix="security:\n  scan:\n    upload:\n      defectdojo:\n        enabled: true\n"
                    "        url: https://defectdojo.example.com\n"
                    "        apiKey: ${secret:defectdojo-api-key}",
                )
        return self


class ScanUpload(Section):
    defectdojo: DefectDojoConfig = Field(default_factory=DefectDojoConfig)


def tool_dicts(tools: Any) -> Any:
    """`tools: [grype, trivy]` is short for `[{name: grype}, {name: trivy}]`."""
    if isinstance(tools, list | tuple):
        return [{"name": t} if isinstance(t, str) else t for t in tools]
    return tools


def _default_tools() -> tuple[ScanTool, ...]:
    return (ScanTool(name="grype"),)


_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (7 * 86400, 86400, 3600, 60, 1)


def duration_seconds(value: str) -> int:
    """ "5d", "36h", "1w2d", "90m" → seconds (above zero); ValueError otherwise."""
    match = _DURATION.match(value.strip().lower().replace(" ", ""))
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration")
    seconds = sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if g)
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a duration above zero")
    return seconds


def _duration(value: object) -> object:
    if not isinstance(value, str):
        return value  # rejected by the str type with its own message
    try:
        duration_seconds(value)
    except ValueError as exc:
        raise Invalid(str(exc), fix="maxAge: 5d  (units w d h m s, e.g. 36h or 1w2d)") from exc
    return value.strip().lower().replace(" ", "")


def _registry_ref(value: str | None) -> str | None:
    """trivyRepository is an OCI reference (host/repo:tag), never a URL."""
    if value is None:
        return None
    try:
        parse_image_ref(value)
    except UsageError as exc:
        raise Invalid(
            f"{value!r} is not a registry reference: {exc.why}",
            fix="trivyRepository: registry.example.com/mirror/trivy-db:2",
        ) from exc
    return value


def _required_text(value: str) -> str:
    if not value.strip():
        raise Invalid("must not be empty", fix="say why the finding is accepted, e.g. reason: not reachable")
    return value.strip()


RequiredText = Annotated[Text, AfterValidator(_required_text)]


class ScanIgnore(Section):
    """One accepted finding: which vulnerability (and optionally package), why, and until when."""

    id: RequiredText
    reason: Annotated[Prose, AfterValidator(_required_text)]
    expires: date | None = None
    package: OptText = None


class ScanDb(Section):
    """Where the vulnerability databases live and where they come from (mirrors for air-gapped use)."""

    cache_dir: OptText = None
    offline: StrictBool = False  # use the DBs in cacheDir as they are; never download
    max_age: Annotated[str, BeforeValidator(_duration)] = "5d"
    grype_update_url: OptUrl = None
    trivy_repository: Annotated[OptText, AfterValidator(_registry_ref)] = None

    @property
    def max_age_seconds(self) -> int:
        return duration_seconds(self.max_age)

    @model_validator(mode="after")
    def _offline_means_no_source(self) -> Self:
        for key, value in (("grypeUpdateUrl", self.grype_update_url), ("trivyRepository", self.trivy_repository)):
            if self.offline and value is not None:
                raise Invalid(
                    f"offline: true never downloads a database, so {key} would not be used",
                    key=key,
                    fix="security:\n  scan:\n    db:\n      offline: true\n      cacheDir: .sc-ci/vulndb\n"
                    f"      # drop {key} (or drop offline: true to update from the mirror)",
                )
        return self


class ScanConfig(Section):
    enabled: StrictBool = False
    tools: tuple[ScanTool, ...] = Field(default_factory=_default_tools)
    fail_on: OptSeverity = None
    upload: ScanUpload = Field(default_factory=ScanUpload)
    fail_open: StrictBool | None = None
    only_fixed: StrictBool = False  # only findings with a fix count for failOn
    ignore: tuple[ScanIgnore, ...] = ()
    ignore_file: OptText = None  # more ignore entries, same keys, in a YAML or JSON file
    vex: OptText = None  # an OpenVEX document; not_affected / fixed statements suppress findings
    attest: StrictBool = False  # attach the scan report to the image as a signed attestation
    db: ScanDb = Field(default_factory=ScanDb)
    output: OptText = None  # directory for the JSON, SARIF and GitLab reports

    @model_validator(mode="before")
    @classmethod
    def _inherit_fail_on(cls, data: Any) -> Any:
        """`scan.failOn` is the threshold of every tool that sets none of its own."""
        if not isinstance(data, dict) or not is_severity(data.get("failOn")):
            return data  # an invalid value is reported once, at scan.failOn
        tools = tool_dicts(data.get("tools", ["grype"]))
        if not isinstance(tools, list):
            return data
        inherited = [
            {**t, "failOn": data["failOn"]} if isinstance(t, dict) and t.get("failOn") in (None, "") else t
            for t in tools
        ]
        return {**data, "tools": inherited}

    _names_as_tools = field_validator("tools", mode="before")(tool_dicts)

    @field_validator("tools")
    @classmethod
    def _unique(cls, tools: tuple[ScanTool, ...]) -> tuple[ScanTool, ...]:
        names = [t.name for t in tools]
        for name in names:
            if names.count(name) > 1:
                raise Invalid(f"scanner {name!r} is listed {names.count(name)} times", fix="list each scanner once")
        return tools

    @model_validator(mode="after")
    def _has_tools(self) -> Self:
        if self.enabled and not self.tools:
            raise Invalid(
                "scanning is enabled with an empty tools list",
                key="tools",
                fix="security:\n  scan:\n    tools:\n      - name: grype",
            )
        return self


# ---------------------------------------------------------------------------------------------- policy


class ReleaseVerifyConfig(Section):
    """`release verify`: what the provenance must say, which isolated builders reach SLSA Build L3, how old
    a signed scan may be (the signer and its certificate pins are signing.verify)."""

    builder_id: OptText = None  # runDetails.builder.id the provenance must name
    trusted_builders: tuple[Text, ...] = ()  # glob patterns; default: this project's reusable workflow at a tag
    max_scan_age: Annotated[str, BeforeValidator(_duration)] = "7d"
    rescan: StrictBool = False  # scan again with today's database instead of trusting the attested scan

    @property
    def max_scan_age_seconds(self) -> int:
        return duration_seconds(self.max_scan_age)


class PolicyConfig(Section):
    fail_open: StrictBool = True  # a failed step is reported but does not fail the job
    fail_fast: StrictBool = False  # after the first failure that fails the job, start no further step


class SecurityConfig(Section):
    """The whole `security:` block; every default documented in docs/configuration.md is applied here."""

    signing: SigningConfig = Field(default_factory=SigningConfig)
    sbom: SbomConfig = Field(default_factory=SbomConfig)
    provenance: ProvenanceConfig = Field(default_factory=ProvenanceConfig)
    scan: ScanConfig = Field(default_factory=ScanConfig)
    verify: ReleaseVerifyConfig = Field(default_factory=ReleaseVerifyConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)

    def fail_open(self, feature: Feature) -> bool:
        """Whether a failure of `feature` is reported without failing the job (`verify` follows signing)."""
        sections: dict[str, SigningConfig | SbomConfig | ProvenanceConfig | ScanConfig] = {
            "signing": self.signing,
            "verify": self.signing,
            "sbom": self.sbom,
            "provenance": self.provenance,
            "scan": self.scan,
        }
        if feature not in sections:
            raise ValueError(f"unknown feature {feature!r}; one of {', '.join(sections)}")
        override = sections[feature].fail_open
        return self.policy.fail_open if override is None else override

    def enabled_features(self) -> tuple[Feature, ...]:
        """Enabled steps in run order: scan → sign → SBOM → provenance → verify."""
        flags: tuple[tuple[Feature, bool], ...] = (
            ("scan", self.scan.enabled),
            ("signing", self.signing.enabled),
            ("sbom", self.sbom.enabled),
            ("provenance", self.provenance.enabled),
            ("verify", self.signing.enabled and self.signing.verify.enabled),
        )
        return tuple(name for name, on in flags if on)
