"""Validate an SBOM with a real validator before it is attached: CycloneDX JSON schema
(cyclonedx-python-lib), SPDX 2.x parse + semantic checks (spdx-tools), Syft JSON structure."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import quote

from sc_ci.errors import StepFailed, ToolError
from sc_ci.sbom.formats import CYCLONEDX, SPDX, SbomFormat

MAX_REPORTED = 5
SYFT_KEYS: Mapping[str, type] = {
    "artifacts": list, "artifactRelationships": list, "source": dict, "distro": dict, "descriptor": dict,
    "schema": dict,
}


class InvalidSbom(StepFailed):
    """The SBOM failed its format's validator; `what` names the file, `why` carries the validator's words."""


@dataclass(frozen=True)
class Validated:
    """A document that passed: its format, the spec version checked, and which validator said so."""

    format: SbomFormat
    spec_version: str
    validator: str


def validate(document: Mapping[str, Any], text: str, fmt: SbomFormat, source: str) -> Validated:
    """Check `document` (parsed from `text`) against its format; InvalidSbom with the messages if not."""
    if fmt is CYCLONEDX:
        return _cyclonedx(document, text, source)
    if fmt is SPDX:
        return _spdx(document, source)
    return _syft(document, source)


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _missing(package: str, exc: Exception) -> ToolError:
    return ToolError(f"the SBOM validator {package} is not installed", why=str(exc),
                     fix="Reinstall sc-ci with its dependencies: pip install sc-security-action "
                         "(or `make install` in a checkout).")


def _fail(fmt: SbomFormat, source: str, validator: str, messages: Iterable[str], fix: str) -> InvalidSbom:
    shown = list(messages)
    more = f"\n… and {len(shown) - MAX_REPORTED} more" if len(shown) > MAX_REPORTED else ""
    return InvalidSbom(f"{source} is not a valid {fmt.label} SBOM", why=f"{validator}:\n"
                       + "\n".join(shown[:MAX_REPORTED]) + more, fix=fix)


# ---------------------------------------------------------------------------------------------- CycloneDX


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
#: RFC 3987 ucschar and iprivate: the non-ASCII code points an IRI may hold
_IRI_CHARS = re.compile(
    "^[\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd"
    "\U00030000-\U0003fffd\U00040000-\U0004fffd\U00050000-\U0005fffd\U00060000-\U0006fffd"
    "\U00070000-\U0007fffd\U00080000-\U0008fffd\U00090000-\U0009fffd\U000a0000-\U000afffd"
    "\U000b0000-\U000bfffd\U000c0000-\U000cfffd\U000d0000-\U000dfffd\U000e1000-\U000efffd"
    "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]+$")


def is_iri_reference(value: object) -> bool:
    """RFC 3987 `IRI-reference`, the way §3.1 maps an IRI to a URI: the non-ASCII characters must be IRI
    characters, and the URI they map to (percent-encoded UTF-8) an RFC 3986 URI-reference. jsonschema's
    default checker for this format runs an Earley parser per value (~50 ms each: nearly all of the
    CycloneDX validation time); this one is a regex, and decides the same for the IRIs SBOMs carry."""
    if not isinstance(value, str):
        return True
    from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

    for chunk in _NON_ASCII.findall(value):
        if not _IRI_CHARS.match(chunk):
            return False
    mapped = _NON_ASCII.sub(lambda m: quote(m.group(), safe=""), value)
    return bool(validate_rfc3986(mapped, rule="URI_reference"))


@functools.cache
def _cyclonedx_validator(version: str) -> Callable[[str], Any]:
    """cyclonedx-python-lib's strict JSON schema validator for `version`, with the fast IRI check."""
    try:
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator, JsonValidationError
    except ImportError as exc:  # pragma: no cover - a broken installation
        raise _missing("cyclonedx-python-lib[json-validation]", exc) from exc
    strict = JsonStrictValidator(SchemaVersion.from_version(version))
    base = strict._validator  # the library's compiled Draft-7 validator and its registry
    checker = base.format_checker  # type: ignore[attr-defined]  # an attribute of every concrete validator
    checker.checkers["iri-reference"] = (is_iri_reference, ())
    fast = base.evolve(format_checker=checker)

    def check(text: str) -> list[Any]:
        return [JsonValidationError._make_from_jsve(e)
                for e in fast.iter_errors(json.loads(text))]

    return check


