"""Saving SBOM files: atomic writes, and output directories kept out of git (SBOMs list every package)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sc_ci.log import get_logger

log = get_logger("sbom")

DEFAULT_DIR = Path(".sc-ci") / "sbom"
GITIGNORE = (
    "# Written by sc-ci: SBOM files list every package of your images; keep them out of git.\n"
    "# Delete this file if you do want to commit them.\n"
    "*\n"
)


def prepare_dir(directory: Path) -> str:
    """Create `directory` if needed; add a `.gitignore` ignoring everything when sc-ci created the
    directory or it is empty. Returns a warning when SBOMs land in a directory holding other files
    without one (sc-ci never hides files it did not write)."""
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if ignore.exists():
        return ""
    if created or not any(directory.iterdir()):
        ignore.write_text(GITIGNORE, encoding="utf-8")
        return ""
    warning = (f"{directory} already holds other files and has no .gitignore: sc-ci did not add one; make sure "
               "the SBOM files are not committed (add them to your .gitignore)")
    log.warning(warning)
    return warning


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same directory and a rename, so a reader
    (or a parallel job writing the same name) never sees a partial file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
