"""What a large SBOM gets: attached whole, attached without the transparency log, a digest
reference, or a clear failure — decided before cosign runs, never by an obscure upload error."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sc_ci.config.model import Oversize
from sc_ci.errors import StepFailed


class Action(StrEnum):
    ATTACH = "attach"  # the whole SBOM as the predicate, as configured
    ATTACH_NO_TLOG = "attach-no-tlog"  # the whole SBOM, transparency log skipped for this attestation
    DIGEST = "digest"  # keep the SBOM local; attest a small reference holding its SHA-256


@dataclass(frozen=True)
class SizeDecision:
    action: Action
    size: int
    limit: int
    warning: str = ""  # set whenever the SBOM is over the limit


def human(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def decide(size: int, limit: int, oversize: Oversize, *, tlog: bool, source: str) -> SizeDecision:
    """`size` bytes against `limit`; over it, follow `oversize` (raises StepFailed for `fail`)."""
    if size <= limit:
        return SizeDecision(Action.ATTACH, size, limit)
    over = f"{source} is {human(size)}, above security.sbom.attach.maxSize ({human(limit)})"
    if oversize == "fail":
        raise StepFailed(over, why="transparency logs reject very large entries (the public Rekor refuses "
                               "request bodies above about 10 MB) and oversize: fail is configured",
                         fix="Choose a fallback, or raise the limit if your log accepts it:\n"
                             "security:\n  sbom:\n    attach:\n      oversize: digest   # or no-tlog\n"
                             "      maxSize: 8MiB")
    if oversize == "no-tlog":
        action, what = Action.ATTACH_NO_TLOG, "attaching it whole without the transparency log"
        if not tlog:
            action, what = Action.ATTACH, "attaching it whole (the transparency log is already off)"
        return SizeDecision(action, size, limit, f"{over}: {what} (oversize: no-tlog); verify it with "
                                                 "--insecure-ignore-tlog=true")
    return SizeDecision(Action.DIGEST, size, limit,
                        f"{over}: keeping it local and attesting its SHA-256 instead (oversize: digest); "
                        "publish the file with your build artifacts")
