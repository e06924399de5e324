"""The `sc-ci` command line: argument parsing, dispatch, and the one error boundary (exit codes)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from types import FrameType

from sc_ci import __version__, log, sanitize, secrets
from sc_ci.commands import common, router
from sc_ci.errors import EXIT_FAILED, EXIT_USAGE, ScError
from sc_ci.report import github

DESCRIPTION = """Supply-chain release for container images: scan, sign, SBOM, provenance, verify.
Every command works on digests: a tag is resolved once, up front.

exit codes: 0 ok · 1 a step failed or a gate tripped · 2 usage or configuration error"""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the argv it will parse, only the command it names is imported and built."""
    parser = common.Parser(prog="sc-ci", description=DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sc-ci {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=common.Parser)
    router.register(sub, None if argv is None else router.chosen(argv))
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Parse, dispatch, and turn every ScError into its diagnostics and exit code."""
    env = dict(os.environ if env is None else env)
    _cancel_on_sigterm()
    verbose = 0
    try:
        words = sys.argv[1:] if argv is None else argv
        args = build_parser(words).parse_args(words)
        verbose = getattr(args, "verbose", 0)
        log.setup(-1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0))
        if env.get("GITHUB_ACTIONS") == "true":
            secrets.when_ci_masking_needed(github.install_masking)  # keyless: the token masked once minted
        return router.dispatch(args, env)
    except ScError as exc:
        print(sanitize.neutralize(secrets.mask(exc.diagnostics())), file=sys.stderr)
        if env.get("GITHUB_ACTIONS") == "true":
            print(github.error_command("sc-ci", exc.diagnostics()), flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: every child tool was stopped and temporary files removed", file=sys.stderr)
        return 130
    except SystemExit as exc:  # --help / --version, or SIGTERM (cancelled job)
        if isinstance(exc.code, int) and exc.code == 128 + signal.SIGTERM:
            print("cancelled (SIGTERM): every child tool was stopped and temporary files removed", file=sys.stderr)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:  # the last resort: one masked line, never a raw traceback
        print(sanitize.one_line(secrets.mask(f"error: internal error ({type(exc).__name__}): {exc}"), 500),
              file=sys.stderr)
        if verbose:
            print(sanitize.neutralize(secrets.mask("".join(traceback.format_exception(exc)))), file=sys.stderr)
        else:
            print("  fix: rerun with -v for the full trace (secrets masked) and report it as a bug", file=sys.stderr)
        return EXIT_FAILED


def _cancel_on_sigterm() -> None:
    """A CI cancelling the job sends SIGTERM: turn it into SystemExit so every `finally` (token files,
    private DOCKER_CONFIG, child tools) runs. Only from the main thread, and only over the default."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
