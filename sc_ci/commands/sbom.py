"""`sc-ci sbom generate|attach|verify`: SBOMs of image digests with syft, validated, attached as signed
attestations of the type that matches their format, and verified the same way."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sc_ci import parallel
from sc_ci.commands import common, output, router
from sc_ci.engine.context import RunOptions
from sc_ci.engine.plan import Request
from sc_ci.engine.policy import Policy
from sc_ci.errors import ConfigError, StepFailed, UsageError
from sc_ci.imageref import ImageRef
from sc_ci.log import get_logger
from sc_ci.results.step import Outcome, StepResult
from sc_ci.sbom import formats, multiarch, store
from sc_ci.sbom.formats import SbomFormat
from sc_ci.session import Session, open_session
from sc_ci.signing import setup as signing
from sc_ci.signing.plan import SigningPlan
from sc_ci.steps import sbom as sbom_step
from sc_ci.steps.sbom import Sbom, SbomSettings, Target
from sc_ci.tools.cosign import Cosign

log = get_logger("sbom")

EPILOG_GENERATE = """examples:
  sc-ci sbom generate --image registry.example.com/app:1.0                  (CycloneDX 1.6 JSON on stdout)
  sc-ci sbom generate --image reg/app:1.0 --format spdx-json --output app.spdx.json
  sc-ci sbom generate --image reg/a:1 --image reg/b:1 --format cyclonedx-json --format spdx-json --output sbom/
  sc-ci sbom generate --image reg/app:1.0 --output sbom/ --attach --key cosign.key
every format comes from one syft run; each SBOM is validated before it is written or attached.
file names: <registry>+<repository>@sha256-<digest>[.<platform>].<cdx|spdx|syft>.json; a new output
directory gets a .gitignore (SBOMs list every package: keep them out of git)."""

EPILOG_ATTACH = """examples:
  sc-ci sbom attach --image registry.example.com/app@sha256:… --sbom app.cdx.json --key cosign.key
the format is read from the file's content: CycloneDX → --type cyclonedx, SPDX → spdxjson,
Syft JSON → https://syft.dev/bom. The key password is read from COSIGN_PASSWORD."""

EPILOG_VERIFY = """examples:
  sc-ci sbom verify --image registry.example.com/app:1.0 --key cosign.pub
  sc-ci sbom verify --image reg/app:1.0 --key cosign.pub --format spdx-json --output verified.spdx.json
  sc-ci sbom verify --image reg/app:1.0 --key cosign.pub --output -          (the verified SBOM on stdout)
a multi-arch index: each platform manifest's SBOM and the index's SBOM reference are verified."""


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    sbom = common.add_subparser(sub, "sbom", router.summary("sbom"))
    sbom_sub = sbom.add_subparsers(dest="action", required=True, parser_class=common.Parser)

    p = common.add_subparser(sbom_sub, "generate", "generate validated SBOMs with syft", EPILOG_GENERATE)
    common.images(p)
    _format_arg(p, many=True)
    p.add_argument("--cyclonedx-version", choices=("1.4", "1.5", "1.6", "1.7"),
                   help="CycloneDX spec version (default: security.sbom.cyclonedxVersion, 1.6)")
    p.add_argument("-o", "--output", help="file (one SBOM) or directory (ends with /, or several SBOMs); "
                                          "default: security.sbom.output.local, else stdout")
    p.add_argument("--attach", action="store_true", help="also attach each SBOM as a signed attestation")
    _attach_args(p)
    common.common(p)
    p.set_defaults(run=generate)

    p = common.add_subparser(sbom_sub, "attach", "attach an SBOM file as a signed attestation", EPILOG_ATTACH)
    common.images(p)
    p.add_argument("--sbom", required=True, metavar="FILE", help="the SBOM (CycloneDX, SPDX or Syft JSON)")
    _attach_args(p)
    common.common(p)
    p.set_defaults(run=attach)

    p = common.add_subparser(sbom_sub, "verify", "verify SBOM attestations (and print or save the SBOM)",
                             EPILOG_VERIFY)
    common.images(p)
    _format_arg(p, many=False)
    p.add_argument("-o", "--output", help="save the verified SBOM here (`-`: stdout; a directory for several)")
    p.add_argument("--sbom", metavar="FILE", help="also check that this local file is the attested SBOM")
    p.add_argument("-k", "--key", help="public key: file, env://VAR or KMS URI (default: config)")
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=verify)


