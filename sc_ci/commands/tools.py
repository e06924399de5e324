"""`sc-ci tools install`: the pinned tools, built or fetched once and cached by version."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from sc_ci.commands import common, router
from sc_ci.tools import installer


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    tools = common.add_subparser(sub, "tools", router.summary("tools"))
    tools_sub = tools.add_subparsers(dest="action", required=True, parser_class=common.Parser)
    p = common.add_subparser(tools_sub, "install", "build/install pinned cosign, syft, grype, trivy (cached)",
                             "example:\n  sc-ci tools install --with-optional")
    p.add_argument("--tool", action="append", help="only this tool (repeatable)")
    p.add_argument("--with-optional", action="store_true", help="also the optional tools (cosign v2, …)")
    p.add_argument("--force", action="store_true", help="rebuild even when cached")
    p.set_defaults(run=install)


def install(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    argv: list[str] = []
    for name in args.tool or []:
        argv += ["--tool", name]
    if args.with_optional:
        argv.append("--with-optional")
    if args.force:
        argv.append("--force")
    return installer.main(argv)
