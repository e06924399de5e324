"""Context for a run outside any known CI: no build facts, only an explicitly given token source."""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from sc_ci.ci import oidc
from sc_ci.ci._common import Which
from sc_ci.ci.interface import CIContext, Platform


def matches(env: Mapping[str, str]) -> bool:
    return True


def detect(env: Mapping[str, str], which: Which = shutil.which) -> CIContext:
    return CIContext(
        platform=Platform.LOCAL,
        oidc=oidc.resolve(env, None, missing="not running in a CI with OIDC", fix=oidc.LOCAL_FIX),
    )
