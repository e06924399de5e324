"""The signing step: sign one image digest with cosign (key or keyless) unless it already carries a valid
signature by the same key or identity (its verification is sc_ci.steps.verify_signature)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from sc_ci.errors import StepFailed
from sc_ci.imageref import ImageRef
from sc_ci.results.step import Artifact, Outcome, StepResult, timed
from sc_ci.sbom.multiarch import platform_manifests
from sc_ci.signing import keys
from sc_ci.signing.plan import SigningPlan, signer_label
from sc_ci.signing.signers import Key, Verifier
from sc_ci.sigstore.binding import public_key_sha256
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

    def record(self, ctx: RunContext) -> dict[str, object]:
        """Who signed (release.json `verification.signer`): the keyless identity and issuer the token's
        certificate carries, or the key's label and public-key fingerprint."""
        plan = ctx.signing
        if plan is None:
            return {}
        if plan.keyless:
            who = plan.identity
            return {"signer": {"kind": "keyless", "identity": who.identity if who else None,
                               "identityRegexp": who.identity_regexp if who else None,
                               "issuer": who.issuer if who else None,
                               "issuerRegexp": who.issuer_regexp if who else None}}
        verifier = plan.verify_key or plan.check_existing
        fingerprint = None
        if isinstance(verifier, Key) and (pem := keys.public_pem(verifier)) is not None:
            try:
                fingerprint = public_key_sha256(pem)
            except ValueError:
                fingerprint = None
        label = plan.key.label if isinstance(plan.key, Key) else ""
        return {"signer": {"kind": "key", "key": label, "publicKeySha256": fingerprint}}

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
