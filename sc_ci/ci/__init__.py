"""CI detection: which platform runs us, and its CIContext, from an environment mapping alone."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping

from sc_ci.ci import buildkite, circleci, github, gitlab, jenkins, local
from sc_ci.ci.interface import CIContext, OIDCKind, OIDCSource, Platform

__all__ = ["CIContext", "OIDCKind", "OIDCSource", "Platform", "detect"]

_Which = Callable[[str], str | None]
_Matcher = Callable[[Mapping[str, str]], bool]
_Detector = Callable[[Mapping[str, str], _Which], CIContext]

# First match wins: GitHub, GitLab, Buildkite, CircleCI, Jenkins, else local.
_PLATFORMS: tuple[tuple[_Matcher, _Detector], ...] = (
    (github.matches, github.detect),
    (gitlab.matches, gitlab.detect),
    (buildkite.matches, buildkite.detect),
    (circleci.matches, circleci.detect),
    (jenkins.matches, jenkins.detect),
)


def detect(env: Mapping[str, str], which: Callable[[str], str | None] = shutil.which) -> CIContext:
    """The context of the build running with `env` (pass `dict(os.environ)`; nothing here reads it).

    `which` looks up helper CLIs (`circleci`, `buildkite-agent`) that some token sources need.
    """
    for matches, detect_platform in _PLATFORMS:
        if matches(env):
            return detect_platform(env, which)
    return local.detect(env, which)
