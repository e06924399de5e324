"""`python -m sc_ci` in a child process, as a CI step runs it: the parent's SC_CI_*, INPUT_*, CI platform and
COSIGN_PASSWORD variables removed, `env` added."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def sc_ci(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_"))}
    full.pop("CI", None)
    full.pop("COSIGN_PASSWORD", None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], cwd=cwd, env=full, text=True,
                          capture_output=True, timeout=600, check=False)
