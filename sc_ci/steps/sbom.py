"""The SBOM step: one syft run per manifest writes every format, each is validated, then attached as a
signed attestation (or, when too large, a digest reference); verification checks type and content."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sc_ci.config.model import Oversize, SbomConfig
from sc_ci.errors import ConfigError, StepFailed, VerificationFailed
from sc_ci.imageref import ImageRef
from sc_ci.log import get_logger
from sc_ci.results.step import Artifact, Outcome, StepResult, skipped, timed
from sc_ci.sbom import formats, multiarch, naming, reference, size, store
from sc_ci.sbom.formats import SbomFormat
from sc_ci.sbom.validate import Validated, validate
from sc_ci.services.registry import is_plain_http
from sc_ci.signing.plan import SigningPlan
from sc_ci.steps import attachments
from sc_ci.steps import sign as sign_step
from sc_ci.steps.interface import Resource
from sc_ci.tools.cosign import Cosign
from sc_ci.tools.syft import Syft

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage

log = get_logger("sbom")


@dataclass(frozen=True)
class SbomSettings:
    """What to generate and how to attach it (from `security.sbom`, flags applied)."""

    formats: tuple[SbomFormat, ...]
    cyclonedx_version: str | None = "1.6"
    max_size: int = 4 * 1024 * 1024
    oversize: Oversize = "digest"

    @classmethod
    def from_config(cls, sbom: SbomConfig) -> SbomSettings:
        return cls(tuple(formats.by_name(f) for f in sbom.formats), sbom.cyclonedx_version,
                   sbom.attach.max_size, sbom.attach.oversize)


@dataclass(frozen=True)
class Target:
    """One manifest that gets SBOMs: the image pinned to its digest, and its platform inside an index."""

    image: ImageRef
    platform: str = ""

    @property
    def ref(self) -> str:
        return self.image.by_digest

    def label(self) -> str:
        return f" [{self.platform}]" if self.platform else ""


@dataclass(frozen=True)
class Sbom:
    """One validated SBOM document describing one manifest."""

    target: Target
    format: SbomFormat
    data: bytes = field(repr=False)
    document: Mapping[str, Any] = field(repr=False)
    validated: Validated
    source: str = ""  # the file it was read from, when the user gave one

    @property
    def shown(self) -> str:
        return self.source or self.filename

    @property
    def filename(self) -> str:
        return naming.sbom_filename(self.target.image, self.format, self.target.platform or None)

    @property
    def sha256(self) -> str:
        return reference.sha256_hex(self.data)

    def packages(self) -> list[formats.Package]:
        return formats.packages(self.document, self.format)

    def entry(self, *, attached: bool) -> reference.SbomEntry:
        return reference.SbomEntry(self.target.ref, self.format.name, self.format.predicate_type, self.sha256,
                                   len(self.data), self.filename, self.target.platform, attached)


def package_summary(packages: Sequence[formats.Package]) -> str:
    """'9 packages: 5 OS (apk 5), 4 language (npm 2, python 2)'."""
    kinds = Counter(p.type or "unknown" for p in packages)
    os_kinds = {k: n for k, n in sorted(kinds.items()) if k in formats.OS_TYPES}
    lang_kinds = {k: n for k, n in sorted(kinds.items()) if k not in formats.OS_TYPES}

    def part(label: str, counts: Mapping[str, int]) -> str:
        inner = ", ".join(f"{k} {n}" for k, n in counts.items())
        return f"{sum(counts.values())} {label}" + (f" ({inner})" if inner else "")

    return f"{len(packages)} packages: {part('OS', os_kinds)}, {part('language', lang_kinds)}"


# ---------------------------------------------------------------------------------------------- generate


def parse(data: bytes, target: Target, source: str, expected: SbomFormat | None = None) -> Sbom:
    """Detect the format from the content, check it is the expected one, and validate it."""
    text = data.decode("utf-8", errors="replace")
    document = formats.load_document(text, source)
    fmt = formats.detect(document, source)
    if expected is not None and fmt is not expected:
        raise StepFailed(f"{source} holds {fmt.label}, not the requested {expected.label}",
                         fix=f"Use --format {fmt.name}, or generate a {expected.name} SBOM.")
    return Sbom(target, fmt, data, document, validate(document, text, fmt, source), source)


TMP_PLACEHOLDER = "<private temp dir>"


def outputs(settings: SbomSettings, directory: Path) -> list[tuple[str, Path]]:
    """syft's `-o FORMAT=PATH` pairs: every format into `directory` (a private temp dir; the validated files
    are then copied to sbom.output.local). A dry run shows them with the temp dir as a placeholder."""
    return [(fmt.syft_output(settings.cyclonedx_version), directory / f"sbom.{fmt.extension}")
            for fmt in settings.formats]


def generate(syft: Syft, target: Target, settings: SbomSettings, *, plain_http: bool,
             docker_config: str | None = None) -> list[Sbom]:
    """One syft scan of `target` writing every requested format; each parsed and validated."""
    with tempfile.TemporaryDirectory(prefix="sc-ci-sbom-") as tmp:
        written = outputs(settings, Path(tmp))
        scratch = Path(tmp, "tmp")
        scratch.mkdir()
        syft.scan(target.ref, written, plain_http=plain_http, docker_config=docker_config, tmpdir=scratch)
        made = [parse(path.read_bytes(), target, f"the {fmt.label} SBOM of {target.ref}", fmt)
                for fmt, (_, path) in zip(settings.formats, written, strict=True)]
        return [replace(m, source="") for m in made]


def generate_step(syft: Syft, target: Target, settings: SbomSettings, *, plain_http: bool,
                  docker_config: str | None = None) -> tuple[StepResult, list[Sbom]]:
    """`generate` as a step result (failures become a FAILED result with the validator's message)."""
    made: list[Sbom] = []

    def action() -> tuple[str, dict[str, str]]:
        made.extend(generate(syft, target, settings, plain_http=plain_http, docker_config=docker_config))
        first = made[0]
        names = ", ".join(f"{s.format.name} {s.validated.spec_version}".strip() for s in made)
        details = {"formats": names, "syft": syft.version,
                   "validators": "; ".join(dict.fromkeys(s.validated.validator for s in made))}
        if target.platform:
            details["platform"] = target.platform
        return f"{names}{target.label()}: {package_summary(first.packages())}, valid", details

    return timed("sbom", target.ref, action), made


# ---------------------------------------------------------------------------------------------- attach


def consumer_command(plan: SigningPlan, image: str, cosign_type: str, *, tlog: bool) -> str:
    """The `cosign verify-attestation …` line a consumer runs (public key file they hold)."""
    base = sign_step.consumer_command(image, plan.verifier(), replace(plan.options, tlog=tlog))
    return base.replace("cosign verify ", f"cosign verify-attestation --type {cosign_type} ", 1)


def _write_predicate(workdir: Path, name: str, data: bytes) -> Path:
    path = workdir / name
    path.write_bytes(data)
    return path


def attach(cosign: Cosign, plan: SigningPlan, sbom: Sbom, settings: SbomSettings, *, workdir: Path,
           local_copy: Path | None = None) -> StepResult:
    """Attach one SBOM to its manifest: whole (the predicate type of its format), whole without the
    transparency log, or as a digest reference — per the size policy. The predicate attached is the
    exact validated bytes (written to a private file, never re-read from the user's path)."""
    tlog = plan.options.tlog

    def action() -> tuple[str, dict[str, str]]:
        decision = size.decide(len(sbom.data), settings.max_size, settings.oversize, tlog=tlog,
                               source=f"the {sbom.format.label} SBOM of {sbom.target.ref}")
        details = {"format": sbom.format.name, "sha256": sbom.sha256, "size": str(len(sbom.data)),
                   "file": str(local_copy) if local_copy else sbom.filename}
        if decision.warning:
            log.warning(decision.warning)
            details["warning"] = decision.warning
        if decision.action is size.Action.DIGEST:
            if local_copy is None:
                raise StepFailed(f"{sbom.target.ref}: the SBOM is too large to attach and no local copy was kept",
                                 why=decision.warning, fix="Save it locally: --output DIR or "
                                 "security.sbom.output.local, then attach again.")
            doc = reference.predicate("oversize", [sbom.entry(attached=False)])
            path = _write_predicate(workdir, f"ref-{sbom.sha256}.json", json.dumps(doc, indent=2).encode())
            plan.attest(cosign, sbom.target.ref, path, reference.PREDICATE_TYPE)
            details["predicateType"] = reference.PREDICATE_TYPE
            details["command"] = consumer_command(plan, sbom.target.ref, reference.PREDICATE_TYPE, tlog=tlog)
            return (f"{sbom.format.name}{sbom.target.label()}: {size.human(len(sbom.data))} is over the limit; "
                    f"attested its sha256 {sbom.sha256[:12]}…, SBOM kept at {local_copy}", details)
        use = plan
        if decision.action is size.Action.ATTACH_NO_TLOG:
            if plan.keyless:
                raise StepFailed(f"{decision.warning.split(':')[0]}, and oversize: no-tlog needs key-based signing",
                                 why="a keyless certificate lives minutes; without the transparency log nothing "
                                     "proves the attestation was signed while it was valid",
                                 fix="security:\n  sbom:\n    attach:\n      oversize: digest")
            use = replace(plan, options=replace(plan.options, tlog=False))
        path = _write_predicate(workdir, f"{sbom.sha256}.{sbom.format.extension}", sbom.data)
        use.attest(cosign, sbom.target.ref, path, sbom.format.cosign_type)
        details["predicateType"] = sbom.format.predicate_type
        details["command"] = consumer_command(plan, sbom.target.ref, sbom.format.cosign_type,
                                              tlog=use.options.tlog)
        how = " without the transparency log" if use is not plan else ""
        return (f"{sbom.format.name}{sbom.target.label()}: attached as {sbom.format.cosign_type}{how}", details)

    return timed("sbom-attach", sbom.target.ref, action)


def attach_index(cosign: Cosign, plan: SigningPlan, index: ImageRef, entries: Sequence[reference.SbomEntry],
                 *, workdir: Path) -> StepResult:
    """On a multi-arch index: a reference attestation listing each platform manifest's SBOM (each SBOM
    itself is attached to its own manifest)."""
    image = index.by_digest

    def action() -> tuple[str, dict[str, str]]:
        doc = reference.predicate("index", entries)
        path = _write_predicate(workdir, f"index-{index.digest}.json".replace(":", "-"),
                                json.dumps(doc, indent=2).encode())
        plan.attest(cosign, image, path, reference.PREDICATE_TYPE)
        platforms = sorted({e.platform for e in entries})
        return (f"index: SBOM reference to {len(platforms)} platform manifest(s) ({', '.join(platforms)})",
                {"predicateType": reference.PREDICATE_TYPE,
                 "command": consumer_command(plan, image, reference.PREDICATE_TYPE, tlog=plan.options.tlog)})

    return timed("sbom-attach", image, action)


# ---------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class VerifiedSbom:
    """A verified attestation: the SBOM itself (attached whole) or only its digest (oversize)."""

    target: Target
    format: SbomFormat
    document: Mapping[str, Any] | None  # None when only a digest reference was attested
    entry: reference.SbomEntry | None = None
    validated: Validated | None = None

    def as_bytes(self) -> bytes:
        """The decoded predicate as a JSON file (the attested content; key order kept)."""
        if self.document is None:
            raise ValueError("only a digest reference was attested")
        return (json.dumps(self.document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    def as_sbom(self) -> Sbom:
        assert self.validated is not None
        assert self.document is not None
        return Sbom(self.target, self.format, self.as_bytes(), self.document, self.validated)


def _subject_digests(statement: Mapping[str, Any]) -> set[str]:
    subjects = statement.get("subject")
    found: set[str] = set()
    for subject in subjects if isinstance(subjects, list) else []:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digest, dict) and isinstance(digest.get("sha256"), str):
            found.add(f"sha256:{digest['sha256']}")
    return found


#: How verification gets the verified statements of one type for one manifest (cosign verify-attestation, or
#: what one cosign run over the whole release already verified).
Fetch = Callable[[str, str], Sequence[Mapping[str, Any]]]


def _fetch(plan: SigningPlan, cosign: Cosign, fetch: Fetch | None) -> Fetch:
    return fetch or (lambda ref, cosign_type: plan.verify_attestation(cosign, ref, cosign_type))


def _statements_for(plan: SigningPlan, cosign: Cosign, target: Target, predicate_type: str,
                    cosign_type: str, fetch: Fetch | None = None) -> list[Mapping[str, Any]]:
    statements = _fetch(plan, cosign, fetch)(target.ref, cosign_type)
    mine = [s for s in statements
            if s.get("predicateType") == predicate_type and target.image.digest in _subject_digests(s)]
    if not mine:
        raise VerificationFailed(f"{target.ref}: no verified {cosign_type} attestation names this digest",
                                 why=f"cosign verified {len(statements)} statement(s), none with predicateType "
                                     f"{predicate_type} and this subject digest",
                                 fix="Attach the SBOM to this digest: "
                                     "sc-ci sbom attach --image REF@DIGEST --sbom FILE.")
    return mine


def verify(cosign: Cosign, plan: SigningPlan, target: Target, fmt: SbomFormat,
           local: Sbom | None = None, fetch: Fetch | None = None) -> tuple[StepResult, VerifiedSbom | None]:
    """Verify `target`'s SBOM attestation of `fmt`'s type: signature (cosign), subject digest, that the
    predicate really is `fmt` (an SPDX document under the CycloneDX type fails) and passes its validator;
    `local` (a file the user holds) must equal it. Falls back to a digest reference (oversize)."""
    verified: list[VerifiedSbom] = []

    def action() -> tuple[str, dict[str, str]]:
        tlog = plan.options.tlog
        details = {"format": fmt.name, "predicateType": fmt.predicate_type,
                   "command": consumer_command(plan, target.ref, fmt.cosign_type, tlog=tlog)}
        try:
            statements = _statements_for(plan, cosign, target, fmt.predicate_type, fmt.cosign_type, fetch)
        except VerificationFailed as missing:
            found = _verify_reference(cosign, plan, target, fmt, local, missing, fetch)
            verified.append(found)
            details["predicateType"] = reference.PREDICATE_TYPE
            details["command"] = consumer_command(plan, target.ref, reference.PREDICATE_TYPE, tlog=tlog)
            assert found.entry is not None
            checked = " and matches the given file" if local else "; pass --sbom FILE to check a copy"
            return (f"{fmt.name}{target.label()}: the SBOM was too large to attach; its digest reference "
                    f"(sha256 {found.entry.sha256[:12]}…) verified{checked}", details)
        document = statements[-1].get("predicate")
        source = f"the {fmt.cosign_type} attestation of {target.ref}"
        if not isinstance(document, dict):
            raise VerificationFailed(f"{source} carries no JSON document", fix="Re-attach the SBOM.")
        actual = formats.detect(document, source)
        if actual is not fmt:
            raise VerificationFailed(f"{source} holds a {actual.label} document, not {fmt.label}",
                                     why="it was attached under the wrong predicate type",
                                     fix=f"Re-attach it with sc-ci sbom attach (which picks the type from the "
                                         f"content: {actual.cosign_type}).")
        validated = validate(document, json.dumps(document), fmt, source)
        described = formats.subject_digest(document, fmt)
        if described is not None and described != target.image.digest:
            raise VerificationFailed(f"{source} describes {described}, not this digest",
                                     why="the SBOM inside the signed attestation names another image",
                                     fix=f"Generate and attach the SBOM of this digest: sc-ci sbom generate --image "
                                         f"{target.ref} --attach --output DIR/")
        if local is not None and json.loads(local.data) != document:
            raise VerificationFailed(f"{target.ref}: the attested {fmt.label} SBOM differs from {local.shown}",
                                     fix="Compare with the verified copy: --output FILE.")
        verified.append(VerifiedSbom(target, fmt, document, None, validated))
        count = package_summary(formats.packages(document, fmt))
        more = f" ({len(statements)} attestations; the last is used)" if len(statements) > 1 else ""
        details["validator"] = validated.validator
        return f"{fmt.name}{target.label()}: attestation verified, {count}, valid{more}", details

    result = timed("sbom-verify", target.ref, action)
    return result, (verified[0] if verified else None)


def _verify_reference(cosign: Cosign, plan: SigningPlan, target: Target, fmt: SbomFormat, local: Sbom | None,
                      missing: VerificationFailed, fetch: Fetch | None = None) -> VerifiedSbom:
    try:
        statements = _statements_for(plan, cosign, target, reference.PREDICATE_TYPE, reference.PREDICATE_TYPE,
                                     fetch)
    except VerificationFailed:
        others = ", ".join(f.name for f in formats.FORMATS if f is not fmt)
        raise VerificationFailed(missing.what, why=missing.why,
                                 fix=f"{missing.fix}\nIf it was attached in another format, pass --format "
                                     f"({others}): each format has its own attestation type.") from missing
    for statement in reversed(statements):
        for entry in reference.entries(statement.get("predicate") or {}):
            if entry.subject.endswith(f"@{target.image.digest}") and entry.format == fmt.name:
                if local is not None and local.sha256 != entry.sha256:
                    raise VerificationFailed(
                        f"{target.ref}: {local.shown} is not the SBOM whose digest was attested",
                        why=f"attested sha256 {entry.sha256}, the file hashes to {local.sha256}",
                        fix="Use the SBOM file saved when it was attached (its name is in the attestation: "
                            f"{entry.file}).")
                return VerifiedSbom(target, fmt, None, entry)
    raise missing


def verify_index(cosign: Cosign, plan: SigningPlan, index: ImageRef, platforms: Sequence[Target],
                 fmt: SbomFormat, fetch: Fetch | None = None) -> StepResult:
    """Verify the index's SBOM reference and that it names an SBOM of `fmt` for every platform manifest."""
    target = Target(index)

    def action() -> tuple[str, dict[str, str]]:
        statements = _statements_for(plan, cosign, target, reference.PREDICATE_TYPE, reference.PREDICATE_TYPE,
                                     fetch)
        listed = {(e.subject.rpartition("@")[2], e.format) for s in statements
                  for e in reference.entries(s.get("predicate") or {})}
        missing = [p.platform for p in platforms if (p.image.digest, fmt.name) not in listed]
        if missing:
            raise VerificationFailed(f"{index.by_digest}: the index's SBOM reference lists no {fmt.name} SBOM "
                                     f"for {', '.join(missing)}",
                                     why="the platform images changed after the SBOMs were attached, or they were "
                                         "attached in another format",
                                     fix=f"Regenerate and attach: sc-ci sbom generate --image {index.by_digest} "
                                         "--attach --output DIR/")
        return (f"index: SBOM reference verified, names the {fmt.name} SBOM of all {len(platforms)} platforms",
                {"predicateType": reference.PREDICATE_TYPE,
                 "command": consumer_command(plan, index.by_digest, reference.PREDICATE_TYPE,
                                             tlog=plan.options.tlog)})

    return timed("sbom-verify", index.by_digest, action)


# ---------------------------------------------------------------------------------------------- as engine steps


def targets(ctx: RunContext, image: ImageRef) -> list[Target]:
    """The manifests to describe: the image itself, or each platform manifest of an index."""
    manifest = ctx.manifest(image)
    if not manifest.is_index:
        return [Target(image)]
    return [Target(image.with_digest(p.digest), p.platform)
            for p in multiarch.platform_manifests(manifest.body, str(image))]


class SbomStep:
    """`sbom`: one syft run per manifest writes every configured format, each validated; reused from the
    digest-keyed cache when this syft made them before; saved to `sbom.output.local` when set."""

    name: ClassVar[str] = "sbom"
    feature: ClassVar[Feature] = "sbom"
    tools: tuple[str, ...] = ("syft",)
    resource: ClassVar[Resource] = Resource.CPU
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[bool] = False

    def __init__(self) -> None:
        self.settings = SbomSettings(())
        self.directory: Path | None = None

    def enabled(self, ctx: RunContext) -> bool:
        return bool(ctx.security.sbom.enabled)

    def check(self, ctx: RunContext) -> None:
        """Nothing to check beyond the configuration model."""

    def prepare(self, ctx: RunContext) -> None:
        sbom = ctx.security.sbom
        self.settings = SbomSettings.from_config(sbom)
        local = sbom.output.local
        self.directory = Path(local).expanduser() if local else None
        if self.directory is not None and not self.directory.is_absolute():
            self.directory = ctx.session.loaded.project_root / self.directory
        if self.directory is not None and not ctx.dry_run:
            store.prepare_dir(self.directory)

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        syft = ctx.syft()
        return [syft.scan_argv(t.ref, outputs(self.settings, Path(TMP_PLACEHOLDER))) for t in targets(ctx, image.ref)]

    def _cache_key(self, ctx: RunContext, target: Target, fmt: SbomFormat) -> dict[str, str]:
        return {"digest": target.image.digest or "", "syft": ctx.syft().version, "format": fmt.name,
                "cyclonedx": self.settings.cyclonedx_version or ""}

    def _cached(self, ctx: RunContext, target: Target) -> list[Sbom] | None:
        if ctx.cache is None:
            return None
        found: list[Sbom] = []
        for fmt in self.settings.formats:
            data = ctx.cache.get("sbom", self._cache_key(ctx, target, fmt))
            if data is None:
                return None
            try:
                sbom = replace(parse(data, target, f"the cached {fmt.label} SBOM of {target.ref}", fmt), source="")
            except StepFailed as exc:
                log.warning("cached SBOM ignored: %s", exc.what)
                return None
            described = formats.subject_digest(sbom.document, fmt)
            if described is not None and described != target.image.digest:
                log.warning("cached SBOM for %s describes %s: ignored", target.ref, described)
                return None
            found.append(sbom)
        return found

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        plain_http = is_plain_http(image.ref.registry, ctx.session.registry.insecure)
        results: list[StepResult] = []
        for target in targets(ctx, image.ref):
            cached = self._cached(ctx, target)
            if cached is not None:
                result = StepResult(self.name, target.ref, Outcome.OK,
                                    f"{', '.join(s.format.name for s in cached)}{target.label()}: "
                                    f"{package_summary(cached[0].packages())}, valid (cached)",
                                    details={"formats": ", ".join(s.format.name for s in cached), "cached": "true"},
                                    reused=True)
                made = cached
            else:
                result, made = generate_step(ctx.syft(), target, self.settings, plain_http=plain_http,
                                             docker_config=ctx.docker_config)
                if ctx.cache is not None:
                    for sbom in made:
                        ctx.cache.put("sbom", self._cache_key(ctx, target, sbom.format), sbom.data)
            files: list[Artifact] = []
            for sbom in made:
                path = store.write_atomic(self.directory / sbom.filename, sbom.data) if self.directory else None
                files.append(Artifact("sbom-file", target.ref, sbom.format.name, path=str(path or ""),
                                      digest=sbom.sha256))
            results.append(replace(result, artifacts=tuple(files), payload=tuple(made)))
        return results


#: Fields that differ between two runs of the same generator on the same digest (ids and timestamps).
VOLATILE: tuple[tuple[str, ...], ...] = (("serialNumber",), ("metadata", "timestamp"), ("documentNamespace",),
                                         ("creationInfo", "created"))


def same_sbom(attested: object, made: Mapping[str, Any]) -> bool:
    """Whether an attested SBOM says what `made` says: equal once the per-run document id and timestamps
    are left out (so a re-release of an unchanged digest attaches nothing new)."""
    if not isinstance(attested, dict):
        return False

    def stable(document: Mapping[str, Any]) -> dict[str, Any]:
        copy = json.loads(json.dumps(document))
        for path in VOLATILE:
            node = copy
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(path[-1], None)
        return copy  # type: ignore[no-any-return]

    return stable(attested) == stable(made)


class SbomAttachStep:
    """`sbom-attach`: each SBOM attached to its manifest as a signed attestation (or, too large, a digest
    reference); an index gets a reference listing its platforms' SBOMs. An attestation already there with
    the same predicate, by the same key or identity, is not attached again."""

    name: ClassVar[str] = "sbom-attach"
    feature: ClassVar[Feature] = "sbom"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ("sbom",)
    after: ClassVar[tuple[str, ...]] = ("scan",)
    signs: ClassVar[bool] = True

    def __init__(self) -> None:
        self.settings = SbomSettings(())

    def enabled(self, ctx: RunContext) -> bool:
        sbom = ctx.security.sbom
        attach = ctx.options.attach_sboms
        return bool(sbom.enabled and (sbom.to_registry if attach is None else attach))

    def check(self, ctx: RunContext) -> None:
        if not ctx.security.sbom.attach.sign:
            raise ConfigError("unsigned SBOM attachments are not supported", path="security.sbom.attach.sign",
                              why="an SBOM attached without a signature cannot be told from one anybody pushed",
                              fix="security:\n  sbom:\n    attach:\n      sign: true\n"
                                  "# or keep the SBOM local only: sbom.output.registry: false")

    def prepare(self, ctx: RunContext) -> None:
        self.settings = SbomSettings.from_config(ctx.security.sbom)
        ctx.signing_plan()

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        cosign, plan = ctx.cosign(), ctx.signing_plan()
        return [argv for t in targets(ctx, image.ref) for fmt in self.settings.formats
                for argv in cosign.attest_argvs(t.ref, plan.key,
                                                Path(naming.sbom_filename(t.image, fmt, t.platform or None)),
                                                fmt.cosign_type, plan.options)]

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        cosign, plan = ctx.cosign(), ctx.signing_plan().with_docker_config(ctx.docker_config)
        results: list[StepResult] = []
        entries: list[reference.SbomEntry] = []
        complete = True
        for generated in prior.get("sbom", ()):
            sboms = generated.payload if isinstance(generated.payload, tuple) else ()
            local = {a.format: a.path for a in generated.artifacts if a.path}
            for sbom in sboms:
                assert isinstance(sbom, Sbom)
                existing = self._existing(ctx, cosign, plan, sbom)
                if existing is not None:
                    results.append(existing)
                    entries.append(sbom.entry(attached=True))
                    continue
                keep = Path(local[sbom.format.name]) if sbom.format.name in local else self._kept(sbom)
                with tempfile.TemporaryDirectory(prefix="sc-ci-attest-", dir=ctx.workdir) as tmp:
                    attached = attach(cosign, plan, sbom, self.settings, workdir=Path(tmp), local_copy=keep)
                complete = complete and not attached.failed
                whole = attached.details.get("predicateType") == sbom.format.predicate_type
                entries.append(sbom.entry(attached=whole))
                artifact = Artifact("attestation", sbom.target.ref, sbom.format.name,
                                    attached.details.get("predicateType", ""), digest=sbom.sha256)
                results.append(replace(attached, artifacts=() if attached.failed else (artifact,)))
        if entries and entries[0].platform and complete:
            with tempfile.TemporaryDirectory(prefix="sc-ci-attest-", dir=ctx.workdir) as tmp:
                results.append(attach_index(cosign, plan, image.ref, entries, workdir=Path(tmp)))
        return results or [skipped(self.name, image.name, "no SBOM to attach")]

    def record(self, ctx: RunContext) -> dict[str, object]:
        """The formats attested to every manifest (release.json `verification.sbom`)."""
        return {"sbom": {"formats": [f.name for f in self.settings.formats]}}

    def fingerprint(self, ctx: RunContext) -> str:
        """What decides the SBOM attestations (release records): formats, generator, size policy."""
        s = self.settings
        return f"{[f.name for f in s.formats]} cdx={s.cyclonedx_version} max={s.max_size} {s.oversize} " \
               f"syft={ctx.syft().version}"

    def _kept(self, sbom: Sbom) -> Path | None:
        """An SBOM too large to attach whole (oversize: digest) is kept on disk even without
        sbom.output.local: the attested digest must name a file someone holds."""
        if len(sbom.data) <= self.settings.max_size or self.settings.oversize != "digest":
            return None
        store.prepare_dir(store.DEFAULT_DIR)
        path = store.write_atomic(store.DEFAULT_DIR / sbom.filename, sbom.data)
        log.warning("%s is too large to attach whole: kept at %s (set --output or security.sbom.output.local "
                    "to choose where)", sbom.filename, path)
        return path

    def _existing(self, ctx: RunContext, cosign: Cosign, plan: SigningPlan, sbom: Sbom) -> StepResult | None:
        """The SBOM is already attested to this manifest with exactly this predicate (a verified
        attestation by this plan's key or identity): reused, nothing attached."""
        if ctx.security.signing.force or not attachments.may_exist(ctx, sbom.target.image, "att", plan.options):
            return None
        try:
            statements = _statements_for(plan, cosign, sbom.target, sbom.format.predicate_type,
                                         sbom.format.cosign_type)
        except StepFailed:
            return None
        if not any(same_sbom(s.get("predicate"), sbom.document) for s in statements):
            return None
        artifact = Artifact("attestation", sbom.target.ref, sbom.format.name, sbom.format.predicate_type,
                            digest=sbom.sha256, reused=True)
        return StepResult(self.name, sbom.target.ref, Outcome.SKIPPED,
                          f"{sbom.format.name}{sbom.target.label()}: already attested (same SBOM, same signer)",
                          details={"format": sbom.format.name, "predicateType": sbom.format.predicate_type,
                                   "command": consumer_command(plan, sbom.target.ref, sbom.format.cosign_type,
                                                               tlog=plan.options.tlog)},
                          artifacts=(artifact,), reused=True)
