"""`sc-ci image sign|verify`: signing (key or keyless) and verification (key or certificate identity) of digests."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from sc_ci import identity, parallel, secrets
from sc_ci.commands import common, output, signing
from sc_ci.commands.session import Session, open_session
from sc_ci.errors import UsageError
from sc_ci.steps import sign as sign_step
from sc_ci.steps.interface import StepResult

EPILOG_SIGN = """examples:
  sc-ci image sign --image registry.example.com/app:1.0                 # keyless, with the CI's OIDC token
  sc-ci image sign --image registry.example.com/app:1.0 --key cosign.key
  sc-ci image sign --image registry.example.com/app:1.0 --key env://COSIGN_PRIVATE_KEY --no-tlog
  sc-ci image sign --image reg/a:1 --image reg/b:1 --key awskms:///alias/release
  sc-ci image sign --config .sc/stacks/app/client.yaml --image reg/app:1 --dry-run
without a key, signing is keyless: one OIDC token (audience sigstore) per run, from the CI (GitHub, GitLab,
Buildkite, CircleCI) or SIGSTORE_ID_TOKEN / SC_CI_OIDC_TOKEN_FILE; verification then expects the identity
the CI context gives. The key password is read from COSIGN_PASSWORD; tags are resolved to digests once."""

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
    image = common.add_subparser(sub, "image", "sign or verify images")
    image_sub = image.add_subparsers(dest="action", required=True, parser_class=common.Parser)
    p = common.add_subparser(image_sub, "sign", "sign images with cosign (then verify them)", EPILOG_SIGN)
    common.images(p)
    p.add_argument("-k", "--key", help="private key: file, env://VAR, KMS URI (default: config / keyless)")
    p.add_argument("--public-key", help="public key for the verification after signing")
    p.add_argument("--no-verify", dest="verify", action="store_false", default=None,
                   help="do not verify right after signing")
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=sign)
    p = common.add_subparser(image_sub, "verify", "verify image signatures", EPILOG_VERIFY)
    common.images(p)
    p.add_argument("-k", "--key", help="public key: file, env://VAR or KMS URI (default: config)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--certificate-identity", metavar="SAN", help="keyless: the signer's exact identity")
    who.add_argument("--certificate-identity-regexp", metavar="RE", help="keyless: a regexp the identity matches")
    by = p.add_mutually_exclusive_group()
    by.add_argument("--certificate-oidc-issuer", metavar="URL", help="keyless: the exact OIDC issuer")
    by.add_argument("--certificate-oidc-issuer-regexp", metavar="RE", help="keyless: a regexp the issuer matches")
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=verify)


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
    session = open_session(args, env, flags)
    results = sign_images(session)
    output.report("sign", session, results)
    return output.exit_code(results)


def sign_images(session: Session) -> list[StepResult]:
    cosign = session.cosign()
    plan = signing.plan(session, cosign)
    images = session.resolve_digests()
    if session.dry_run:
        return output.dry_run(
            [cosign.sign_argv(i.by_digest, plan.key, plan.options) for i in images]
            + ([cosign.verify_argv(i.by_digest, plan.verify_key, plan.options) for i in images]
               if plan.verify_key else []))
    with session.docker_config() as docker_config:
        plan = plan.with_docker_config(docker_config)

        def one(image: str) -> list[StepResult]:
            signed = sign_step.sign(cosign, image, plan)
            if signed.failed or plan.verify_key is None:
                return [signed]
            return [signed, sign_step.verify(cosign, image, plan.verify_key, plan.options, docker_config)]

        per_image = parallel.map_bounded(one, [i.by_digest for i in images], session.workers)
    return [r for rs in per_image for r in rs]


def verify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags = _key_flags(args)
    flags["signing.enabled"] = False
    if args.key:
        flags["signing.publicKey"] = args.key
    given = given_identity(args)
    session = open_session(args, env, flags)
    results = verify_images(session, given)
    output.report("verify", session, results)
    return output.exit_code(results)


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


def verify_images(session: Session, given: identity.Given | None = None) -> list[StepResult]:
    plan = signing.verification_plan(session, given)
    key, options = plan.verifier(), plan.options
    cosign = session.cosign()
    images = session.resolve_digests()
    if session.dry_run:
        return output.dry_run([cosign.verify_argv(i.by_digest, key, options) for i in images])
    with session.docker_config() as docker_config:
        return parallel.map_bounded(
            lambda image: sign_step.verify(cosign, image, key, options, docker_config),
            [i.by_digest for i in images], session.workers)


def shown(argv: Sequence[str]) -> str:
    return secrets.mask(" ".join(argv))
