"""Reads YAML strictly (duplicate keys rejected) and remembers where every key sits, as file:line:column."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sc_ci.config.diagnose import Loc
from sc_ci.errors import ConfigError
from sc_ci.sanitize import one_line

_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_BYTES = 1024 * 1024  # a config or secrets file larger than this is refused unread
MAX_DEPTH = 64  # nesting, counted through aliases too
MAX_ALIASES = 1_000  # `*alias` uses in one document
MAX_NODES = 50_000  # nodes, counting every alias expanded (anchor bombs stop here)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_LIMITS_FIX = "simplify the file: fewer nested levels and aliases (real configurations are far below these limits)"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in one mapping (YAML merge keys `<<:` still work), and
    bounds nesting depth and alias uses while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[int] = set()
        self._depth = 0
        self._aliases = 0
        self._nodes = 0

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        # The scanner looks ahead over every open `[`/`{` (each may start a key): refuse deep flow nesting
        # here, before that look-ahead turns quadratic.
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases (an alias bomb?)", self.peek_event().start_mark  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_NODES} nodes", self.peek_event().start_mark  # type: ignore[no-untyped-call]
                )
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if id(node) not in self._checked:
            self._checked.add(id(node))
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            "while reading a mapping",
                            node.start_mark,
                            f"found duplicate key {one_line(key_node.value, 80)!r}",
                            key_node.start_mark,
                        )
                    seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class YamlDoc:
    """A parsed YAML file: the data and the line:column of every key and list item."""

    path: Path
    data: object
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def where(self, loc: Loc) -> str:
        """`file:line:col` of the deepest known part of `loc` (the file alone if none)."""
        for end in range(len(loc), 0, -1):
            pos = self.positions.get(loc[:end])
            if pos is not None:
                return f"{self.path}:{pos[0]}:{pos[1]}"
        return str(self.path)

    def get(self, loc: Loc) -> object:
        data = self.data
        for part in loc:
            if isinstance(data, dict):
                data = data.get(part)
            elif isinstance(data, list) and isinstance(part, int) and part < len(data):
                data = data[part]
            else:
                return None
        return data


def read_config_text(path: Path, *, purpose: str, limit: int = MAX_BYTES, key: str = "") -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes. FIFOs, devices and directories are
    refused before being opened for reading; NUL bytes and invalid UTF-8 are ConfigErrors (`key` names
    the setting that pointed here, e.g. SC_CI_SECRETS_FILE)."""
    shown = one_line(str(path), 300)
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{purpose} not found: {shown}",
            path=key,
            fix=f"create {shown}, or point the configuration at the right file",
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read {purpose} {shown}: {one_line(getattr(exc, 'strerror', None) or exc)}", path=key
        ) from exc
    _check_regular(info, shown, purpose, limit, key)
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot read {purpose} {shown}: {one_line(exc.strerror or exc)}", path=key) from exc
    try:
        opened = os.fstat(fd)
        _check_regular(opened, shown, purpose, limit, key)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(f"cannot read {purpose} {shown}: {one_line(exc.strerror or exc)}", path=key) from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise _too_big(shown, purpose, limit, key)
    return decode_config_bytes(data, shown, purpose=purpose, key=key)


def _check_regular(info: os.stat_result, shown: str, purpose: str, limit: int, key: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(
            f"{purpose} {shown} is a directory, not a file", path=key, fix="point the setting at the YAML file itself"
        )
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            f"{purpose} {shown} is not a regular file (a FIFO, socket or device)",
            path=key,
            fix="point the setting at a regular file; it is never read from a pipe or device",
        )
    if info.st_size > limit:
        raise _too_big(shown, purpose, limit, key)


def _too_big(shown: str, purpose: str, limit: int, key: str) -> ConfigError:
    return ConfigError(
        f"{purpose} {shown} is larger than {limit // 1024} KiB",
        path=key,
        fix="point the setting at the right file; configuration files are small",
    )


