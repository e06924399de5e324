"""The provenance step: build the SLSA v1 provenance of one image digest, attach it as an attestation signed
like the image itself, and read it back; skipped (with a warning) outside CI. Also its verification."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sc_ci.ci.interface import CIContext
from sc_ci.errors import StepFailed, VerificationFailed
from sc_ci.imageref import ImageRef
from sc_ci.log import get_logger
from sc_ci.provenance import check, statement
from sc_ci.provenance.interface import COSIGN_TYPE, Json
from sc_ci.results.step import Artifact, Outcome, StepResult, skipped, timed
from sc_ci.signing.plan import SigningPlan
from sc_ci.steps.interface import Resource
from sc_ci.tools import cosign as cosign_tool
from sc_ci.tools.cosign import Cosign

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage

STEP = "provenance"
VERIFY_STEP = "verify-provenance"
SKIP_REASON = ("not running in CI, so there are no build facts to record (give --source-repo, --git-sha, "
               "--workflow-name and --builder-id to attach provenance by hand)")

log = get_logger("provenance")
Clock = Callable[[], datetime]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Request:
    """What the step needs, decided once per run before any tool runs."""

    context: CIContext  # the detected CI context, with any explicitly given facts applied
    options: statement.Options
    started: datetime  # when the release run started (startedOn unless the CI says when the job started)
    explicit: bool = False  # outside CI: the user gave the source facts by flag
    verify: bool = True  # read the attestation back after attaching it
    output_dir: Path | None = None  # also save each statement here

    @property
    def applies(self) -> bool:
        return self.context.is_ci or self.explicit


def attach(cosign: Cosign, image: ImageRef, plan: SigningPlan, request: Request, clock: Clock = now) -> StepResult:
    """Attach SLSA v1 provenance to `image` (digest-pinned) as a `slsaprovenance1` attestation."""
    name = image.by_digest
    if not request.applies:
        log.warning("provenance skipped for %s: %s", name, SKIP_REASON)
        return skipped(STEP, name, SKIP_REASON)

    def action() -> tuple[str, dict[str, str]]:
        timings = statement.Timings(request.started, clock())
        stmt = statement.statement(image, request.context, timings, request.options)
        predicate = stmt["predicate"]
        with tempfile.TemporaryDirectory(prefix="sc-ci-provenance-") as tmp:
            path = Path(tmp) / "provenance.json"
            _write_private(path, predicate)
            plan.attest(cosign, name, path, COSIGN_TYPE)
        facts = check.facts(_mapping(predicate))
        details = _details(facts, request.options)
        command = consumer_command(name, plan)
        if command:
            details["command"] = command
        if request.output_dir is not None:
            details["statement"] = str(save_statement(request.output_dir, image, stmt))
        summary = f"attached SLSA v1 provenance (builder {facts.builder_id})"
        if request.verify:
            statements = plan.verify_attestation(cosign, name, COSIGN_TYPE)
            if not any(s.get("predicate") == predicate for s in check.covering(statements, image.digest or "")):
                raise VerificationFailed(
                    f"{name}: the provenance just attached is not among the verified attestations",
                    why=f"cosign verified {len(statements)} provenance attestation(s), none with this predicate",
                    fix="Check that the registry kept the attestation (tag sha256-<digest>.att or the "
                        "referrers index), then rerun with -v.")
            summary = f"attached and verified SLSA v1 provenance (builder {facts.builder_id})"
        return summary, details

    return timed(STEP, name, action)


def verify(cosign: Cosign, image: ImageRef, plan: SigningPlan, expect: check.Expectations) -> StepResult:
    """Verify the provenance attestations of `image` and check them against `expect`."""
    name = image.by_digest

    def action() -> tuple[str, dict[str, str]]:
        statements = check.covering(plan.verify_attestation(cosign, name, COSIGN_TYPE), image.digest or "")
        if not statements:
            raise VerificationFailed(
                f"{name}: no SLSA v1 provenance attestation covers this digest",
                why="the verified attestations name other digests, or carry another predicate type",
                fix="Attach provenance to this digest: sc-ci provenance attach --image IMAGE --key cosign.key")
        found = [check.facts(_mapping(s.get("predicate"))) for s in statements]
        failures = [check.mismatches(f, expect) for f in found]
        matching = [f for f, failed in zip(found, failures, strict=True) if not failed]
        if not matching:
            raise VerificationFailed(f"{name}: provenance does not match: {_describe(failures)}",
                                     why=_why(found),
                                     fix="Check the expected value, or that this image was built by that "
                                         "repository, commit and builder.")
        facts = matching[0]
        details = _details(facts, None)
        command = consumer_command(name, plan)
        if command:
            details["command"] = command
        checked = [label for label, given in (("source", expect.source_repo), ("builder", expect.builder_id),
                                               ("commit", expect.git_sha)) if given]
        what = f", {'/'.join(checked)} as expected" if checked else ""
        return f"verified SLSA v1 provenance (builder {facts.builder_id}{what})", details

    return timed(VERIFY_STEP, name, action)


def can_verify(plan: SigningPlan) -> bool:
    """Whether the plan says what verifies its signatures: a public (or KMS) key or a keyless identity.
    A key-based plan with `signing.verify.enabled: false` has neither (only the private key)."""
    return plan.verify_key is not None or plan.identity is not None


def consumer_command(image: str, plan: SigningPlan) -> str | None:
    """The plain `cosign verify-attestation --type slsaprovenance1 …` line anyone can run against the
    provenance: image verification's consumer command (same key or identity flags), for attestations."""
    if not can_verify(plan):
        return None
    command = cosign_tool.consumer_command(image, plan.verifier(), plan.options)
    return command.replace("cosign verify ", f"cosign verify-attestation --type {COSIGN_TYPE} ", 1)


