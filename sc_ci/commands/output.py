"""How commands hand work to the engine and results to the reporters: run a plan and publish its
manifest, and (for the verify-only commands still outside the engine) report step results."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from sc_ci import secrets
from sc_ci.ci.interface import Platform
from sc_ci.engine import run
from sc_ci.engine.context import RunOptions
from sc_ci.engine.plan import Request
from sc_ci.engine.policy import Policy, verdict
from sc_ci.report import console, github, manifest, publish, scan_files
from sc_ci.results.run import Release
from sc_ci.results.step import StepResult
from sc_ci.session import Session
from sc_ci.steps import registry


def run_release(session: Session, request: Request, *, title: str, options: RunOptions | None = None,
                meta: Mapping[str, object] | None = None, out: TextIO | None = None,
                output_dir: Path | None = None) -> tuple[Release, dict[str, Any]]:
    """Plan and run `request`, then publish the manifest (console, CI files, release.json)."""
    release = run.execute(session, request, options, session.loaded.runtime.cache_dir)
    data = manifest.build(release, {"command": title.removeprefix("sc-ci "), **(meta or {})})
    publish_release(session, release, data, title, out=out, output_dir=output_dir)
    return release, data


def publish_release(session: Session, release: Release, data: dict[str, Any], title: str, *,
                    out: TextIO | None = None, output_dir: Path | None = None) -> None:
    """The manifest, plus the scan reports (JSON, SARIF, GitLab) when the run scanned anything."""
    runtime = session.loaded.runtime
    output_dir = output_dir or runtime.output_dir
    scan_output = session.loaded.security.scan.output
    reports_dir = Path(scan_output) if scan_output else output_dir
    paths: dict[str, str] = {}
    if reports_dir is not None and not release.dry_run:
        release_id = str(data.get("version") or release.started.strftime("%Y%m%dT%H%M%SZ"))
        paths = scan_files.write(release, reports_dir, release_id=release_id)
    publish.publish(data, title, session.ci, out=out, output_dir=output_dir, paths=paths,
                    console_extra=scan_files.console(release), markdown_extra=scan_files.markdown(release))
    sys.stdout.flush()


def dry_run(commands: Sequence[Sequence[str]]) -> list[StepResult]:
    print("dry run: nothing was executed; these commands would run:")
    for argv in commands:
        print("  " + secrets.mask(" ".join(argv)))
    return []


def report(title: str, session: Session, results: Sequence[StepResult], out: TextIO | None = None) -> None:
    """`out`: where the console lines go (stderr when stdout carries a document, e.g. an SBOM)."""
    console.report(results, out=out)
    if session.ci.platform is Platform.GITHUB and results:
        for line in github.error_annotations(results):
            print(line)
        github.write_outputs(session.ci.output_file, outputs(results))
        github.write_summary(session.ci.summary_file, github.summary_markdown(f"sc-ci {title}", results))


def outputs(results: Sequence[StepResult]) -> dict[str, str]:
    digests = sorted({r.image for r in results})
    signed = sorted({r.image for r in results if r.step == "sign" and not r.failed})
    commands = sorted({r.details["command"] for r in results if "command" in r.details})
    return {"digests": "\n".join(digests), "signed": "\n".join(signed), "verify-commands": "\n".join(commands)}


def exit_code(results: Sequence[StepResult]) -> int:
    """Direct commands fail closed (docs/configuration.md, "Exit codes"): the closed policy's verdict."""
    sys.stdout.flush()
    return verdict(results, Policy.closed(), registry.FEATURES).exit_code
