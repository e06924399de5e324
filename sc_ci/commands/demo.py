"""`sc-ci demo`: a local registry, demo images, and the release on them — everything printed."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from sc_ci.commands import common


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    p = common.add_subparser(sub, "demo", "local registry + demo images + the release, summary printed")
    common.verbosity(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    raise NotImplementedError
