"""What the Dockerfile copies and installs is complete: checked without building (runs in `make test`)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tools_stage_files() -> set[str]:
    """The sc_ci files the Dockerfile's tools stage copies before it runs the installer."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    stage = text.split(" AS tools", 1)[1].split("\nFROM ", 1)[0]
    files: set[str] = set()
    for line in stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            *sources, dest = line.split()[1:]
            files |= {s for s in sources if s.startswith("sc_ci/")}
            assert all(Path(s).parent.as_posix() + "/" == dest for s in sources), line
    return files


def test_tools_stage_copies_exactly_what_the_installer_imports() -> None:
    """The tools layer is rebuilt only when these files change, so the list must be the installer's
    whole import closure (a new import in it fails here, not halfway through an image build)."""
    code = ("import sys, sc_ci.tools.installer as i; "
            "print('\\n'.join(sorted(m.__file__ for n, m in sys.modules.items() if n.startswith('sc_ci'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    imported = {Path(p).resolve().relative_to(ROOT).as_posix() for p in done.stdout.split()}
    imported.add("sc_ci/tools/pins.toml")
    assert _tools_stage_files() == imported


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_lock_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lock = (ROOT / "requirements" / "image.lock").read_text(encoding="utf-8")
    pinned = {m.group(1).lower().replace("_", "-"): m.group(2)
              for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", lock, re.MULTILINE)}
    needed = _names(project["project"]["dependencies"]) | _names(project["build-system"]["requires"])
    missing = needed - set(pinned)
    assert not missing, f"not in requirements/image.lock (run tools/image/lock.sh): {sorted(missing)}"
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 3)[-1].strip())
    for entry in entries:
        if entry.startswith("#"):
            continue
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_context_allowlist_covers_every_copy() -> None:
    """.dockerignore is an allowlist: every COPY source must be let in."""
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), source


def test_context_allowlist_covers_every_bind_mount() -> None:
    """RUN --mount=type=bind,source=… (no from=) reads the build context too."""
    allowed = {line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    mounts = [m.group(1) for m in re.finditer(r"--mount=type=bind,source=([^,\s]+)", text)]
    assert mounts
    assert set(mounts) <= allowed


def test_os_packages_are_pinned_by_version() -> None:
    """hadolint's DL3008 cannot see into os-layer.sh: every package there carries =VERSION."""
    script = (ROOT / "tools" / "image" / "os-layer.sh").read_text(encoding="utf-8").replace("\\\n", " ")
    install = next(line for line in script.splitlines() if "apt-get install" in line)
    packages = [w for w in install.split()[2:] if not w.startswith("-")]
    assert packages
    assert all(re.match(r"^[a-z0-9.+-]+=\S+$", p) for p in packages), packages
    assert "--no-install-recommends" in install


def test_tools_stage_cross_compiles_for_the_target() -> None:
    """The tools run on the build platform and build for TARGETOS/TARGETARCH (one stage per platform)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM --platform=${BUILDPLATFORM} ${BUILD_BASE} AS tools" in text
    assert '--platform "$TARGETOS/$TARGETARCH"' in text
