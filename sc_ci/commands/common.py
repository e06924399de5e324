"""Argument groups shared by command parsers, and the parser class that turns argparse errors into exit 2."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from sc_ci.errors import UsageError


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --imag must not silently mean --image
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, fix=f"Run `{self.prog} --help` for usage and examples.")


def add_subparser(sub: argparse._SubParsersAction[Parser], name: str, help_text: str,
                  epilog: str = "") -> Parser:
    return sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="security YAML or Simple Container client.yaml")
    p.add_argument("-s", "--stack", help="Simple Container stack (reads .sc/stacks/STACK/client.yaml)")
    p.add_argument("-e", "--env", dest="environment", help="Simple Container environment")
    p.add_argument("--secrets-file", help="YAML/JSON/KEY=VALUE file that ${secret:NAME} references read")
    p.add_argument("--dry-run", action="store_true", help="print what would run; run nothing")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="the whole run: then every tool is stopped and what did not finish fails")
    p.add_argument("--step-timeout", type=float, metavar="SECONDS",
                   help="one step on one image (its tools and retries): then that step fails")
    verbosity(p)


def verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="debug logging (tool output)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def images(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--image", dest="images", action="append", default=[], metavar="REF",
                   help="image reference (repeatable); a tag is resolved to its digest once")
    p.add_argument("--workers", type=int, default=None, help="images handled in parallel (default 4)")


def certificate_identity(p: argparse.ArgumentParser) -> None:
    """Keyless verification: the certificate's identity and issuer, each exact or a regexp (cosign's flags)."""
    who = p.add_mutually_exclusive_group()
    who.add_argument("--certificate-identity", metavar="SAN", help="keyless: the signer's exact identity")
    who.add_argument("--certificate-identity-regexp", metavar="RE", help="keyless: a regexp the identity matches")
    by = p.add_mutually_exclusive_group()
    by.add_argument("--certificate-oidc-issuer", metavar="URL", help="keyless: the exact OIDC issuer")
    by.add_argument("--certificate-oidc-issuer-regexp", metavar="RE", help="keyless: a regexp the issuer matches")


def tlog(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-tlog", dest="tlog", action="store_false", default=None,
                   help="no transparency log (private/offline Sigstore): skip upload and tlog checks")
