"""`sc-ci stack …`: run a step over every image of a Simple Container stack environment."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from sc_ci.commands import common, image, output, router
from sc_ci.engine.plan import Request
from sc_ci.engine.policy import Policy
from sc_ci.errors import UsageError
from sc_ci.session import open_session

EPILOG = """examples:
  sc-ci stack sign -s mystack -e production --registry registry.example.com/team --version 1.4.0
  sc-ci stack sign -s mystack -e staging --workers 8 --dry-run
images come from .sc/stacks/STACK/client.yaml as Simple Container names them: each compose service in `runs:`
is REGISTRY/STACK--SERVICE:VERSION, a single-image stack REGISTRY/STACK:VERSION (docs/simple-container.md)."""

EPILOG_SCAN = """examples:
  sc-ci stack scan -s mystack -e production --registry registry.example.com/team --version 1.4.0
  sc-ci stack scan -s mystack -e staging --tools grype,trivy --fail-on critical --output reports/
every image of the stack, including upstream images the stack runs but does not build (e.g. ghost:5-alpine)."""

EPILOG_SBOM = """examples:
  sc-ci stack sbom -s mystack -e production --output sbom/ --key cosign.key
  sc-ci stack sbom -s mystack -e staging --output sbom/ --no-attach --format spdx-json
SBOM files are named by image and digest; a new output directory gets a .gitignore (keep SBOMs out of git)."""


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    stack = common.add_subparser(sub, "stack", router.summary("stack"))
    stack_sub = stack.add_subparsers(dest="action", required=True, parser_class=common.Parser)
    p = common.add_subparser(stack_sub, "sign", "sign (and verify) every image of STACK/ENV", EPILOG)
    _stack_args(p)
    p.add_argument("-k", "--key", help="private key: file, env://VAR, KMS URI (default: config / keyless)")
    common.tlog(p)
    p.set_defaults(run=sign)
    p = common.add_subparser(stack_sub, "sbom", "generate (and attach) the SBOMs of every image of STACK/ENV",
                             EPILOG_SBOM)
    _stack_args(p)
    p.add_argument("-o", "--output", help="directory for the SBOM files (default: security.sbom.output.local)")
    p.add_argument("-f", "--format", dest="formats", action="append", type=str.lower,
                   choices=("cyclonedx-json", "spdx-json", "syft-json"), help="repeatable (default: sbom.format)")
    p.add_argument("--no-attach", dest="attach", action="store_false", default=None,
                   help="keep the SBOMs local (default: security.sbom.attach / output.registry)")
    p.add_argument("-k", "--key", help="private key for the attestations (default: config / keyless)")
    common.tlog(p)
    p.set_defaults(run=sbom_cmd)
    p = common.add_subparser(stack_sub, "scan", "scan every image of STACK/ENV (upstream images too)",
                             EPILOG_SCAN)
    _stack_args(p)
    image.scan_args(p)
    p.set_defaults(run=scan)


def _stack_args(p: common.Parser) -> None:
    common.common(p)
    p.add_argument("--registry",
                   help="registry/prefix of the images the stack builds (REGISTRY/STACK--SERVICE:VERSION)")
    p.add_argument("--version", dest="image_version", help="tag for images named by service")
    p.add_argument("--workers", type=int, default=None, help="images handled in parallel (default 4)")


def stack_flags(args: argparse.Namespace) -> dict[str, object]:
    if not args.stack or not args.environment:
        raise UsageError("stack commands need both --stack and --env",
                         fix="sc-ci stack sign -s STACK -e ENV (the stack lives in .sc/stacks/STACK/client.yaml)")
    flags: dict[str, object] = {}
    if args.registry:
        flags["registry"] = args.registry
    if args.image_version:
        flags["version"] = args.image_version
    return flags


def sign(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags = {**stack_flags(args), "signing.enabled": True}
    if args.key:
        flags["signing.privateKey"] = args.key
    if args.tlog is not None:
        flags["signing.sigstore.transparencyLog"] = args.tlog
    session = open_session(args, env, flags)
    steps = ["sign", "verify"] if session.loaded.security.signing.verify.enabled else ["sign"]
    release, _ = output.run_release(session, Request(steps, Policy.closed()),
                                    title=f"sc-ci stack sign {args.stack}/{args.environment}")
    return release.verdict.exit_code


def sbom_cmd(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags: dict[str, object] = {**stack_flags(args), "sbom.enabled": True}
    if args.formats:
        flags["sbom.format"], flags["sbom.extraFormats"] = args.formats[0], args.formats[1:]
    if args.output:
        flags["sbom.output.local"] = args.output if args.output.endswith("/") else args.output + "/"
    if args.attach is not None:
        flags["sbom.attach.enabled"] = args.attach
    if args.key:
        flags["signing.privateKey"] = args.key
    if args.tlog is not None:
        flags["signing.sigstore.transparencyLog"] = args.tlog
    session = open_session(args, env, flags)
    steps = ["sbom", "sbom-attach"] if session.loaded.security.sbom.to_registry else ["sbom"]
    release, _ = output.run_release(session, Request(steps, Policy.closed()),
                                    title=f"sc-ci stack sbom {args.stack}/{args.environment}")
    return release.verdict.exit_code


def scan(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    session = open_session(args, env, {**stack_flags(args), **image.scan_flags(args)})
    release, _ = output.run_release(session, Request(["scan"], Policy.closed()),
                                    title=f"sc-ci stack scan {args.stack}/{args.environment}")
    return release.verdict.exit_code
