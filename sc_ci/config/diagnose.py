"""Walks the config schema and turns validation failures into ConfigErrors with the key path and the fix."""

from __future__ import annotations

import difflib
import inspect
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from sc_ci.errors import ConfigError

Loc = tuple[str | int, ...]
FieldKind = Literal["bool", "scalar", "list", "section"]
ROOT = "security"
SECRET_FIELDS = frozenset({"privateKey", "publicKey", "apiKey"})


class Invalid(ValueError):
    """A validation failure that knows its fix; `key` names the offending child key of a section."""

    def __init__(self, message: str, *, fix: str = "", key: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix
        self.key = key


# ---------------------------------------------------------------------------------------------- schema walk


def unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to the type that matters."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


def section_of(annotation: Any) -> type[BaseModel] | None:
    """The model class a field holds (directly or as list items), if any."""
    inner = unwrap(annotation)
    if get_origin(inner) in (tuple, list):
        inner = unwrap(get_args(inner)[0])
    if inspect.isclass(inner) and issubclass(inner, BaseModel):
        return inner
    return None


def keys_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A section's keys as written in YAML (the camelCase aliases) → field."""
    return {(f.alias or name): f for name, f in model.model_fields.items()}


def field_kind(field: FieldInfo) -> FieldKind:
    inner = unwrap(field.annotation)
    if inner is bool:
        return "bool"
    if get_origin(inner) in (tuple, list):
        return "list"
    return "section" if section_of(inner) is not None else "scalar"


def allowed_values(field: FieldInfo) -> tuple[str, ...]:
    """The values a Literal-typed field allows (empty when free-form)."""
    inner = unwrap(field.annotation)
    if get_origin(inner) in (tuple, list) and get_args(inner):
        inner = unwrap(get_args(inner)[0])  # a list of allowed values: the items' choices
    return tuple(str(a) for a in get_args(inner)) if get_origin(inner) is Literal else ()


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The section model at `loc` (list indexes step into the item model)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = keys_of(model).get(part)
        model = section_of(field.annotation) if field is not None else None
    return model


def field_at(root: type[BaseModel], loc: Loc) -> FieldInfo | None:
    keys = [p for p in loc if isinstance(p, str)]
    if not keys:
        return None
    parent = model_at(root, loc[: max(i for i, p in enumerate(loc) if isinstance(p, str))])
    return keys_of(parent).get(keys[-1]) if parent is not None else None


def _squash(key: str) -> str:
    return re.sub(r"[_\-]", "", key).lower()


def canonical(root: type[BaseModel], segments: Sequence[str], *, where: str) -> tuple[Loc, FieldKind]:
    """Match dotted/env key segments to schema keys ignoring case, `_` and `-`; ConfigError if unknown."""
    model: type[BaseModel] | None = root
    loc: Loc = ()
    kind: FieldKind = "section"
    for i, segment in enumerate(segments):
        if model is None or kind != "section":
            raise ConfigError(
                f"{'.'.join(segments)} goes below a {kind} value",
                path=dotted(loc),
                why=f"set by {where}",
                fix=f"set {dotted(loc)} itself",
            )
        keys = keys_of(model)
        match = next((k for k in keys if _squash(k) == _squash(segment)), None)
        if match is None:
            raise unknown_key_error(model, (*loc, segment), segments[i + 1 :], where=where)
        loc = (*loc, match)
        kind = field_kind(keys[match])
        model = section_of(keys[match].annotation)
    return loc, kind


def unknown_key_error(model: type[BaseModel], loc: Loc, rest: Sequence[str], *, where: str) -> ConfigError:
    key = str(loc[-1])
    allowed = list(keys_of(model))
    guess = suggest(key, allowed)
    hint = f"did you mean {dotted((*loc[:-1], guess))}?\n" if guess else ""
    return ConfigError(
        f"unknown key {key!r}",
        path=dotted(loc),
        why=f"set by {where}" + (f" (remaining path: {'.'.join(rest)})" if rest else ""),
        fix=f"{hint}keys allowed under {dotted(loc[:-1])}: {', '.join(allowed)}",
    )


# ---------------------------------------------------------------------------------------------- rendering


def dotted(loc: Loc, root: str = ROOT) -> str:
    out = root
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else part)
    return out


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid spelling of `word`, if one is close enough to be a likely typo."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def snippet(loc: Loc, value: object, data: object = None, root: str = ROOT) -> str:
    """The YAML that sets `loc` to `value` (list items keep their `name` so the user can find them)."""
    node: object = value
    for i in range(len(loc) - 1, -1, -1):
        part = loc[i]
        if isinstance(part, int):
            item: dict[str, object] = {}
            original = _get(data, loc[: i + 1])
            if isinstance(original, Mapping) and "name" in original and loc[i + 1 : i + 2] != ("name",):
                item["name"] = original["name"]
            node = [{**item, **node}] if isinstance(node, dict) else [node]
        else:
            node = {part: node}
    text = yaml.safe_dump({root: node} if root else node, sort_keys=False, default_flow_style=False)
    return text.rstrip()


