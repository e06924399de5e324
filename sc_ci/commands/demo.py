"""`sc-ci demo`: the built-in demo (a local registry, demo images, the full release, the summary).

The test bed it runs on (registry, image builder, keys) is not part of the product: it lives in the
source checkout's `testbed` package and is imported only when the demo runs."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping
from pathlib import Path

from sc_ci.commands import common, router
from sc_ci.errors import ToolError


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    p = common.add_subparser(sub, "demo", router.summary("demo"),
                             "example:\n  make demo   (installs what it needs, then runs: sc-ci demo)")
    common.verbosity(p)
    p.set_defaults(run=run)


def _testbed_demo() -> object:
    """`testbed.demo` from the source checkout (the wheel and the action image do not ship it)."""
    try:
        return importlib.import_module("testbed.demo")
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2]
        if not (checkout / "testbed" / "demo.py").is_file():
            raise ToolError("the demo needs the source checkout of sc-security-action",
                            why="its test bed (local registry, demo images) is not part of the installed package",
                            fix="git clone the repository and run `make demo` in it") from None
        sys.path.insert(0, str(checkout))
        return importlib.import_module("testbed.demo")


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    code: int = _testbed_demo().run(env, args.verbose)  # type: ignore[attr-defined]
    return code
