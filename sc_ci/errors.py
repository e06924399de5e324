"""The one error family: every failure says what failed, why, and how to fix it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class ScError(Exception):
    """Base error. `what` is one line; `why` and `fix` may span lines (fix may be YAML)."""

    exit_code = EXIT_FAILED

    def __init__(self, what: str, *, why: str = "", fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.why = why
        self.fix = fix

    def diagnostics(self) -> str:
        """A one-screen explanation: what failed, the likely cause, the fix."""
        lines = [f"error: {self.what}"]
        if self.why:
            lines.append(f"  why: {_indent(self.why)}")
        if self.fix:
            lines.append(f"  fix: {_indent(self.fix)}")
        return "\n".join(lines)


def _indent(text: str) -> str:
    return text.strip().replace("\n", "\n       ")


class UsageError(ScError):
    """Bad command line: wrong or missing flags, invalid image reference."""

    exit_code = EXIT_USAGE


class ConfigError(ScError):
    """Invalid configuration; `path` is the dotted key path (e.g. security.signing.keyless)."""

    exit_code = EXIT_USAGE

    def __init__(self, what: str, *, path: str = "", why: str = "", fix: str = "") -> None:
        super().__init__(f"{path}: {what}" if path else what, why=why, fix=fix)
        self.path = path


class ToolError(ScError):
    """An external tool is missing, too old, or failed to run."""


class StepFailed(ScError):
    """A release step (sign, verify, …) failed; policy decides whether the job fails."""


class VerificationFailed(StepFailed):
    """A signature or attestation did not verify. Never retried."""
