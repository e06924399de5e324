"""`sc-ci image sign|verify`: key-based signing and verification of image digests."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from sc_ci import keys, parallel, secrets
from sc_ci.commands import common, output, signing
from sc_ci.commands.session import Session, open_session
from sc_ci.errors import ScError
from sc_ci.steps import sign as sign_step
from sc_ci.steps.interface import StepResult
from sc_ci.tools.cosign import SignOptions

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
    session = open_session(args, env, flags)
    results = verify_images(session)
    output.report("verify", session, results)
    return output.exit_code(results)


def verify_images(session: Session) -> list[StepResult]:
    key = keys.configured(session.loaded, "signing.publicKey", public=True)
    if key is None:
        key = keys.configured(session.loaded, "signing.privateKey", public=False)
        if key is None or not key.is_kms:
            raise ScError("no public key to verify with",
                          why="keyless verification (certificate identity + issuer) is not available in "
                              "this version",
                          fix="Pass --key cosign.pub (or env://VAR, a KMS URI), or set "
                              "security.signing.publicKey.")
    cosign = session.cosign()
    options = SignOptions(tlog=session.loaded.security.signing.sigstore.transparency_log)
    images = session.resolve_digests()
    if session.dry_run:
        return output.dry_run([cosign.verify_argv(i.by_digest, key, options) for i in images])
    with session.docker_config() as docker_config:
        return parallel.map_bounded(
            lambda image: sign_step.verify(cosign, image, key, options, docker_config),
            [i.by_digest for i in images], session.workers)


def shown(argv: Sequence[str]) -> str:
    return secrets.mask(" ".join(argv))
