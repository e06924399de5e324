"""`sc-ci image sign|verify`: signing (key or keyless) and verification (key or certificate identity) of digests."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from sc_ci import identity, parallel, secrets
from sc_ci.commands import common, output, signing
from sc_ci.commands.session import Session, open_session
from sc_ci.errors import ScError, StepFailed, UsageError
from sc_ci.imageref import ImageRef
from sc_ci.sbom.multiarch import platform_manifests
from sc_ci.steps import sign as sign_step
from sc_ci.steps.interface import Outcome, StepResult
from sc_ci.steps.sign import SigningPlan
from sc_ci.tools.cosign import Cosign

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
    image = common.add_subparser(sub, "image", "sign or verify images")
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
    if args.storage is not None:
        flags["signing.storage"] = args.storage
    if args.force:
        flags["signing.force"] = True
    session = open_session(args, env, flags)
    results = sign_images(session)
    output.report("sign", session, results)
    return output.exit_code(results)


def sign_images(session: Session) -> list[StepResult]:
    """Sign every image (skipping those already signed by the same key or identity, unless signing.force),
    each index with its platform manifests (signing.recursive), then verify each when asked."""
    cosign = session.cosign()
    plan = signing.plan(session, cosign)
    images = session.resolve_digests()
    if session.dry_run:
        return output.dry_run(_dry_run(session, cosign, plan, images))
    with session.docker_config() as docker_config:
        plan = plan.with_docker_config(docker_config)

        def one(ref: ImageRef) -> list[StepResult]:
            image = ref.by_digest
            try:
                platforms = platform_refs(session, ref)
            except ScError as exc:
                return [StepResult("sign", image, Outcome.FAILED, exc.what.removeprefix(f"{ref}: "), error=exc)]
            signed = sign_step.sign(cosign, image, plan, platforms)
            if signed.failed or plan.verify_key is None:
                return [signed]
            reused = sign_step.verified_before(image, signed, plan)
            if reused is not None:
                return [signed, reused]
            checked = platforms if plan.options.recursive else ()
            return [signed, sign_step.verify(cosign, image, plan.verify_key, plan.options, docker_config, checked)]

        per_image = parallel.map_bounded(one, list(images), session.workers)
    return [r for rs in per_image for r in rs]


def platform_refs(session: Session, ref: ImageRef) -> tuple[str, ...]:
    """The platform manifests (repo@sha256:…) of an index that signing.recursive signs too; () for a
    single-platform image or when recursion is off. Attestation and unknown-platform entries are left out
    (cosign --recursive signs them as well, but nobody pulls them by platform)."""
    if not session.loaded.security.signing.recursive:
        return ()
    manifest = session.registry.manifest(ref)
    if not manifest.is_index:
        return ()
    try:
        found = platform_manifests(manifest.body, str(ref))
    except StepFailed:
        return ()
    return tuple(f"{ref.name}@{p.digest}" for p in found)


def _dry_run(session: Session, cosign: Cosign, plan: SigningPlan, images: Sequence[ImageRef]) -> list[list[str]]:
    commands: list[list[str]] = []
    for ref in images:
        platforms = platform_refs(session, ref)
        if plan.check_existing is not None:  # signing is skipped when this already verifies
            commands.append(cosign.verify_argv(ref.by_digest, plan.check_existing, plan.options,
                                               legacy_only=cosign.formats(plan.options) == ("legacy",)))
        commands += cosign.sign_argvs(ref.by_digest, plan.key, plan.options, recursive=bool(platforms))
    if plan.verify_key is not None:
        commands += [cosign.verify_argv(i.by_digest, plan.verify_key, plan.options) for i in images]
    return commands


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