def _get(data: object, loc: Loc) -> object:
    for part in loc:
        if isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
        elif isinstance(part, str) and isinstance(data, Mapping):
            data = data.get(part)
        else:
            return None
    return data


def shown(loc: Loc, value: object) -> str:
    """A value safe to print: never echo what sits in a key field (it may be pasted key material)."""
    if loc and loc[-1] in SECRET_FIELDS:
        return "(value hidden)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------- errors


class OriginLookup(Protocol):
    """Where a value came from, for messages: `where(loc)` ("set by INPUT_SBOM-FORMAT"); `setting` the fix."""

    def where(self, loc: Loc) -> str: ...

    def setting(self, loc: Loc, value: object) -> str | None: ...


@dataclass(frozen=True)
class Issue:
    """One problem: dotted path, what is wrong, where the value came from, and the fix."""

    path: str
    problem: str
    fix: str
    where: str = ""


def issues_from(
    exc: ValidationError, root: type[BaseModel], data: Mapping[str, object], origins: OriginLookup | None
) -> list[Issue]:
    """Every error of a ValidationError (not just the first), translated."""
    issues = []
    for err in exc.errors(include_url=False):
        loc, problem, fix_loc, fix_value, fix = _explain(err, root, data)
        where = origins.where(loc) if origins else ""
        setting = origins.setting(fix_loc, fix_value) if origins and fix_value is not _NO_FIX else None
        if not fix and fix_value is not _NO_FIX:
            fix = snippet(fix_loc, fix_value, data)
        if setting:
            fix = f"{fix}\nor, where it was set: {setting}" if fix else setting
        issues.append(Issue(dotted(loc), problem, fix, where))
    return issues


def to_error(issues: Sequence[Issue], *, subject: str = "the security configuration") -> ConfigError:
    """One ConfigError for all issues; `path` is the first issue's path."""
    if len(issues) == 1:
        only = issues[0]
        return ConfigError(only.problem, path=only.path, why=only.where, fix=only.fix)
    shown_issues = list(issues[:MAX_LISTED])
    why = "\n".join(f"- {i.path}: {i.problem}" + (f" ({i.where})" if i.where else "") for i in shown_issues)
    if len(issues) > MAX_LISTED:
        why += f"\n- … and {len(issues) - MAX_LISTED} more"
    # unknown keys without a likely meant one share one fix (each one's list of allowed keys is a screenful)
    unknown = [i for i in issues if i.fix.startswith(_REMOVE)]
    fixes = [f"- {i.path}:\n{_indent(i.fix)}" for i in shown_issues if i.fix and i not in unknown]
    if len(unknown) > 1:
        fixes.append(f"- remove the {len(unknown)} unknown keys (the keys of each section: "
                     "docs/configuration.md#the-security-keys)")
    elif unknown:
        fixes.append(f"- {unknown[0].path}:\n{_indent(unknown[0].fix)}")
    fix = "\n".join(fixes)
    error = ConfigError(f"{len(issues)} problems in {subject}", why=why, fix=fix)
    error.path = issues[0].path  # set after construction so the headline is not prefixed with one path
    return error


def _in_context(fix: str, loc: Loc) -> str:
    """A fix written as `key: value` for the failing key, shown under its full YAML path."""
    key = next((p for p in reversed(loc) if isinstance(p, str)), None)
    if key is None or not fix.startswith(f"{key}:"):
        return fix
    parents = [p for p in loc[: max(i for i, p in enumerate(loc) if p == key)] if isinstance(p, str)]
    lines = [f"{'  ' * depth}{part}:" for depth, part in enumerate((ROOT, *parents))]
    pad = "  " * (len(parents) + 1)
    return "\n".join([*lines, *(pad + line for line in fix.splitlines())])


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


