"""The architecture, checked: sc_ci's import graph has no cycle (every import counted: module level, inside
functions and under TYPE_CHECKING), and results flow one way — steps make results, the engine judges them,
reporters render them — so the lower layers never import the ones above them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "sc_ci"

# layer -> packages it must never import (prefix match on dotted module names)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "sc_ci.results": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands", "sc_ci.tools",
                      "sc_ci.services", "sc_ci.signing", "sc_ci.session"),
    "sc_ci.report": ("sc_ci.engine", "sc_ci.steps", "sc_ci.commands", "sc_ci.tools", "sc_ci.services",
                     "sc_ci.session", "sc_ci.signing"),
    "sc_ci.engine": ("sc_ci.report", "sc_ci.commands"),
    "sc_ci.steps": ("sc_ci.report", "sc_ci.commands", "sc_ci.engine.plan", "sc_ci.engine.executor",
                    "sc_ci.engine.run", "sc_ci.engine.records"),
    "sc_ci.signing": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands"),
    "sc_ci.tools": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands", "sc_ci.session",
                    "sc_ci.signing.setup", "sc_ci.signing.plan"),
    "sc_ci.provenance": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands"),
    "sc_ci.scan": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands", "sc_ci.tools"),
    "sc_ci.sbom": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands"),
    "sc_ci.ci": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands", "sc_ci.tools"),
    "sc_ci.config": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands", "sc_ci.tools"),
    "sc_ci.services": ("sc_ci.engine", "sc_ci.steps", "sc_ci.report", "sc_ci.commands"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every sc_ci module `name` imports; `from pkg import sub` is an import of pkg.sub (a submodule)."""
    known = modules()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    yield sub
                elif base in known:
                    yield base


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(t for t in _imports(name, path) if t != name) for name, path in modules().items()}


def _cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The checker itself can fail: a three-module loop is one component."""
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert _cycles(edges) == [["a", "b", "c"]]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_never_import_the_layers_above(layer: str) -> None:
    bad = sorted(f"{name} imports {target}" for name, targets in graph().items()
                 if name == layer or name.startswith(layer + ".")
                 for target in targets if target.startswith(FORBIDDEN[layer]))
    assert bad == []


def test_reporters_depend_on_result_types_not_on_the_engine() -> None:
    """What reporters render comes from sc_ci.results (and the tool-independent scan/sbom models)."""
    imported = {t for name, targets in graph().items() if name.startswith("sc_ci.report") for t in targets}
    assert "sc_ci.results.step" in imported
    assert not {t for t in imported if t.startswith(("sc_ci.engine", "sc_ci.steps"))}
