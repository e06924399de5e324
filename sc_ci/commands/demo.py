"""`sc-ci demo`: a local registry, demo images, and the release on them — everything printed."""

from __future__ import annotations

import argparse
from collections.abc import Mapping


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    raise NotImplementedError
