"""`sc-ci tools install`: the pinned tools, built or fetched once and cached by version."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from sc_ci.tools import installer


def install(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    argv: list[str] = []
    for name in args.tool or []:
        argv += ["--tool", name]
    if args.with_optional:
        argv.append("--with-optional")
    if args.force:
        argv.append("--force")
    return installer.main(argv)