_NO_FIX: Any = object()
_REMOVE = "remove it; "
MAX_LISTED = 20  # problems listed one by one; the rest are counted (one screen, not a scroll)
_Explained = tuple[Loc, str, Loc, object, str]


def _clean_loc(raw: Sequence[str | int]) -> Loc:
    # pydantic adds schema tags (e.g. "function-after[...]") for some validators; keep only real keys
    return tuple(p for p in raw if isinstance(p, int) or not re.search(r"[\[\](),]", p))


def _explain(err: ErrorDetails, root: type[BaseModel], data: Mapping[str, object]) -> _Explained:
    loc = _clean_loc(err["loc"])
    kind, value = err["type"], err.get("input")
    handler = _HANDLERS.get(kind)
    if handler is not None:
        return handler(loc, value, err, root)
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, Invalid):
        full = (*loc, ctx_error.key) if ctx_error.key else loc
        return full, str(ctx_error), full, _NO_FIX, _in_context(ctx_error.fix, full)
    return loc, err["msg"], loc, _NO_FIX, ""


def _extra(loc: Loc, value: object, err: ErrorDetails, root: type[BaseModel]) -> _Explained:
    parent = model_at(root, loc[:-1])
    allowed = list(keys_of(parent)) if parent else []
    guess = suggest(str(loc[-1]), allowed)
    listing = f"keys allowed under {dotted(loc[:-1])}: {', '.join(allowed)}"
    if guess:
        shown_value = "..." if guess in SECRET_FIELDS else value
        return loc, f"unknown key {loc[-1]!r} (did you mean {guess!r}?)", (*loc[:-1], guess), shown_value, ""
    return loc, f"unknown key {loc[-1]!r}", loc, _NO_FIX, f"{_REMOVE}{listing}"


def _literal(loc: Loc, value: object, err: ErrorDetails, root: type[BaseModel]) -> _Explained:
    field = field_at(root, loc)
    allowed = allowed_values(field) if field else ()
    best = suggest(str(value), allowed) or (allowed[0] if allowed else None)
    problem = f"{shown(loc, value)} is not allowed; use one of: {', '.join(allowed)}"
    return loc, problem, loc, best if best is not None else _NO_FIX, ""


def _bool(loc: Loc, value: object, err: ErrorDetails, root: type[BaseModel]) -> _Explained:
    return loc, f"expected true or false, got {shown(loc, value)}", loc, True, ""


def _string(loc: Loc, value: object, err: ErrorDetails, root: type[BaseModel]) -> _Explained:
    problem = f"expected a string, got {type(value).__name__} {shown(loc, value)}"
    return loc, problem, loc, str(value) if isinstance(value, int | float) else _NO_FIX, ""


def _section(loc: Loc, value: object, err: ErrorDetails, root: type[BaseModel]) -> _Explained:
    model = model_at(root, loc)
    problem = f"expected a mapping of keys, got {type(value).__name__} {shown(loc, value)}"
    if isinstance(value, bool) and model is not None and "enabled" in keys_of(model):
        return loc, problem, (*loc, "enabled"), value, ""
    keys = ", ".join(keys_of(model)) if model else ""
    return loc, problem, loc, _NO_FIX, f"write {dotted(loc)} as a mapping with keys: {keys}"


def _list(loc: Loc, value: object, err: ErrorDetails, root: type[BaseModel]) -> _Explained:
    problem = f"expected a list, got {type(value).__name__} {shown(loc, value)}"
    example = [{"name": "grype"}, {"name": "trivy"}] if loc[-1:] == ("tools",) else ["..."]
    return loc, problem, loc, example, ""


def _missing(loc: Loc, value: object, err: ErrorDetails, root: type[BaseModel]) -> _Explained:
    field = field_at(root, loc)
    allowed = allowed_values(field) if field else ()
    return loc, f"required key {loc[-1]!r} is missing", loc, allowed[0] if allowed else "...", ""


_Handler = Callable[[Loc, object, ErrorDetails, type[BaseModel]], _Explained]
_HANDLERS: dict[str, _Handler] = {
    "extra_forbidden": _extra,
    "literal_error": _literal,
    "bool_type": _bool,
    "bool_parsing": _bool,
    "string_type": _string,
    "model_type": _section,
    "model_attributes_type": _section,
    "dict_type": _section,
    "tuple_type": _list,
    "list_type": _list,
    "missing": _missing,
}
