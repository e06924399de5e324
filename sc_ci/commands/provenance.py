"""`sc-ci provenance attach|verify`: SLSA v1 provenance attestations signed like the image, and their checks."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sc_ci import identity, keys, parallel, secrets
from sc_ci.ci._common import git_sha, repo_slug, web_url
from sc_ci.ci.interface import CIContext
from sc_ci.commands import common, output, signing
from sc_ci.commands.session import Session, open_session
from sc_ci.errors import ConfigError, ScError, UsageError
from sc_ci.imageref import ImageRef
from sc_ci.log import get_logger
from sc_ci.provenance import check, dockerfile, envvars, materials, statement
from sc_ci.provenance.interface import COSIGN_TYPE, Json
from sc_ci.steps import provenance as step
from sc_ci.steps.interface import StepResult, skipped
from sc_ci.steps.sign import SigningPlan
from sc_ci.tools.cosign import Cosign
from sc_ci.tools.cosign_keys import Keyless

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
    prov = common.add_subparser(sub, "provenance", "attach or verify SLSA v1 provenance")
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


@dataclass(frozen=True)
class Explicit:
    """Build facts given on the command line."""

    source_repo: str | None = None
    git_sha: str | None = None
    workflow_name: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.source_repo or self.git_sha or self.workflow_name)


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
    explicit = Explicit(args.source_repo, args.git_sha, args.workflow_name)
    results = attach_images(session, explicit, dockerfile_path=args.dockerfile,
                            build_args=_build_args(args.build_args),
                            output_dir=Path(args.output) if args.output else None, verify=args.verify)
    output.report("provenance attach", session, results)
    return output.exit_code(results)


def attach_images(session: Session, explicit: Explicit, *, dockerfile_path: str | None = None,
                  build_args: Mapping[str, str] | None = None, output_dir: Path | None = None,
                  verify: bool | None = None) -> list[StepResult]:
    """Attach provenance to every image of the session. Outside CI without explicit facts: skipped."""
    started = step.now()
    config = session.loaded.security.provenance
    ctx, is_explicit = context(session, explicit)
    images = session.resolve_digests()
    if not ctx.is_ci and not is_explicit:
        log.warning("provenance skipped: %s", step.SKIP_REASON)
        return [skipped(step.STEP, i.by_digest, step.SKIP_REASON) for i in images]
    statement.describe(ctx)  # missing CI facts fail here, before any tool or network call
    cosign = session.cosign()
    plan = signing.plan(session, cosign)  # registers every credential it reads as a secret: before the env
    base_images = _base_images(session, dockerfile_path, build_args or {}, config.metadata.include_materials)
    sanitized = envvars.sanitize(session.env, ctx.platform) if config.metadata.include_env else None
    if sanitized is not None and sanitized.dropped:
        log.info("environment left out of the provenance: %s",
                 ", ".join(f"{name} ({why})" for name, why in sanitized.dropped.items()))
    options = statement.Options(builder_id=config.builder.id, include_materials=config.metadata.include_materials,
                                base_images=base_images, env=sanitized.values if sanitized else None)
    statement.predicate(ctx, statement.Timings(started, started), options)  # secrets in CI facts: fail closed
    request = step.Request(ctx, options, started, explicit=is_explicit,
                           verify=verify is not False and step.can_verify(plan), output_dir=output_dir)
    if session.dry_run:
        return _dry_run(cosign, plan, images, request)
    with session.docker_config() as docker_config:
        plan = plan.with_docker_config(docker_config)
        return parallel.map_bounded(lambda image: step.attach(cosign, image, plan, request), list(images),
                                    session.workers)


def context(session: Session, explicit: Explicit) -> tuple[CIContext, bool]:
    """The session's CI context with the explicitly given facts applied (see `apply`)."""
    return apply(session.ci, explicit, _builder_id(session))