def _format_arg(p: common.Parser, *, many: bool) -> None:
    p.add_argument("-f", "--format", dest="formats", action="append" if many else "store",
                   type=str.lower, choices=formats.FORMAT_NAMES,
                   help="cyclonedx-json | spdx-json | syft-json" + (" (repeatable)" if many else "")
                        + " (default: security.sbom.format)")


def _attach_args(p: common.Parser) -> None:
    p.add_argument("-k", "--key", help="private key: file, env://VAR, KMS URI (default: config / keyless)")
    p.add_argument("--max-size", help="largest SBOM attached whole, e.g. 4MiB (security.sbom.attach.maxSize)")
    p.add_argument("--oversize", choices=("digest", "no-tlog", "fail"),
                   help="what a larger SBOM gets (security.sbom.attach.oversize)")
    common.tlog(p)


def _flags(args: argparse.Namespace) -> dict[str, object]:
    flags: dict[str, object] = {}
    chosen = getattr(args, "formats", None)
    if isinstance(chosen, list) and chosen:
        flags["sbom.format"], flags["sbom.extraFormats"] = chosen[0], chosen[1:]
    elif isinstance(chosen, str):
        flags["sbom.format"] = chosen
    for attr, key in (("cyclonedx_version", "sbom.cyclonedxVersion"), ("max_size", "sbom.attach.maxSize"),
                      ("oversize", "sbom.attach.oversize"), ("tlog", "signing.sigstore.transparencyLog")):
        if getattr(args, attr, None) is not None:
            flags[key] = getattr(args, attr)
    return flags


# ---------------------------------------------------------------------------------------------- where SBOMs go


@dataclass(frozen=True)
class Destination:
    """Where generated SBOMs are written: a directory, one file, stdout, or nowhere (attached only)."""

    kind: str  # "dir" | "file" | "stdout" | "none"
    path: Path | None = None

    @classmethod
    def choose(cls, given: str | None, *, attaching: bool, count: int) -> Destination:
        if given in (None, ""):
            if attaching:
                return cls("none")
            if count > 1:
                raise UsageError(f"{count} SBOMs cannot all go to stdout",
                                 fix="Pass --output DIR/ (or set security.sbom.output.local).")
            return cls("stdout")
        assert given is not None
        path = Path(given).expanduser()
        if given.endswith(("/", "\\")) or path.is_dir():
            return cls("dir", path)
        if count > 1:
            raise UsageError(f"--output {given} is one file, and {count} SBOMs will be generated",
                             why="several images, formats or platforms of a multi-arch index each get a file",
                             fix=f"Give a directory: --output {given.rstrip('/')}/")
        return cls("file", path)

    def prepare(self) -> None:
        """Create the directory (with its .gitignore) once, before parallel work writes into it."""
        if self.kind == "dir" and self.path is not None:
            store.prepare_dir(self.path)
        elif self.kind == "file" and self.path is not None:
            store.prepare_dir(self.path.parent)

    def save(self, sbom: Sbom) -> Path | None:
        if self.kind == "dir" and self.path is not None:
            return store.write_atomic(self.path / sbom.filename, sbom.data)
        if self.kind == "file" and self.path is not None:
            return store.write_atomic(self.path, sbom.data)
        return None


def _targets(session: Session, image: ImageRef) -> list[Target]:
    """The manifests to describe: the image itself, or each platform manifest of an index."""
    manifest = session.registry.manifest(image)
    if not manifest.is_index:
        return [Target(image)]
    return [Target(image.with_digest(p.digest), p.platform)
            for p in multiarch.platform_manifests(manifest.body, str(image))]


def _signing_plan(session: Session, cosign: Cosign) -> SigningPlan:
    if not session.loaded.security.sbom.attach.sign:
        raise ConfigError("unsigned SBOM attachments are not supported", path="security.sbom.attach.sign",
                          why="an SBOM attached without a signature cannot be told from one anybody pushed",
                          fix="security:\n  sbom:\n    attach:\n      sign: true\n"
                              "# or keep the SBOM local only: sbom.output.registry: false")
    return signing.plan(session, cosign)


