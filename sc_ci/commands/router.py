"""The commands, in help order: each is a module sc_ci.commands.NAME with `register(subparsers)` that sets
`run(args, env)`. Only the command being run is imported (`sc-ci --help` lists the summaries below and
imports none of them, so it answers at once)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping, Sequence

from sc_ci.commands import common

COMMANDS: tuple[tuple[str, str], ...] = (
    ("release", "the whole release of a stack or of given images"),
    ("image", "sign, verify or scan images"),
    ("sbom", "generate, attach and verify SBOMs"),
    ("stack", "run a step on every image of a Simple Container stack"),
    ("provenance", "attach or verify SLSA v1 provenance"),
    ("doctor", "what is ready: tools, CI context, OIDC"),
    ("tools", "install the pinned tools"),
    ("demo", "local registry + demo images + the release, summary printed"),
    ("action", "run as the CI step (GitHub action, GitLab component, Jenkins)"),
)
NAMES = tuple(name for name, _ in COMMANDS)


def summary(name: str) -> str:
    """The one-line help of a command (its module's parser uses it too)."""
    return dict(COMMANDS)[name]


def chosen(argv: Sequence[str]) -> str:
    """The command argv names (its first word), or "" when it names none: then nothing is imported."""
    first = next((arg for arg in argv if not arg.startswith("-")), "")
    return first if first in NAMES else ""


def register(sub: argparse._SubParsersAction[common.Parser], only: str | None = None) -> None:
    """Every command listed; the one named `only` (every one, when None) built in full."""
    for name, text in COMMANDS:
        if only is None or name == only:
            importlib.import_module(f"sc_ci.commands.{name}").register(sub)
        else:
            common.add_subparser(sub, name, text)


def dispatch(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    run: Callable[[argparse.Namespace, Mapping[str, str]], int] = args.run
    return run(args, env)
