"""Pick the command implementation for the parsed arguments."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from sc_ci.commands import action, demo, doctor, image, tools


def dispatch(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    command = args.command
    if command == "image":
        return image.sign(args, env) if args.action == "sign" else image.verify(args, env)
    if command == "doctor":
        return doctor.run(args, env)
    if command == "tools":
        return tools.install(args, env)
    if command == "demo":
        return demo.run(args, env)
    if command == "action":
        return action.run(args, env)
    raise AssertionError(f"unhandled command {command}")
