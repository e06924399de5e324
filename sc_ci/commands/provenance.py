"""`sc-ci provenance attach|verify`: SLSA v1 provenance attestations signed like the image, and their checks."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from sc_ci import parallel
from sc_ci.commands import common, output, router
from sc_ci.engine.context import RunOptions
from sc_ci.engine.plan import Request
from sc_ci.engine.policy import Policy
from sc_ci.errors import ConfigError, ScError, UsageError
from sc_ci.log import get_logger
from sc_ci.provenance import check, facts
from sc_ci.provenance.interface import COSIGN_TYPE, Explicit
from sc_ci.results.step import StepResult
from sc_ci.session import Session, open_session
from sc_ci.signing import identity, keys
from sc_ci.signing import setup as signing
from sc_ci.signing.plan import SigningPlan
from sc_ci.signing.signers import Keyless
from sc_ci.steps import provenance as step
from sc_ci.tools.cosign import Cosign

log = get_logger("provenance")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")

EPILOG_ATTACH = """examples:
  # in CI (GitHub Actions, GitLab CI, Jenkins, CircleCI, Buildkite): everything comes from the job
  sc-ci provenance attach --image registry.example.com/app:1.0 --key cosign.key
  sc-ci provenance attach --image reg/app:1.0 --key cosign.key --dockerfile Dockerfile --build-arg BASE=3.20
  # anywhere else: give the build facts yourself (all four), or provenance is skipped with a warning
  sc-ci provenance attach --image reg/app:1.0 --key cosign.key --source-repo https://github.com/acme/app \\
      --git-sha 9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39 --workflow-name release \\
      --builder-id https://ci.example.com/release
signed exactly like `sc-ci image sign` (same key, password from COSIGN_PASSWORD, same Sigstore settings),
then read back with cosign verify-attestation --type slsaprovenance1. See docs/provenance.md."""

EPILOG_VERIFY = """examples:
  sc-ci provenance verify --image reg/app@sha256:… --key cosign.pub
  sc-ci provenance verify --image reg/app:1.0 --key cosign.pub --source-repo https://github.com/acme/app \\
      --builder-id https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main --git-sha 9f2c4a1…