# ---------------------------------------------------------------------------------------------- generate


def generate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """SBOMs through the engine's sbom step (and sbom-attach with --attach); --output FILE or stdout take
    the one SBOM made, a directory gets every file."""
    flags = _flags(args)
    if args.key:
        flags["signing.privateKey"] = args.key
    given = args.output
    to_dir = bool(given) and (given.endswith(("/", "\\")) or Path(given).expanduser().is_dir())
    if to_dir:
        flags["sbom.output.local"] = given
    session = open_session(args, env, {**flags, "sbom.enabled": True})
    sbom_config = session.loaded.security.sbom
    local = sbom_config.output.local
    destination = None if to_dir or (given is None and local) else Destination.choose(
        given, attaching=args.attach, count=len(session.images) * len(sbom_config.formats))
    steps = ["sbom", "sbom-attach"] if args.attach else ["sbom"]
    to_stdout = destination is not None and destination.kind == "stdout"
    options = RunOptions(attach_sboms=args.attach)
    release, _ = output.run_release(session, Request(steps, Policy.closed()), title="sc-ci sbom generate",
                                    options=options, out=sys.stderr if to_stdout else None)
    made = [s for r in release.results if r.step == "sbom" and isinstance(r.payload, tuple) for s in r.payload]
    if destination is not None and destination.kind in ("file", "stdout") and made:
        if len(made) > 1:
            raise UsageError(f"{len(made)} SBOMs were made and --output names one file (or stdout)",
                             why="a multi-arch index has one SBOM per platform manifest",
                             fix=f"Give a directory: --output {(given or 'sbom').rstrip('/')}/")
        if destination.kind == "stdout":
            sys.stdout.write(made[0].data.decode("utf-8"))
            sys.stdout.flush()
        else:
            destination.prepare()
            destination.save(made[0])
    return release.verdict.exit_code


# ---------------------------------------------------------------------------------------------- attach


def attach(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags = _flags(args)
    if args.key:
        flags["signing.privateKey"] = args.key
    session = open_session(args, env, flags)
    if len(session.images) != 1:
        raise UsageError("sbom attach takes exactly one --image", why="an SBOM describes one image manifest",
                         fix="sc-ci sbom attach --image REF@DIGEST --sbom FILE (once per image)")
    path = Path(args.sbom).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the SBOM file {args.sbom}", why=exc.strerror or str(exc),
                         fix="Pass the path of an SBOM written by sc-ci sbom generate.") from exc
    cosign = session.cosign()
    plan = _signing_plan(session, cosign)
    (image,) = session.resolve_digests()
    target = _attach_target(session, image, data, str(path))
    sbom = sbom_step.parse(data, target, str(path))
    settings = SbomSettings.from_config(session.loaded.security.sbom)
    if session.dry_run:
        output.dry_run(cosign.attest_argvs(target.ref, plan.key, path, sbom.format.cosign_type, plan.options))
        return 0
    with session.docker_config() as docker_config, tempfile.TemporaryDirectory(prefix="sc-ci-attest-") as tmp:
        result = sbom_step.attach(cosign, plan.with_docker_config(docker_config), sbom, settings,
                                  workdir=Path(tmp), local_copy=path)
    output.report("sbom attach", session, [result])
    return output.exit_code([result])


def _attach_target(session: Session, image: ImageRef, data: bytes, source: str) -> Target:
    """The manifest the SBOM is attached to: the given digest, after checking the SBOM says it
    describes that digest (when it says; syft records it)."""
    document = formats.load_document(data.decode("utf-8", errors="replace"), source)
    described = formats.subject_digest(document, formats.detect(document, source))
    if described is None or described == image.digest:
        return Target(image)
    manifest = session.registry.manifest(image)
    if manifest.is_index:
        for platform in multiarch.platform_manifests(manifest.body, str(image)):
            if platform.digest == described:
                raise UsageError(f"{source} describes the {platform.platform} manifest of this index",
                                 why="each platform's SBOM is attached to its own manifest",
                                 fix=f"sc-ci sbom attach --image {image.name}@{described} --sbom {source}")
    raise StepFailed(f"{source} describes {described}, not {image.by_digest}",
                     why="attaching it would tell consumers the wrong contents",
                     fix=f"Generate the SBOM of this digest: sc-ci sbom generate --image {image.by_digest} "
                         "--output DIR/")


