"""Dockerfile reading for provenance: the external images a build starts FROM or copies from, ARGs applied."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from sc_ci import imageref
from sc_ci.errors import ScError

#: Build args BuildKit sets itself from the build's platforms; their values are unknown before the build.
PLATFORM_ARGS = frozenset({"BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
                           "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"})

_DIRECTIVE = re.compile(r"\s*#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\S*)\s*")
_HEREDOC = re.compile(r"<<-?([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1")
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\+)(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_ESCAPED_DOLLAR = "\0"


@dataclass(frozen=True)
class BaseImage:
    """An external image the build uses: `FROM` (a base), `COPY --from` or `RUN --mount=from=`."""

    ref: str  # the reference after ARG expansion, as written (tag or digest)
    line: int  # 1-based line where the instruction starts
    instruction: str  # "FROM", "COPY --from", "RUN --mount"
    platform: str | None = None  # FROM --platform, when it does not depend on the build's platforms
    stage: str | None = None  # the alias (FROM … AS name) of the stage this line starts


@dataclass(frozen=True)
class Parsed:
    images: tuple[BaseImage, ...]
    problems: tuple[str, ...]  # references left out, and why (e.g. an ARG without a value)


class _Scope:
    """ARG values visible to an instruction: None means declared without a value."""

    def __init__(self, values: Mapping[str, str | None] | None = None) -> None:
        self.values: dict[str, str | None] = dict(values or {})

    def expand(self, text: str, escape: str) -> tuple[str, list[str]]:
        """`$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}` replaced; the names that had no value."""
        missing: list[str] = []
        text = text.replace(f"{escape}$", _ESCAPED_DOLLAR)

        def one(match: re.Match[str]) -> str:
            name = match["braced"] or match["bare"]
            value = self.values.get(name)
            op = match["op"]
            if op == ":-":
                if value:
                    return value
                word, inner = self.expand(match["word"], escape)
                missing.extend(inner)
                return word
            if op == ":+":
                if not value:
                    return ""
                word, inner = self.expand(match["word"], escape)
                missing.extend(inner)
                return word
            if value is None:
                missing.append(name)
                return ""
            return value

        return _VAR.sub(one, text).replace(_ESCAPED_DOLLAR, "$"), missing


def escape_char(text: str) -> str:
    """The escape character: `\\` unless an `# escape=` parser directive at the very top says `` ` ``."""
    for raw in text.splitlines():
        match = _DIRECTIVE.fullmatch(raw)
        if match is None:
            break
        if match[1].lower() == "escape" and match[2] in ("\\", "`"):
            return match[2]
    return "\\"


def instructions(text: str) -> list[tuple[int, str]]:
    """(line, instruction text) with continuation lines joined, comments and heredoc bodies dropped."""
    lines = text.splitlines()
    escape = escape_char(text)
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    start = index = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank lines, comments and parser directives, also inside a continued instruction
        if not parts:
            start = index
        body = raw.rstrip() if not parts else raw.strip()
        if body.endswith(escape):
            parts.append(body[: -len(escape)])
            continue
        parts.append(body)
        instruction = "".join(parts).strip()
        parts = []
        out.append((start, instruction))
        for _quote, word in _HEREDOC.findall(instruction):  # skip each heredoc body up to its terminator
            while index < len(lines) and lines[index].strip() != word:
                index += 1
            index += 1
    if parts:
        out.append((start, "".join(parts).strip()))
    return out


