"""`sc-ci image sign|verify`: signing (key or keyless) and verification (key or certificate identity) of digests."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from sc_ci.commands import common, output, router
from sc_ci.engine.context import RunOptions
from sc_ci.engine.plan import Request
from sc_ci.engine.policy import Policy
from sc_ci.errors import UsageError
from sc_ci.session import open_session
from sc_ci.signing import identity

EPILOG_SIGN = """examples:
  sc-ci image sign --image registry.example.com/app:1.0                 # keyless, with the CI's OIDC token
  sc-ci image sign --image registry.example.com/app:1.0 --key cosign.key
  sc-ci image sign --image registry.example.com/app:1.0 --key env://COSIGN_PRIVATE_KEY --no-tlog
  sc-ci image sign --image reg/a:1 --image reg/b:1 --key awskms:///alias/release
  sc-ci image sign --config .sc/stacks/app/client.yaml --image reg/app:1 --dry-run
  sc-ci image sign --image reg/app:1 --key cosign.key --storage both    # .sig tags and v3 bundles
without a key, signing is keyless: one OIDC token (audience sigstore) per run, from the CI (GitHub, GitLab,
Buildkite, CircleCI) or SIGSTORE_ID_TOKEN / SC_CI_OIDC_TOKEN_FILE; verification then expects the identity
the CI context gives. The key password is read from COSIGN_PASSWORD; tags are resolved to digests once.
An image that already carries a valid signature by the same key or identity is skipped (--force signs it
again); an index is signed with each of its platform manifests (signing.recursive)."""

EPILOG_VERIFY = """examples:
  sc-ci image verify --image registry.example.com/app:1.0 --key cosign.pub
  sc-ci image verify --image registry.example.com/app@sha256:… --key cosign.pub --no-tlog
  sc-ci image verify --image ghcr.io/acme/app:1.0 \\
    --certificate-identity https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main \\
    --certificate-oidc-issuer https://token.actions.githubusercontent.com
  sc-ci image verify --image ghcr.io/acme/app:1.0 --certificate-identity-regexp '^https://github.com/acme/' \\
    --certificate-oidc-issuer https://token.actions.githubusercontent.com
without --key or an identity, keyless signatures are checked against signing.verify (identityRegexp,
oidcIssuer) or the identity and issuer of the CI this runs in. Exit code 1 when any image has no valid
signature."""


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    image = common.add_subparser(sub, "image", router.summary("image"))
    image_sub = image.add_subparsers(dest="action", required=True, parser_class=common.Parser)
    p = common.add_subparser(image_sub, "sign", "sign images with cosign (then verify them)", EPILOG_SIGN)
    common.images(p)
    p.add_argument("-k", "--key", help="private key: file, env://VAR, KMS URI (default: config / keyless)")
    p.add_argument("--public-key", help="public key for the verification after signing")
    p.add_argument("--no-verify", dest="verify", action="store_false", default=None,
                   help="do not verify right after signing")
    p.add_argument("--storage", choices=("legacy", "referrers", "both"), default=None,
                   help="where signatures go: legacy .sig tags (default), referrers (Sigstore bundles, cosign "
                        "v3's format), or both")
    p.add_argument("--force", action="store_true", default=None,
                   help="sign even when a valid signature by the same key or identity exists")
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=sign)
    p = common.add_subparser(image_sub, "verify", "verify image signatures", EPILOG_VERIFY)
    common.images(p)
    p.add_argument("-k", "--key", help="public key: file, env://VAR or KMS URI (default: config)")
    common.certificate_identity(p)
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=verify)
    register_scan(image_sub)


EPILOG_SCAN = """examples:
  sc-ci image scan --image registry.example.com/app:1.0                       (grype; the default scanner)
  sc-ci image scan --image reg/app:1.0 --tools grype,trivy --fail-on high --output reports/
  sc-ci image scan --image reg/app:1.0 --offline --db-cache-dir ~/.cache/sc-ci/vulndb