# ---------------------------------------------------------------------------------------------- verify


def verify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    flags = _flags(args)
    if args.key:
        flags["signing.publicKey"] = args.key
    session = open_session(args, env, flags)
    plan = _verify_plan(session)
    cosign = session.cosign()
    images = session.resolve_digests()
    per_image = parallel.map_bounded(lambda image: (image, _targets(session, image)), list(images),
                                     session.workers)
    count = sum(len(targets) for _, targets in per_image)
    requested = formats.by_name(args.formats) if args.formats else None
    local = _local_sbom(args.sbom, per_image, count, requested)
    # the format: --format, else the --sbom file's own, else security.sbom.format
    fmt = requested or (local.format if local else formats.by_name(session.loaded.security.sbom.format))
    to_stdout = args.output == "-"
    destination = None if args.output in (None, "") else (
        Destination("stdout") if to_stdout else Destination.choose(args.output, attaching=False, count=count))
    if session.dry_run:
        output.dry_run([cosign.verify_attestation_argv(t.ref, plan.verifier(), fmt.cosign_type, plan.options)
                        for _, ts in per_image for t in ts])
        return 0
    with session.docker_config() as docker_config:
        plan = plan.with_docker_config(docker_config)

        def one(item: tuple[ImageRef, list[Target]]) -> list[tuple[StepResult, sbom_step.VerifiedSbom | None]]:
            image, targets = item
            done = [sbom_step.verify(cosign, plan, t, fmt, local) for t in targets]
            if targets[0].platform:
                done.append((sbom_step.verify_index(cosign, plan, image, targets, fmt), None))
            return done

        outcomes = [pair for pairs in parallel.map_bounded(one, per_image, session.workers) for pair in pairs]
    results = [result for result, _ in outcomes]
    failed_saves = _save_verified(destination, [v for _, v in outcomes if v is not None], args.output)
    output.report("sbom verify", session, results + failed_saves, out=sys.stderr if to_stdout else None)
    return output.exit_code(results + failed_saves)


def _verify_plan(session: Session) -> SigningPlan:
    """A verification-only plan: the public key (or a KMS key) from flags/config, else the keyless
    identity (configured or derived from the CI context), with image signing's Sigstore settings."""
    return signing.verification_plan(session)


def _local_sbom(given: str | None, per_image: Sequence[tuple[ImageRef, list[Target]]], count: int,
                requested: SbomFormat | None) -> Sbom | None:
    """The --sbom file: one manifest only, the requested format, and (when it records one) its digest."""
    if not given:
        return None
    if count != 1:
        raise UsageError("--sbom checks one SBOM, and this run verifies several manifests",
                         fix="Verify one image (a platform manifest's digest for a multi-arch image) with --sbom.")
    path = Path(given).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the SBOM file {given}", why=exc.strerror or str(exc)) from exc
    target = per_image[0][1][0]
    local = sbom_step.parse(data, target, given, requested)
    described = formats.subject_digest(local.document, local.format)
    if described is not None and described != target.image.digest:
        raise UsageError(f"{given} describes {described}, not {target.ref}",
                         fix="Pass the SBOM file of this image (its name holds the digest).")
    return local


def _save_verified(destination: Destination | None, verified: Sequence[sbom_step.VerifiedSbom],
                   given: str | None) -> list[StepResult]:
    if destination is None:
        return []
    if verified:
        destination.prepare()
    failures: list[StepResult] = []
    for item in verified:
        if item.document is None:
            failures.append(StepResult("sbom-verify", item.target.ref, Outcome.FAILED,
                                       f"cannot write {given}: only the SBOM's digest is in the registry",
                                       error=StepFailed(f"{item.target.ref}: the SBOM itself was not attached "
                                                        "(too large); only its digest was",
                                                        fix="Use the file kept when it was generated (its name "
                                                            "is in the reference attestation).")))
            continue
        if destination.kind == "stdout":
            sys.stdout.write(item.as_bytes().decode("utf-8"))
            sys.stdout.flush()
        else:
            destination.save(item.as_sbom())
    return failures
