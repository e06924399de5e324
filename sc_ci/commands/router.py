"""The command modules, in help order; each has `register(subparsers)` and sets `run(args, env)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from sc_ci.commands import action, common, demo, doctor, image, provenance, release, sbom, stack, tools

Register = Callable[["argparse._SubParsersAction[common.Parser]"], None]
MODULES: tuple[Register, ...] = (
    release.register,
    image.register,
    sbom.register,
    stack.register,
    provenance.register,
    doctor.register,
    tools.register,
    demo.register,
    action.register,
)


def dispatch(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    run: Callable[[argparse.Namespace, Mapping[str, str]], int] = args.run
    return run(args, env)