def decode_config_bytes(data: bytes, shown: str, *, purpose: str, key: str = "") -> str:
    """UTF-8 text (a leading BOM dropped); NUL bytes or invalid UTF-8 give a ConfigError with the line."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ConfigError(
            f"{shown}:{line}: {purpose} holds a NUL byte (a binary file?)",
            path=key,
            fix="point the setting at a UTF-8 text file",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{shown}:{line}: {purpose} is not valid UTF-8 (byte {exc.start})", path=key, fix="save the file as UTF-8"
        ) from exc


def load_yaml(path: Path, *, purpose: str) -> YamlDoc:
    """Read and parse `path`; ConfigError naming the file (and line:column for syntax errors)."""
    return parse_yaml(read_config_text(path, purpose=purpose), path)


def parse_yaml(text: str, path: Path) -> YamlDoc:
    """Parse one YAML document strictly and within bounds; every failure is a ConfigError."""
    if "\0" in text:
        raise ConfigError(
            f"{one_line(str(path), 300)}: malformed YAML: it holds a NUL character",
            fix="point the setting at a UTF-8 text file",
        )
    try:
        loader = _StrictLoader(text)
    except yaml.YAMLError as exc:  # the reader refuses some control characters up front
        raise ConfigError(f"{one_line(str(path), 300)}: malformed YAML: {one_line(exc)}",
                          fix="remove control characters; the file must be plain UTF-8 text") from exc
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, path)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{one_line(str(path), 300)}: malformed YAML: {one_line(exc)}", fix="fix the YAML syntax"
        ) from exc
    except RecursionError as exc:  # belt and braces: depth is bounded above
        raise ConfigError(f"{one_line(str(path), 300)}: YAML nested too deeply", fix=_LIMITS_FIX) from exc
    finally:
        loader.dispose()
    positions: dict[Loc, tuple[int, int]] = {}
    if node is not None:
        _walk(node, positions)
    return YamlDoc(path, data, positions)


def _check_expansion(root: Node, path: Path) -> None:
    """Refuse recursive aliases, and documents whose alias-expanded size or depth is past the limits.
    Iterative and memoised per node: linear in the document, whatever the aliases do."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            visiting.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES or depth[key] > MAX_DEPTH:
                mark = node.start_mark
                what = (
                    f"expands to more than {MAX_NODES} nodes through aliases (an alias bomb?)"
                    if size[key] > MAX_NODES
                    else f"nests deeper than {MAX_DEPTH} levels through aliases"
                )
                raise ConfigError(
                    f"{one_line(str(path), 300)}:{mark.line + 1}:{mark.column + 1}: YAML {what}", fix=_LIMITS_FIX
                )
            continue
        if key in size:
            continue
        visiting.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in visiting:
                mark = child.start_mark
                raise ConfigError(
                    f"{one_line(str(path), 300)}:{mark.line + 1}:{mark.column + 1}: YAML alias refers to itself",
                    why="a recursive alias makes an infinitely deep value",
                    fix="remove the self-reference",
                )
            if id(child) not in size:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _syntax_error(exc: yaml.MarkedYAMLError, path: Path) -> ConfigError:
    """file:line:col and the problem only: the offending line is never echoed (it may hold a secret)."""
    mark = exc.problem_mark or exc.context_mark
    shown = one_line(str(path), 300)
    where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
    problem = one_line(exc.problem or exc.context or "syntax error")
    context = one_line(exc.context) if exc.context else ""
    return ConfigError(
        f"{where}: malformed YAML: {problem}",
        why=f"{context} (line {exc.context_mark.line + 1})" if context and exc.context_mark else "",
        fix=(f"fix the YAML at line {mark.line + 1}" if mark else "fix the YAML syntax")
        + "\n(check indentation, a missing `:` or an unclosed quote or bracket)",
    )


def _walk(root: Node, out: dict[Loc, tuple[int, int]]) -> None:
    """Record line:column of every key and list item. Bounded: aliases are expanded at most MAX_NODES
    times (checked before) and depth at most MAX_DEPTH; iterative, so no recursion limit applies."""
    stack: list[tuple[Node, Loc]] = [(root, ())]
    budget = MAX_NODES
    while stack and budget > 0:
        node, loc = stack.pop()
        budget -= 1
        if len(loc) > MAX_DEPTH:
            continue
        # merge keys were already inlined by the constructor, explicit keys last, so they win here too
        if isinstance(node, MappingNode):
            last: dict[str, tuple[Node, Node]] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode):
                    last.pop(key_node.value, None)
                    last[key_node.value] = (key_node, value_node)
            for name, (key_node, value_node) in last.items():
                child = (*loc, name)
                out[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                stack.append((value_node, child))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                child_loc: Loc = (*loc, index)
                out[child_loc] = (item.start_mark.line + 1, item.start_mark.column + 1)
                stack.append((item, child_loc))
