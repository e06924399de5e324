"""GitHub Actions reporter: masks, step outputs, the job summary (≤ 1 MiB) and annotations."""

from __future__ import annotations

import secrets as pysecrets
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from sc_ci import safefile, secrets
from sc_ci.report.console import short
from sc_ci.results.step import Outcome, StepResult

SUMMARY_LIMIT = 1024 * 1024
MAX_ANNOTATIONS = 10


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def add_mask_command(value: str) -> str:
    return f"::add-mask::{escape_data(value)}"


_MASKING: list[tuple[TextIO, Callable[[str], None]]] = []  # (stream, its listener): install once per stream


def install_masking(out: TextIO | None = None) -> None:
    """Print ::add-mask:: for every secret, past and future, before anything could print it (idempotent)."""
    stream = out or sys.stdout
    if any(s is stream and secrets.listening(listener) for s, listener in _MASKING):
        return

    def emit(value: str) -> None:
        for line in value.splitlines() or [value]:
            if line.strip():
                print(add_mask_command(line.strip()), file=stream, flush=True)

    _MASKING.append((stream, emit))
    secrets.on_new_secret(emit)


def format_outputs(outputs: Mapping[str, str]) -> str:
    """name=value lines; multi-line values use a random heredoc delimiter."""
    chunks = []
    for name, value in outputs.items():
        value = secrets.mask(value)
        if "\n" in value or "\r" in value:
            delim = f"ghadelimiter_{pysecrets.token_hex(8)}"
            chunks.append(f"{name}<<{delim}\n{value}\n{delim}\n")
        else:
            chunks.append(f"{name}={value}\n")
    return "".join(chunks)


def write_outputs(path: str | None, outputs: Mapping[str, str]) -> None:
    if path:
        safefile.append_text(path, format_outputs(outputs))  # never through a symlink


def summary_markdown(title: str, results: Sequence[StepResult]) -> str:
    icon = {Outcome.OK: "✅", Outcome.FAILED: "❌", Outcome.SKIPPED: "⏭️"}
    rows = [f"## {title}", "", "| | step | image | result |", "|---|---|---|---|"]
    for r in results:
        rows.append(f"| {icon[r.outcome]} | {r.step} | `{short(r.image)}` | {r.summary.replace('|', '/')} |")
    commands = sorted({r.details["command"] for r in results if "command" in r.details})
    if commands:
        rows += ["", "<details><summary>Verify it yourself</summary>", "", "```sh", *commands, "```", "</details>"]
    return secrets.mask("\n".join(rows) + "\n")


def write_summary(path: str | None, markdown: str) -> None:
    if not path:
        return
    data = markdown.encode()
    if len(data) > SUMMARY_LIMIT:
        note = b"\n\n_Summary truncated: GitHub drops step summaries over 1 MiB._\n"
        data = data[: SUMMARY_LIMIT - len(note)].rsplit(b"\n", 1)[0] + note
    safefile.append_text(path, data.decode("utf-8", "ignore"))


def error_command(title: str, body: str) -> str:
    """An ::error annotation; title and message escaped, secrets masked."""
    return f"::error title={escape_property(title)}::{escape_data(secrets.mask(body))}"


def warning_command(title: str, body: str) -> str:
    return f"::warning title={escape_property(title)}::{escape_data(secrets.mask(body))}"


def failure_annotations(failures: Sequence[tuple[str, str, bool]]) -> list[str]:
    """::error for failures that fail the job, ::warning for tolerated ones (fail-open is loud), at most
    10 of each (GitHub shows no more per step)."""
    errors = [error_command(t, m) for t, m, blocking in failures if blocking][:MAX_ANNOTATIONS]
    warnings = [warning_command(t, m) for t, m, blocking in failures if not blocking][:MAX_ANNOTATIONS]
    return errors + warnings


def error_annotations(results: Sequence[StepResult]) -> list[str]:
    """One annotation per failed step, at most 10 (GitHub shows no more per step)."""
    failed = [r for r in results if r.failed][:MAX_ANNOTATIONS]
    return [error_command(f"sc-ci {r.step} failed", r.error.diagnostics() if r.error else r.summary)
            for r in failed]