both scanners run in parallel on the digest, straight from the registry; their findings are merged (a GHSA
and its CVE count once) and gated: exit 1 when a finding at or above --fail-on counts (after onlyFixed, the
ignore list and VEX). Reports: scan-report.json, scan.sarif, gl-container-scanning-report.json in --output."""


def register_scan(image_sub: argparse._SubParsersAction[common.Parser]) -> None:
    p = common.add_subparser(image_sub, "scan", "scan images for vulnerabilities (grype, trivy)", EPILOG_SCAN)
    common.images(p)
    scan_args(p)
    common.common(p)
    p.set_defaults(run=scan)


def scan_args(p: common.Parser) -> None:
    p.add_argument("--tools", help="scanners, comma separated: grype,trivy (default: security.scan.tools)")
    p.add_argument("--fail-on", choices=("critical", "high", "medium", "low"),
                   help="fail on this severity or worse (security.scan.failOn)")
    p.add_argument("--only-fixed", action="store_true", default=None,
                   help="only findings with a fix count for the gate (security.scan.onlyFixed)")
    p.add_argument("-o", "--output", help="directory for the scan reports (security.scan.output)")
    p.add_argument("--db-cache-dir", help="vulnerability DB cache: grype/ and trivy/ inside (scan.db.cacheDir)")
    p.add_argument("--offline", action="store_true", default=None,
                   help="never download or update a DB; use what the cache holds (scan.db.offline)")


def scan_flags(args: argparse.Namespace) -> dict[str, object]:
    flags: dict[str, object] = {"scan.enabled": True}
    if args.tools:
        flags["scan.tools"] = [t.strip() for t in args.tools.split(",") if t.strip()]
    for attr, key in (("fail_on", "scan.failOn"), ("only_fixed", "scan.onlyFixed"), ("output", "scan.output"),
                      ("db_cache_dir", "scan.db.cacheDir"), ("offline", "scan.db.offline")):
        if getattr(args, attr, None) is not None:
            flags[key] = getattr(args, attr)
    return flags


def scan(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    session = open_session(args, env, scan_flags(args))
    release, _ = output.run_release(session, Request(["scan"], Policy.closed()), title="sc-ci image scan")
    return release.verdict.exit_code


def _key_flags(args: argparse.Namespace) -> dict[str, object]:
    flags: dict[str, object] = {"signing.enabled": True}
    if getattr(args, "tlog", None) is not None:
        flags["signing.sigstore.transparencyLog"] = args.tlog
    return flags


def sign(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags = _key_flags(args)
    if args.key:
        flags["signing.privateKey"] = args.key
    if args.public_key:
        flags["signing.publicKey"] = args.public_key
    if args.verify is not None:
        flags["signing.verify.enabled"] = args.verify
    if args.storage is not None:
        flags["signing.storage"] = args.storage
    if args.force:
        flags["signing.force"] = True
    session = open_session(args, env, flags)
    steps = ["sign", "verify"] if session.loaded.security.signing.verify.enabled else ["sign"]
    release, _ = output.run_release(session, Request(steps, Policy.closed()), title="sc-ci image sign")
    return release.verdict.exit_code


def verify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags = _key_flags(args)
    flags["signing.enabled"] = False
    if args.key:
        flags["signing.publicKey"] = args.key
    options = RunOptions(given_identity=given_identity(args), only_verify=True)
    session = open_session(args, env, flags)
    release, _ = output.run_release(session, Request(["verify"], Policy.closed()), title="sc-ci image verify",
                                    options=options)
    return release.verdict.exit_code


def given_identity(args: argparse.Namespace) -> identity.Given:
    """The --certificate-* flags; they exclude --key (a signature is checked one way or the other)."""
    given = identity.Given(getattr(args, "certificate_identity", None),
                           getattr(args, "certificate_identity_regexp", None),
                           getattr(args, "certificate_oidc_issuer", None),
                           getattr(args, "certificate_oidc_issuer_regexp", None))
    if given.any and getattr(args, "key", None):
        raise UsageError("--key and --certificate-* exclude each other",
                         fix="Verify key-signed images with --key PUB, keyless ones with "
                             "--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp].")
    return given
