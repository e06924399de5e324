"""The `sc-ci` command line: argument parsing, dispatch, and the one error boundary (exit codes)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from sc_ci import __version__, log, secrets
from sc_ci.errors import EXIT_USAGE, ScError, UsageError

EPILOG_SIGN = """examples:
  sc-ci image sign --image registry.example.com/app:1.0 --key cosign.key
  sc-ci image sign --image registry.example.com/app:1.0 --key env://COSIGN_PRIVATE_KEY --no-tlog
  sc-ci image sign --image reg/a:1 --image reg/b:1 --key awskms:///alias/release
  sc-ci image sign --config .sc/stacks/app/client.yaml --image reg/app:1 --dry-run
the key password is read from COSIGN_PASSWORD; tags are resolved to digests once, up front."""

EPILOG_VERIFY = """examples:
  sc-ci image verify --image registry.example.com/app:1.0 --key cosign.pub
  sc-ci image verify --image registry.example.com/app@sha256:… --key cosign.pub --no-tlog
exit code 1 when any image has no valid signature for the key."""

EPILOG_DOCTOR = """examples:
  sc-ci doctor                       # tools, CI platform, OIDC readiness
  sc-ci doctor --config security.yaml  # also: is everything the config needs ready? (exit 1 if not)"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, fix=f"Run `{self.prog} --help` for usage and examples.")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="security YAML or Simple Container client.yaml")
    p.add_argument("-s", "--stack", help="Simple Container stack (reads .sc/stacks/STACK/client.yaml)")
    p.add_argument("-e", "--env", dest="environment", help="Simple Container environment")
    p.add_argument("--secrets-file", help="YAML/JSON/KEY=VALUE file that ${secret:NAME} references read")
    p.add_argument("--dry-run", action="store_true", help="print what would run; run nothing")
    p.add_argument("-v", "--verbose", action="count", default=0, help="debug logging (tool output)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def _images(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--image", dest="images", action="append", default=[], metavar="REF",
                   help="image reference (repeatable); a tag is resolved to its digest once")
    p.add_argument("--workers", type=int, default=None, help="images handled in parallel (default 4)")


def _tlog(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-tlog", dest="tlog", action="store_false", default=None,
                   help="no transparency log (private/offline Sigstore): skip upload and tlog checks")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sc-ci", description="Supply-chain release for container images: "
                     "scan, sign, SBOM, provenance, verify.",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sc-ci {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    image = sub.add_parser("image", help="sign or verify images")
    image_sub = image.add_subparsers(dest="action", required=True, parser_class=_Parser)
    sign = image_sub.add_parser("sign", help="sign images with cosign (then verify them)", epilog=EPILOG_SIGN,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _images(sign)
    sign.add_argument("-k", "--key", help="private key: file, env://VAR, KMS URI (default: config / keyless)")
    sign.add_argument("--public-key", help="public key for the verification after signing")
    sign.add_argument("--no-verify", dest="verify", action="store_false", default=None,
                      help="do not verify right after signing")
    _tlog(sign)
    _common(sign)
    verify = image_sub.add_parser("verify", help="verify image signatures", epilog=EPILOG_VERIFY,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    _images(verify)
    verify.add_argument("-k", "--key", help="public key: file, env://VAR or KMS URI (default: config)")
    _tlog(verify)
    _common(verify)

    doctor = sub.add_parser("doctor", help="what is ready: tools, CI context, OIDC", epilog=EPILOG_DOCTOR,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    doctor.add_argument("--tools-only", action="store_true", help="only check the pinned tools")
    _common(doctor)

    tools = sub.add_parser("tools", help="install the pinned tools")
    tools_sub = tools.add_subparsers(dest="action", required=True, parser_class=_Parser)
    install = tools_sub.add_parser("install", help="build/install pinned cosign, syft, grype, trivy (cached)")
    install.add_argument("--tool", action="append", help="only this tool (repeatable)")
    install.add_argument("--with-optional", action="store_true", help="also cosign v2 (compatibility tests)")
    install.add_argument("--force", action="store_true", help="rebuild even when cached")

    demo = sub.add_parser("demo", help="local registry + demo images + the release, summary printed")
    demo.add_argument("-v", "--verbose", action="count", default=0)
    demo.add_argument("-q", "--quiet", action="store_true")

    action = sub.add_parser("action", help="run as the CI step (GitHub action / GitLab component / Jenkins)")
    _common(action)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, dispatch, and turn every ScError into its diagnostics and exit code."""
    env = dict(os.environ)
    try:
        args = build_parser().parse_args(argv)
        log.setup(-1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0))
        from sc_ci.commands.router import dispatch

        return dispatch(args, env)
    except ScError as exc:
        print(secrets.mask(exc.diagnostics()), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
