"""The signing and verify steps: sign one image digest with cosign (key or keyless) unless it already carries
a valid signature by the same key or identity, then verify it right away."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from sc_ci.errors import ScError, StepFailed, VerificationFailed
from sc_ci.imageref import ImageRef
from sc_ci.results.step import Artifact, Outcome, StepResult, skipped, timed
from sc_ci.sbom.multiarch import platform_manifests
from sc_ci.signing.plan import SigningPlan, signer_label
from sc_ci.signing.signers import Verifier
from sc_ci.steps import attachments
from sc_ci.steps.interface import Resource
from sc_ci.tools import cosign as cosign_tool
from sc_ci.tools.cosign import Cosign, Format, SignOptions

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage


def sign(cosign: Cosign, image: str, plan: SigningPlan, platforms: Sequence[str] = ()) -> StepResult:
    """Sign `image` (a repo@sha256:… reference) in every format signing.storage asks for; `platforms`: the
    platform manifests of an index, signed too (cosign --recursive) when signing.recursive is on.

    First (unless plan.check_existing is None) one cosign verify per format asks whether the image, and
    each platform manifest, already carries a valid signature by the same key or identity: then it is
    skipped, and only missing formats are signed."""
    started = time.monotonic()
    recursive = plan.options.recursive and bool(platforms)
    wanted = cosign.formats(plan.options)
    existing, signatures = _existing(cosign, [image, *platforms] if recursive else [image], plan)
    missing = tuple(f for f in wanted if f not in existing)
    if not missing:
        details = {"key": plan.key.label, "cosign": cosign.version, "storage": ", ".join(wanted),
                   "signatures": str(signatures)}
        if recursive:
            details["platforms"] = str(len(platforms))
        return StepResult("sign", image, Outcome.SKIPPED, f"already signed by {signer_label(plan)}",
                          time.monotonic() - started, None, details)

    def action() -> tuple[str, dict[str, str]]:
        result = cosign.sign(image, plan.key, plan.options, plan.docker_config, recursive=recursive,
                             formats=missing)
        details = {"key": plan.key.label, "cosign": cosign.version, "seconds": f"{result.seconds:.2f}",
                   "storage": ", ".join(missing)}
        if recursive:
            details["platforms"] = str(len(platforms))
        what = f"signed {plan.key.label}" if plan.keyless else f"signed with {plan.key.label}"
        if len(missing) < len(wanted):
            what += f" ({', '.join(missing)} only: the rest was already signed)"
        if recursive:
            what += f", with its {len(platforms)} platform manifest(s)"
        return what, details

    return timed("sign", image, action)


def _existing(cosign: Cosign, targets: Sequence[str], plan: SigningPlan) -> tuple[frozenset[Format], int]:
    """The formats every target is already validly signed in, and how many signatures the first (the image
    itself) carries. Stops at the first target signed in none of them."""
    if plan.check_existing is None:
        return frozenset(), 0
    common: frozenset[Format] | None = None
    signatures = 0
    for target in targets:
        verified = cosign.signed_formats(target, plan.check_existing, plan.options, plan.docker_config)
        common = verified.formats if common is None else common & verified.formats
        signatures = signatures or verified.signatures
        if not common:
            return frozenset(), 0
    return common or frozenset(), signatures


def verified_before(image: str, signed: StepResult, plan: SigningPlan) -> StepResult | None:
    """A skipped signing already verified the image with the verification key or identity: the verify step's
    result, without running cosign again (None: verification must run)."""
    if signed.outcome is not Outcome.SKIPPED or plan.verify_key is None or plan.check_existing != plan.verify_key:
        return None
    key = plan.verify_key
    summary = f"verified {signed.details.get('signatures', '1')} signature(s) with {key.label} (before signing)"
    details = {"key": key.label, "command": consumer_command(image, key, plan.options)}
    if "platforms" in signed.details:
        summary += f", and its {signed.details['platforms']} platform manifest(s)"
        details["platforms"] = signed.details["platforms"]
    return StepResult("verify", image, Outcome.OK, summary, 0.0, None, details)


def verify(cosign: Cosign, image: str, key: Verifier, options: SignOptions,
           docker_config: str | None = None, platforms: Sequence[str] = ()) -> StepResult:
    """Verify `image` against `key` (a public key or a certificate identity), and each of `platforms` (the
    platform manifests of an index signed recursively); the result names the exact command a consumer runs."""

    def action() -> tuple[str, dict[str, str]]:
        verified = cosign.verify(image, key, options, docker_config)
        summary = f"verified {verified.signatures} signature(s) with {key.label}"
        details = {"key": key.label, "command": consumer_command(image, key, options),
                   "formats": ", ".join(sorted(verified.formats))}
        failed: list[str] = []
        for platform in platforms:
            try:
                cosign.verify(platform, key, options, docker_config)
            except ScError as exc:
                failed.append(f"{platform}: {exc.what.removeprefix(platform + ': ')}")
        if failed:
            raise VerificationFailed(f"{image}: the index verifies, but {len(failed)} of its {len(platforms)} "
                                     "platform manifest(s) do not", why="\n".join(failed),
                                     fix="Sign the index with signing.recursive: true (cosign --recursive), so a "
                                         "consumer pulling one platform by digest can verify it.")
        if platforms:
            summary += f", and its {len(platforms)} platform manifest(s)"
            details["platforms"] = str(len(platforms))
        return summary, details

    return timed("verify", image, action)


def consumer_command(image: str, key: Verifier, options: SignOptions) -> str:
    """The `cosign verify …` line a consumer runs (with a public key file they hold, or the identity)."""
    return cosign_tool.consumer_command(image, key, options)


# ---------------------------------------------------------------------------------------------- as engine steps


class SignStep:
    """`sign`: sign the digest (and an index's platform manifests) unless already signed by the same
    key or identity."""

    name: ClassVar[str] = "sign"
    feature: ClassVar[Feature] = "signing"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ("scan",)
    signs: ClassVar[bool] = True

    def enabled(self, ctx: RunContext) -> bool:
        return bool(ctx.security.signing.enabled)

    def check(self, ctx: RunContext) -> None:
        """Nothing to check beyond the configuration model."""

    def prepare(self, ctx: RunContext) -> None:
        ctx.signing_plan()

    def _plan(self, ctx: RunContext, image: PlannedImage) -> SigningPlan:
        plan = ctx.signing_plan().with_docker_config(ctx.docker_config)
        if plan.check_existing is not None and not attachments.may_exist(ctx, image.ref, "sig", plan.options):
            plan = replace(plan, check_existing=None)  # no signature tag: nothing to check first
        return plan

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        cosign, plan = ctx.cosign(), ctx.signing_plan()
        platforms = platform_refs(ctx, image.ref)
        commands: list[list[str]] = []
        if plan.check_existing is not None:
            commands.append(cosign.verify_argv(image.name, plan.check_existing, plan.options,
                                               legacy_only=cosign.formats(plan.options) == ("legacy",)))
        return commands + cosign.sign_argvs(image.name, plan.key, plan.options, recursive=bool(platforms))

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        result = sign(ctx.cosign(), image.name, self._plan(ctx, image), platform_refs(ctx, image.ref))
        reused = result.outcome is Outcome.SKIPPED
        artifact = Artifact("signature", image.name, result.details.get("storage", ""), reused=reused)
        return [_replace_result(result, artifacts=(artifact,) if not result.failed else (), reused=reused)]


class VerifyStep:
    """`verify`: check the image signature with the verification key or identity (right after signing,
    or on its own for `image verify`)."""

    name: ClassVar[str] = "verify"
    feature: ClassVar[Feature] = "verify"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ("sign",)
    after: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[bool] = True

    def __init__(self) -> None:
        self._verifier: Verifier | None = None
        self._options: SignOptions | None = None

    def enabled(self, ctx: RunContext) -> bool:
        signing = ctx.security.signing
        return bool(signing.enabled and signing.verify.enabled)

    def check(self, ctx: RunContext) -> None:
        """Nothing to check beyond the configuration model."""

    def prepare(self, ctx: RunContext) -> None:
        if ctx.options.only_verify:
            from sc_ci.signing import setup as signing_setup

            plan = signing_setup.verification_plan(ctx.session, ctx.options.given_identity)
            self._verifier, self._options = plan.verifier(), plan.options
            return
        plan = ctx.signing_plan()
        self._verifier, self._options = plan.verify_key, plan.options

    def commands(self, ctx: RunContext, image: PlannedImage) -> list[list[str]]:
        if self._verifier is None or self._options is None:
            return []
        return [ctx.cosign().verify_argv(image.name, self._verifier, self._options)]

    def run(self, ctx: RunContext, image: PlannedImage,
            prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
        if self._verifier is None or self._options is None:
            return [skipped(self.name, image.name, "verification after signing is off")]
        signed = next(iter(prior.get("sign", ())), None)
        if signed is not None and ctx.signing is not None:
            reused = verified_before(image.name, signed, ctx.signing)
            if reused is not None:
                return [_replace_result(reused, reused=True)]
        platforms = platform_refs(ctx, image.ref) if self._options.recursive else ()
        return [verify(ctx.cosign(), image.name, self._verifier, self._options, ctx.docker_config, platforms)]


def platform_refs(ctx: RunContext, ref: ImageRef) -> tuple[str, ...]:
    """The platform manifests (repo@sha256:…) of an index that signing.recursive signs too; () for a
    single-platform image or when recursion is off."""
    if not ctx.security.signing.recursive:
        return ()
    manifest = ctx.manifest(ref)
    if not manifest.is_index:
        return ()
    try:
        found = platform_manifests(manifest.body, str(ref))
    except StepFailed:
        return ()
    return tuple(f"{ref.name}@{p.digest}" for p in found)


def _replace_result(result: StepResult, **changes: object) -> StepResult:
    return replace(result, **changes)  # type: ignore[arg-type]