def parse(text: str, build_args: Mapping[str, str] | None = None) -> Parsed:
    """The external images of a Dockerfile, in order, each once.

    ARGs declared before the first FROM feed FROM lines (`--build-arg` values override their defaults);
    ARGs inside a stage feed that stage's COPY --from / RUN --mount=from=. Stage aliases, stage
    indexes and `scratch` are not external images. An ARG without a value expands to nothing, as in
    Docker; that is noted in `problems`, and the reference is left out when it then names no image or
    depends on the platform being built.
    """
    args = dict(build_args or {})
    escape = escape_char(text)
    global_scope = _Scope()
    stage_scope: _Scope | None = None
    stages: list[str | None] = []
    images: list[BaseImage] = []
    problems: list[str] = []
    seen: set[tuple[str, str | None]] = set()

    def add(image: BaseImage) -> None:
        if (image.ref, image.platform) not in seen:
            seen.add((image.ref, image.platform))
            images.append(image)

    def external(name: str) -> bool:
        lowered = name.lower()
        if lowered == "scratch" or lowered in {s for s in stages if s}:
            return False
        return not (name.isdigit() and int(name) < len(stages))

    for line, instruction in instructions(text):
        keyword, rest = [*instruction.split(maxsplit=1), ""][:2]
        keyword = keyword.upper()
        if keyword == "ARG":
            _declare(rest, args, global_scope, stage_scope, escape, line, problems)
        elif keyword == "FROM":
            image, alias = _from(rest, line, global_scope, escape, problems)
            stage_scope = _Scope()
            if image is not None and external(image.ref):
                add(BaseImage(image.ref, line, "FROM", image.platform, alias))
            stages.append(alias.lower() if alias else None)
        elif keyword in ("COPY", "RUN") and stage_scope is not None:
            for source, what in _sources(keyword, rest):
                label = f"COPY --from={source}" if what == "COPY --from" else f"RUN --mount=…,from={source}"
                ref = _reference(label, source, line, stage_scope, escape, problems)
                if ref is not None and external(ref):
                    add(BaseImage(ref, line, what))
    return Parsed(tuple(images), tuple(problems))


def _declare(rest: str, args: Mapping[str, str], global_scope: _Scope, stage_scope: _Scope | None,
             escape: str, line: int, problems: list[str]) -> None:
    scope = global_scope if stage_scope is None else stage_scope
    try:
        words = shlex.split(rest.replace(f"{escape}$", _ESCAPED_DOLLAR), posix=True)
    except ValueError as exc:
        problems.append(f"line {line}: ARG {rest!r} not understood ({exc})")
        return
    for word in words:
        name, eq, default = word.partition("=")
        if not name:
            continue
        if name in args:
            scope.values[name] = args[name]
        elif eq:
            value, _missing = scope.expand(default.replace(_ESCAPED_DOLLAR, f"{escape}$"), escape)
            scope.values[name] = value
        elif stage_scope is not None and name in global_scope.values:
            scope.values[name] = global_scope.values[name]  # re-declared global ARG: its global value
        else:
            scope.values.setdefault(name, None)


def _from(rest: str, line: int, scope: _Scope, escape: str,
          problems: list[str]) -> tuple[BaseImage | None, str | None]:
    words = rest.split()
    platform_text = None
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--platform="):
            platform_text = flag.partition("=")[2]
    if not words:
        problems.append(f"line {line}: FROM without an image")
        return None, None
    alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
    ref = _reference(f"FROM {words[0]}", words[0], line, scope, escape, problems)
    if ref is None:
        return None, alias
    platform = None
    if platform_text:  # --platform=$BUILDPLATFORM and the like: unknown before the build, left out
        expanded, unknown = scope.expand(platform_text, escape)
        platform = expanded if expanded and not unknown and "$" not in expanded else None
    return BaseImage(ref, line, "FROM", platform, alias), alias


def _reference(label: str, text: str, line: int, scope: _Scope, escape: str, problems: list[str]) -> str | None:
    """The image reference `text` names once expanded, as Docker expands it (an ARG without a value is
    empty); None, with the problem noted, when that depends on the build's platform or names no image."""
    ref, missing = scope.expand(text, escape)
    if not missing:
        return ref
    names = ", ".join(dict.fromkeys(missing))
    if set(missing) & PLATFORM_ARGS:
        problems.append(f"line {line}: {label} left out: ARG {names} has no value (it depends on the "
                        "platform being built, which is known only during the build)")
        return None
    try:
        imageref.parse(ref)
    except ScError:
        problems.append(f"line {line}: {label} left out: ARG {names} has no value (declare the ARG with a "
                        "default before the first FROM, or pass --build-arg NAME=VALUE)")
        return None
    problems.append(f"line {line}: ARG {names} has no value: recorded {ref} (what the build uses without "
                    f"--build-arg {names.split(', ')[0]}=…)")
    return ref


def _sources(keyword: str, rest: str) -> list[tuple[str, str]]:
    """`COPY --from=X` and `RUN --mount=…,from=X` sources named in the instruction's leading flags."""
    found: list[tuple[str, str]] = []
    for word in rest.split():
        if not word.startswith("--"):
            break
        if keyword == "COPY" and word.startswith("--from="):
            found.append((word.partition("=")[2], "COPY --from"))
        elif keyword == "RUN" and word.startswith("--mount="):
            for option in word.partition("=")[2].split(","):
                key, _, value = option.partition("=")
                if key.strip().lower() == "from" and value:
                    found.append((value.strip(), "RUN --mount"))
    return found