def save_statement(directory: Path, image: ImageRef, stmt: Json) -> Path:
    """Write the statement to DIR/<repository>@sha256-<hex>.intoto.json; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", image.repository)
    path = directory / f"{slug}@{(image.digest or '').replace(':', '-')}.intoto.json"
    path.write_text(json.dumps(stmt, indent=2) + "\n", encoding="utf-8")
    return path


def _write_private(path: Path, data: object) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _details(facts: check.Facts, options: statement.Options | None) -> dict[str, str]:
    details = {"buildType": facts.build_type or "", "builder": facts.builder_id or "",
               "source": facts.source_repo or "", "commit": facts.git_sha or ""}
    if options is not None:
        details["materials"] = str(len(options.base_images)) if options.include_materials else "off"
        if options.env is not None:
            details["env"] = ",".join(sorted(options.env))
    return {k: v for k, v in details.items() if v}


def _describe(failures: list[list[check.Mismatch]]) -> str:
    if len(failures) == 1:
        return "; ".join(str(m) for m in failures[0])
    return " | ".join(f"attestation {i}: " + "; ".join(str(m) for m in failed)
                      for i, failed in enumerate(failures, 1))


def _why(found: list[check.Facts]) -> str:
    lines = [f"{len(found)} signed provenance attestation(s) verified; recorded:"]
    for f in found:
        lines.append(f"builder {f.builder_id or '-'}, source {f.source_repo or '-'}, commit {f.git_sha or '-'}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- as an engine step


def same_build(a: Mapping[str, object], b: Mapping[str, object]) -> bool:
    """Two provenance predicates record the same build: equal buildDefinition and builder id (the run's
    timestamps and invocation id differ between runs of one release)."""
    def key(p: Mapping[str, object]) -> tuple[object, object]:
        run = p.get("runDetails")
        builder = run.get("builder") if isinstance(run, dict) else None
        return p.get("buildDefinition"), builder.get("id") if isinstance(builder, dict) else None

    return key(a) == key(b)


class ProvenanceStep:
    """`provenance`: SLSA v1 provenance from the CI context, attached as a signed `slsaprovenance1`
    attestation and read back; skipped outside CI without explicit facts; not attached again when the
    same build is already attested by the same key or identity."""

    name: ClassVar[str] = STEP
    feature: ClassVar[Feature] = "provenance"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ("scan",)
    signs: ClassVar[bool] = True

    def __init__(self) -> None:
        self.request: Request | None = None
        self.context: CIContext | None = None
        self.explicit = False

    def enabled(self, ctx: RunContext) -> bool:
        return bool(ctx.security.provenance.enabled)

    def check(self, ctx: RunContext) -> None:
        """The build facts: from the CI, or all given explicitly; missing CI facts fail here."""
        from sc_ci.provenance import facts

        self.context, self.explicit = facts.context(ctx.session, ctx.options.explicit)
        if self.context.is_ci or self.explicit:
            statement.describe(self.context)

    def prepare(self, ctx: RunContext) -> None:
        from sc_ci.provenance import envvars, facts

        config = ctx.security.provenance
        started = ctx.started
        context, is_explicit = self.context, self.explicit
        if context is None or (not context.is_ci and not is_explicit):
            log.warning("provenance skipped: %s", SKIP_REASON)
            self.request = Request(context or ctx.session.ci, statement.Options(), started)
            return
        plan = ctx.signing_plan()  # registers every credential it reads as a secret: before the env
        base_images = facts.base_images(ctx.session, ctx.options.dockerfile, ctx.options.build_args,
                                        config.metadata.include_materials)
        sanitized = envvars.sanitize(ctx.env, context.platform) if config.metadata.include_env else None
        if sanitized is not None and sanitized.dropped:
            log.info("environment left out of the provenance: %s",
                     ", ".join(f"{name} ({why})" for name, why in sanitized.dropped.items()))
        options = statement.Options(builder_id=config.builder.id, include_materials=config.metadata.include_materials,
                                    base_images=base_images, env=sanitized.values if sanitized else None)
        statement.predicate(context, statement.Timings(started, started), options)  # secrets in facts: fail closed
        verify = ctx.options.provenance_verify is not False and can_verify(plan)
        self.request = Request(context, options, started, explicit=is_explicit, verify=verify,
                               output_dir=ctx.options.statement_dir)

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        if self.request is None or not self.request.applies:
            return []
        plan = ctx.signing_plan()
        return ctx.cosign().attest_argvs(image.name, plan.key, Path("<provenance.json>"), COSIGN_TYPE, plan.options)

    def fingerprint(self, ctx: RunContext) -> str:
        """What decides the provenance (release records): the build it records and who built it."""
        if self.request is None or not self.request.applies:
            return "skipped"
        predicate = statement.predicate(self.request.context, statement.Timings(self.request.started, now()),
                                        self.request.options)
        run_details = _mapping(predicate.get("runDetails"))
        return json.dumps([predicate.get("buildDefinition"), run_details.get("builder")], sort_keys=True)

    def record(self, ctx: RunContext) -> dict[str, object]:
        """What the provenance says about the build (release.json `verification.build`): the defaults
        `release verify` checks the provenance and the signing certificate against."""
        if self.request is None or not self.request.applies:
            return {}
        predicate = statement.predicate(self.request.context, statement.Timings(self.request.started, now()),
                                        self.request.options)
        facts = check.facts(_mapping(predicate))
        return {"build": {"builderId": facts.builder_id, "sourceRepo": facts.source_repo, "gitSha": facts.git_sha,
                          "ref": facts.source_ref, "buildType": facts.build_type}}

    def preview(self, ctx: RunContext) -> str | None:
        """What a dry run shows besides the argv: the predicate (the same for every image)."""
        if self.request is None or not self.request.applies:
            return None
        predicate = statement.predicate(self.request.context, statement.Timings(self.request.started, now()),
                                        self.request.options)
        return "provenance.json (the same predicate for every image):\n" + json.dumps(predicate, indent=2)

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        assert self.request is not None
        if not self.request.applies:
            return [skipped(STEP, image.name, SKIP_REASON)]
        plan = ctx.signing_plan().with_docker_config(ctx.docker_config)
        existing = self._existing(ctx, image, plan)
        if existing is not None:
            return [existing]
        result = attach(ctx.cosign(), image.ref, plan, self.request)
        if result.outcome is Outcome.OK:
            path = result.details.get("statement", "")
            result = replace(result, artifacts=(Artifact("attestation", image.name, COSIGN_TYPE,
                                                         "https://slsa.dev/provenance/v1", path=path),))
        return [result]

    def _existing(self, ctx: RunContext, image: PlannedImage, plan: SigningPlan) -> StepResult | None:
        from sc_ci.steps import attachments

        if (ctx.security.signing.force or not can_verify(plan) or self.request is None
                or not attachments.may_exist(ctx, image.ref, "att", plan.options)):
            return None
        wanted = statement.predicate(self.request.context, statement.Timings(self.request.started, now()),
                                     self.request.options)
        try:
            found = check.covering(plan.verify_attestation(ctx.cosign(), image.name, COSIGN_TYPE),
                                   image.ref.digest or "")
        except StepFailed:
            return None
        if not any(same_build(_mapping(s.get("predicate")), wanted) for s in found):
            return None
        command = consumer_command(image.name, plan)
        return StepResult(STEP, image.name, Outcome.SKIPPED, "already attested: the same build's SLSA v1 provenance "
                          "by the same signer", details={"command": command} if command else {},
                          artifacts=(Artifact("attestation", image.name, COSIGN_TYPE,
                                              "https://slsa.dev/provenance/v1", reused=True),), reused=True)