def apply(ctx: CIContext, explicit: Explicit, builder_id: str | None) -> tuple[CIContext, bool]:
    """`ctx` with explicitly given facts applied, and whether provenance rests on the user's facts.

    In CI a flag replaces what the CI reported. Outside CI the flags are all-or-nothing: --source-repo,
    --git-sha and --workflow-name, plus a builder id (--builder-id or provenance.builder.id); with none
    of the three, provenance is skipped.
    """
    repo = _repo_url(explicit.source_repo) if explicit.source_repo else None
    sha = _sha(explicit.git_sha) if explicit.git_sha else None
    if not ctx.is_ci:
        if not explicit.given:
            return ctx, False
        missing = [flag for flag, value in (("--source-repo", repo), ("--git-sha", sha),
                                            ("--workflow-name", explicit.workflow_name),
                                            ("--builder-id", builder_id)) if not value]
        if missing:
            raise UsageError(f"provenance outside CI needs {', '.join(missing)} as well",
                             why="outside a CI every build fact must be given explicitly, or none (then "
                                 "provenance is skipped)",
                             fix="sc-ci provenance attach --image REF --key cosign.key --source-repo URL "
                                 "--git-sha SHA --workflow-name NAME --builder-id URI")
    if repo:
        ctx = replace(ctx, repo_url=repo, repository=repo_slug(repo) or repo)
    if sha:
        ctx = replace(ctx, commit=sha)
    if explicit.workflow_name:
        ctx = replace(ctx, workflow=explicit.workflow_name)
    if builder_id and not ctx.is_ci:
        ctx = replace(ctx, builder_id=builder_id)
    return ctx, not ctx.is_ci


def _builder_id(session: Session) -> str | None:
    value = session.loaded.security.provenance.builder.id
    if value is None or _URI.fullmatch(value):
        return value
    if session.loaded.origin("provenance.builder.id") == "flag":
        raise UsageError(f"--builder-id {value!r} is not a URI",
                         fix="Give a URI that names the build platform, e.g. https://ci.example.com/release")
    raise ConfigError(f"{value!r} is not a URI", path="security.provenance.builder.id",
                      why=session.loaded.describe_origin("provenance.builder.id"),
                      fix="provenance:\n  builder:\n    id: https://ci.example.com/release")


def _repo_url(value: str) -> str:
    url = web_url(value.strip())
    if url is None or "://" not in url or not repo_slug(url):
        raise UsageError(f"--source-repo {secrets.mask(value)!r} is not a repository URL",
                         fix="Give the repository's URL, e.g. https://github.com/acme/app")
    return url


def _sha(value: str) -> str:
    sha = git_sha(value.strip())
    if sha is None:
        raise UsageError(f"--git-sha {value!r} is not a full commit id",
                         why="provenance records the full 40-character SHA-1 (or 64-character SHA-256) id",
                         fix="Pass the full id: git rev-parse HEAD")
    return sha


def _build_args(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, eq, arg = value.partition("=")
        if not eq or not name:
            raise UsageError(f"--build-arg {value!r} is not NAME=VALUE", fix="--build-arg BASE_TAG=3.20")
        out[name] = arg
    return out


def _base_images(session: Session, path: str | None, build_args: Mapping[str, str],
                 include: bool) -> tuple[Json, ...]:
    if path is None:
        return ()
    if not include:
        log.warning("--dockerfile ignored: provenance.metadata.includeMaterials is false")
        return ()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read Dockerfile {path}: {exc.strerror or exc}",
                         fix="Pass the Dockerfile the images were built from: --dockerfile path/to/Dockerfile") from exc
    parsed = dockerfile.parse(text, build_args)
    for problem in parsed.problems:
        log.warning("%s: %s", path, problem)
    return tuple(materials.base_image_descriptors(parsed.images, session.registry.resolve, path))


def _dry_run(cosign: Cosign, plan: SigningPlan, images: Sequence[ImageRef],
             request: step.Request) -> list[StepResult]:
    placeholder = Path("<provenance.json>")
    commands = [cosign.attest_argv(i.by_digest, plan.key, placeholder, COSIGN_TYPE, plan.options) for i in images]
    output.dry_run(commands)
    started = request.started
    predicate = statement.predicate(request.context, statement.Timings(started, step.now()), request.options)
    print("provenance.json (the same predicate for every image):")
    print(secrets.mask(json.dumps(predicate, indent=2)))
    return []


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
        git_sha=_sha(args.git_sha) if args.git_sha else None,
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