def _cyclonedx(document: Mapping[str, Any], text: str, source: str) -> Validated:
    version = str(document.get("specVersion", ""))
    validator = f"cyclonedx-python-lib {_package_version('cyclonedx-python-lib')} (CycloneDX {version} JSON " \
                "schema, strict)"
    try:
        check = _cyclonedx_validator(version)
    except ValueError as exc:
        raise _fail(CYCLONEDX, source, "cyclonedx-python-lib", [f"specVersion {version!r} is not a CycloneDX "
                    f"version it knows ({exc})"],
                    "Generate CycloneDX 1.4–1.7: security.sbom.cyclonedxVersion / --cyclonedx-version.") from exc
    errors = check(text)
    if errors:
        messages = [_cdx_message(e) for e in errors]
        raise _fail(CYCLONEDX, source, validator, messages,
                    "Regenerate the SBOM with sc-ci sbom generate (syft writes schema-valid CycloneDX); if an "
                    "edited or third-party SBOM fails, fix the fields named above.")
    return Validated(CYCLONEDX, version, validator)


def _cdx_message(error: Any) -> str:
    data = getattr(error, "data", None)
    if data is not None and hasattr(data, "message"):
        path = "/".join(str(p) for p in getattr(data, "absolute_path", ())) or "(document)"
        return f"at {path}: {data.message}"
    return str(error).splitlines()[0]


# ---------------------------------------------------------------------------------------------- SPDX


def _spdx(document: Mapping[str, Any], source: str) -> Validated:
    try:
        from spdx_tools.spdx.parser.error import SPDXParsingError
        from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
        from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    except ImportError as exc:  # pragma: no cover - a broken installation
        raise _missing("spdx-tools", exc) from exc
    version = str(document.get("spdxVersion", ""))
    validator = f"spdx-tools {_package_version('spdx-tools')} ({version} parser and validator)"
    fix = ("Regenerate the SBOM with sc-ci sbom generate --format spdx-json (syft writes SPDX 2.3); if an "
           "edited or third-party SBOM fails, fix the elements named above.")
    try:
        parsed = JsonLikeDictParser().parse(dict(document))  # type: ignore[no-untyped-call]
    except SPDXParsingError as exc:
        messages: list[str] = exc.get_messages()  # type: ignore[no-untyped-call]
        raise _fail(SPDX, source, validator, [str(m) for m in messages], fix) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise _fail(SPDX, source, validator, [f"cannot be read as SPDX 2.x: {exc!r}"], fix) from exc
    problems = validate_full_spdx_document(parsed)
    if problems:
        raise _fail(SPDX, source, validator, [_spdx_message(m) for m in problems], fix)
    return Validated(SPDX, version, validator)


def _spdx_message(message: Any) -> str:
    context = getattr(message, "context", None)
    where = getattr(context, "spdx_id", None) or getattr(getattr(context, "element_type", None), "name", "")
    return f"{where}: {message.validation_message}" if where else str(message.validation_message)


# ---------------------------------------------------------------------------------------------- Syft JSON


def _syft(document: Mapping[str, Any], source: str) -> Validated:
    from sc_ci.sbom.formats import SYFT

    validator = "sc-ci Syft JSON structure check (syft publishes no validator library)"
    problems = [f"top-level key {key!r} is missing" for key in SYFT_KEYS if key not in document]
    problems += [f"top-level key {key!r} is a {type(document[key]).__name__}, expected a {kind.__name__}"
                 for key, kind in SYFT_KEYS.items() if key in document and not isinstance(document[key], kind)]
    schema = document.get("schema")
    if isinstance(schema, dict) and not schema.get("version"):
        problems.append("schema.version is missing")
    for index, artifact in enumerate(document.get("artifacts") or []):
        if not isinstance(artifact, dict) or not all(isinstance(artifact.get(k), str) for k in ("name", "type")):
            problems.append(f"artifacts[{index}] has no name or type")
    if problems:
        raise _fail(SYFT, source, validator, problems,
                    "Regenerate the SBOM with sc-ci sbom generate --format syft-json.")
    version = str(schema.get("version", "")) if isinstance(schema, dict) else ""
    return Validated(SYFT, version, validator)


def canonical(document: Mapping[str, Any]) -> str:
    """A stable text form of a document (for equality checks in messages)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
