"""Reads YAML strictly (duplicate keys rejected) and remembers where every key sits, as file:line:column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sc_ci.config.diagnose import Loc
from sc_ci.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_DEPTH = 64


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in one mapping (YAML merge keys `<<:` still work)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[int] = set()

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
                            f"found duplicate key {key_node.value!r}",
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


def load_yaml(path: Path, *, purpose: str) -> YamlDoc:
    """Read and parse `path`; ConfigError naming the file (and line:column for syntax errors)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{purpose} not found: {path}",
            fix=f"create {path}, or point the configuration at the right file",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {purpose} {path}: {exc.strerror or exc}") from exc
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> YamlDoc:
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}", fix="fix the YAML syntax") from exc
    finally:
        loader.dispose()
    positions: dict[Loc, tuple[int, int]] = {}
    if node is not None:
        _walk(node, (), positions, 0)
    return YamlDoc(path, data, positions)


def _syntax_error(exc: yaml.MarkedYAMLError, path: Path) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    problem = exc.problem or exc.context or "syntax error"
    snippet = mark.get_snippet() if mark else None
    return ConfigError(
        f"{where}: malformed YAML: {problem}",
        why=f"{exc.context} (line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else "",
        fix=(
            f"fix the YAML at line {mark.line + 1}:\n{snippet}" if mark and snippet else "fix the YAML syntax"
        )
        + "\n(check indentation, a missing `:` or an unclosed quote or bracket)",
    )


def _walk(node: Node, loc: Loc, out: dict[Loc, tuple[int, int]], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, MappingNode):
        # merge keys were already inlined by the constructor, explicit keys last, so they win here too
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                child = (*loc, key_node.value)
                out[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                _walk(value_node, child, out, depth + 1)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*loc, index)
            out[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(item, child, out, depth + 1)
