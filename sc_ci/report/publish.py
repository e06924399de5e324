"""Publish a release manifest everywhere it belongs: the console, GitHub (outputs, job summary,
annotations), GitLab (dotenv report), and the `release.json` file — the only place commands write results."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from sc_ci import safefile
from sc_ci.ci.interface import CIContext, Platform
from sc_ci.report import github, junit, release
from sc_ci.report import manifest as manifest_io

DOTENV_LIMIT = 5 * 1024  # GitLab drops artifacts:reports:dotenv files over 5 KB


def publish(data: Mapping[str, Any], title: str, ci: CIContext, *, out: TextIO | None = None,
            err: TextIO | None = None, output_dir: Path | None = None, paths: Mapping[str, str] | None = None,
            console_extra: str = "", markdown_extra: str = "") -> dict[str, str]:
    """Write the summary everywhere; returns the file paths written (also given as outputs)."""
    stream = out or sys.stdout
    paths = dict(paths or {})
    if output_dir is not None:
        paths["release-json"] = str(manifest_io.write(output_dir / "release.json", dict(data)))
        safefile.write_text(output_dir / "junit.xml", junit.render(data))  # Jenkins/GitLab test reports
        paths["junit"] = str(output_dir / "junit.xml")
    if console_extra:
        print(console_extra + "\n", file=stream, flush=True)
    print(release.console(data, title), file=stream, flush=True)
    problems = release.errors(data)
    if problems:
        print(problems, file=err or sys.stderr, flush=True)
    outputs = release.outputs(data, paths)
    if ci.platform is Platform.GITHUB:
        annotations = github.failure_annotations(release.failures(data))
        for line in annotations:
            print(line, flush=True)
        github.write_outputs(ci.output_file, outputs)
        github.write_summary(ci.summary_file, release.markdown(data, title) + markdown_extra)
    dotenv = dotenv_path(ci.workspace) if ci.platform is Platform.GITLAB else None
    if dotenv is not None:
        safefile.write_text(dotenv, dotenv_text(outputs))  # never through a symlink
    return paths


def dotenv_path(workspace: str | None) -> Path | None:
    """sc-ci.env in CI_PROJECT_DIR, which the component's artifacts:reports paths are relative to; in the
    working directory when CI_PROJECT_DIR names no directory (gitlab-ci-local's shell executor sets it to
    the /builds/… path of its Docker executor and runs the job in the checkout); none without it."""
    if not workspace:
        return None
    if Path(workspace).is_dir():
        return Path(workspace, "sc-ci.env")
    return Path("sc-ci.env").absolute()


def dotenv_text(values: Mapping[str, str]) -> str:
    """KEY=VALUE lines for artifacts:reports:dotenv (no multi-line values; lists become commas)."""
    lines: list[str] = []
    size = 0
    for key, value in values.items():
        line = f"SC_CI_{key.upper().replace('-', '_')}={','.join(value.splitlines())}\n"
        if size + len(line.encode()) > DOTENV_LIMIT:
            continue  # the whole list stays in the job log and summary
        lines.append(line)
        size += len(line.encode())
    return "".join(lines)