exit code 1 when the signature does not verify or a given expectation differs (the message names the
field, the expected and the recorded value)."""


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    prov = common.add_subparser(sub, "provenance", router.summary("provenance"))
    prov_sub = prov.add_subparsers(dest="action", required=True, parser_class=common.Parser)
    p = common.add_subparser(prov_sub, "attach", "attach signed SLSA v1 provenance to images", EPILOG_ATTACH)
    common.images(p)
    p.add_argument("-k", "--key", help="private key: file, env://VAR, KMS URI (default: config / keyless)")
    _source_args(p)
    p.add_argument("--workflow-name", metavar="NAME", help="the workflow / pipeline / job that built the image")
    p.add_argument("--dockerfile", metavar="PATH",
                   help="Dockerfile the images were built from: its base images are recorded")
    p.add_argument("--build-arg", dest="build_args", action="append", default=[], metavar="NAME=VALUE",
                   help="ARG value the build used (repeatable; overrides the Dockerfile's default)")
    p.add_argument("--include-env", action=argparse.BooleanOptionalAction, default=None,
                   help="record allow-listed CI variables, secrets dropped (provenance.metadata.includeEnv)")
    p.add_argument("--no-materials", dest="materials", action="store_false", default=None,
                   help="record no resolvedDependencies (provenance.metadata.includeMaterials: false)")
    p.add_argument("--output", metavar="DIR", help="also save each in-toto statement in DIR")
    p.add_argument("--no-verify", dest="verify", action="store_false", default=None,
                   help="do not read the attestation back after attaching it")
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=attach)

    p = common.add_subparser(prov_sub, "verify", "verify provenance signatures and expectations", EPILOG_VERIFY)
    common.images(p)
    p.add_argument("-k", "--key", help="public key: file, env://VAR or KMS URI (default: config)")
    _source_args(p)
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=verify)


def _source_args(p: common.Parser) -> None:
    p.add_argument("--source-repo", metavar="URL", help="source repository (https://host/owner/repo)")
    p.add_argument("--git-sha", metavar="SHA", help="full commit id the image was built from")
    p.add_argument("--builder-id", metavar="URI", help="builder id (runDetails.builder.id)")


# ---------------------------------------------------------------------------------------------- attach


def attach(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags: dict[str, object] = {"provenance.enabled": True}
    if args.key:
        flags["signing.privateKey"] = args.key
    if args.tlog is not None:
        flags["signing.sigstore.transparencyLog"] = args.tlog
    if args.builder_id:
        flags["provenance.builder.id"] = args.builder_id
    if args.include_env is not None:
        flags["provenance.metadata.includeEnv"] = args.include_env
    if args.materials is not None:
        flags["provenance.metadata.includeMaterials"] = args.materials
    session = open_session(args, env, flags)
    options = RunOptions(Explicit(args.source_repo, args.git_sha, args.workflow_name), dockerfile=args.dockerfile,
                         build_args=_build_args(args.build_args),
                         statement_dir=Path(args.output) if args.output else None, provenance_verify=args.verify)
    release, _ = output.run_release(session, Request(["provenance"], Policy.closed()),
                                    title="sc-ci provenance attach", options=options)
    return release.verdict.exit_code


def _build_args(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, eq, arg = value.partition("=")
        if not eq or not name:
            raise UsageError(f"--build-arg {value!r} is not NAME=VALUE", fix="--build-arg BASE_TAG=3.20")
        out[name] = arg
    return out


# ---------------------------------------------------------------------------------------------- verify


def verify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags: dict[str, object] = {"signing.verify.enabled": True}
    if args.key:
        flags["signing.publicKey"] = args.key
    if args.tlog is not None:
        flags["signing.sigstore.transparencyLog"] = args.tlog
    expect = check.Expectations(
        source_repo=args.source_repo,
        builder_id=args.builder_id,
        git_sha=facts.full_sha(args.git_sha) if args.git_sha else None,
    )
    session = open_session(args, env, flags)
    results = verify_images(session, expect)
    output.report("provenance verify", session, results)
    return output.exit_code(results)


def verify_images(session: Session, expect: check.Expectations) -> list[StepResult]:
    cosign = session.cosign()
    plan = verification_plan(session, cosign)
    images = session.resolve_digests()
    if session.dry_run:
        return output.dry_run([cosign.verify_attestation_argv(i.by_digest, plan.verifier(), COSIGN_TYPE,
                                                              plan.options) for i in images])
    with session.docker_config() as docker_config:
        plan = plan.with_docker_config(docker_config)
        return parallel.map_bounded(lambda image: step.verify(cosign, image, plan, expect), list(images),
                                    session.workers)


def verification_plan(session: Session, cosign: Cosign) -> SigningPlan:
    """What verifies the provenance, with image signing's Sigstore settings: the configured public key;
    else the signing key's public half (or the KMS key); else, keyless, the expected certificate identity
    (verify.identityRegexp / oidcIssuer, or the CI's own workflow identity)."""
    options = signing.sigstore_options(session.loaded)
    public = keys.configured(session.loaded, "signing.publicKey", public=True)
    if public is not None:
        return SigningPlan(public, public, options)
    if keys.configured(session.loaded, "signing.privateKey", public=False) is not None:
        return signing.plan(session, cosign)
    try:
        expected = identity.expected(session.ci, session.loaded.security.signing.verify)
    except ConfigError as exc:
        raise ScError("nothing to verify the provenance with: no public key and no keyless identity",
                      why=exc.what,
                      fix="Pass --key cosign.pub (or env://VAR, a KMS URI), or set security.signing.publicKey; "
                          "for keyless signatures set security.signing.verify.identityRegexp and oidcIssuer.") from exc
    return SigningPlan(Keyless(None, "verification only"), expected, options, identity=expected)
