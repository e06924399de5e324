"""Where command results go: console always, GitHub outputs/summary when running there."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from sc_ci import secrets
from sc_ci.ci.interface import Platform
from sc_ci.commands.session import Session
from sc_ci.errors import EXIT_FAILED, EXIT_OK
from sc_ci.report import console, github
from sc_ci.steps.interface import StepResult


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
    """Direct commands fail closed: any failed step is exit 1 (release flows apply the policy)."""
    sys.stdout.flush()
    return EXIT_FAILED if any(r.failed for r in results) else EXIT_OK
