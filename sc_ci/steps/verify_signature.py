"""The signature check (`verify`): the image signature by the expected key or keyless identity — right after
signing, on its own (`image verify`), or over a whole release (`release verify`, where the certificate's
Fulcio extensions are pinned too and the evidence names each signature it rests on). Never writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from sc_ci.errors import ScError, VerificationFailed
from sc_ci.results.step import Outcome, StepResult, skipped, timed
from sc_ci.results.verify import CheckEvidence
from sc_ci.signing.plan import SigningPlan
from sc_ci.signing.signers import Verifier
from sc_ci.steps import evidence, verified
from sc_ci.steps.interface import Resource
from sc_ci.steps.sign import consumer_command, platform_refs
from sc_ci.tools.cosign import Cosign, SignOptions, Verified, payload_format

if TYPE_CHECKING:
    from sc_ci.config.model import Feature
    from sc_ci.engine.context import RunContext
    from sc_ci.results.run import PlannedImage

BATCH = "batch:signatures"


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


def _answered(ref: str, answers: Mapping[str, verified.Answer]) -> Verified | None:
    found = answers.get(ref)
    if found is None or found.verified is None:
        return None
    return Verified(ref, len(found.verified), found.verified,
                    frozenset(f for p in found.verified if (f := payload_format(p)) is not None))


def verify(cosign: Cosign, image: str, key: Verifier, options: SignOptions, docker_config: str | None = None,
           platforms: Sequence[str] = (), answers: Mapping[str, verified.Answer] | None = None) -> StepResult:
    """Verify `image` against `key` (a public key or a certificate identity), and each of `platforms` (the
    platform manifests of an index signed recursively); `answers`: what one cosign run over the whole release
    already verified (images it could not answer for are verified here). The result names the exact command
    a consumer runs."""
    known = answers or {}

    def check(ref: str) -> Verified:
        return _answered(ref, known) or cosign.verify(ref, key, options, docker_config)

    def action() -> tuple[str, dict[str, str]]:
        found = check(image)
        summary = f"verified {found.signatures} signature(s) with {key.label}"
        details = {"key": key.label, "command": consumer_command(image, key, options),
                   "formats": ", ".join(sorted(found.formats))}
        failed: list[str] = []
        for platform in platforms:
            try:
                check(platform)
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


class VerifyStep:
    """`verify`: check the image signature with the verification key or identity (right after signing, on
    its own for `image verify`, or against a release's expectations for `release verify`)."""

    name: ClassVar[str] = "verify"
    feature: ClassVar[Feature] = "verify"
    tools: tuple[str, ...] = ("cosign",)
    resource: ClassVar[Resource] = Resource.NETWORK
    requires: ClassVar[tuple[str, ...]] = ("sign",)
    after: ClassVar[tuple[str, ...]] = ()
    signs: ClassVar[bool] = True  # what it checks is this project's signature: not asked of upstream images

    def __init__(self) -> None:
        self._verifier: Verifier | None = None
        self._options: SignOptions | None = None

    def enabled(self, ctx: RunContext) -> bool:
        signing = ctx.security.signing
        return bool(signing.enabled and signing.verify.enabled)

    def check(self, ctx: RunContext) -> None:
        """Nothing to check beyond the configuration model."""

    def prepare(self, ctx: RunContext) -> None:
        if ctx.options.expectations is not None:
            self._verifier, self._options = evidence.verification(ctx)
            return
        if ctx.options.only_verify:
            from sc_ci.signing import setup

            plan = setup.verification_plan(ctx.session, ctx.options.given_identity)
            self._verifier, self._options = plan.verifier(), plan.options
            return
        plan = ctx.signing_plan()
        self._verifier, self._options = plan.verify_key, plan.options

    def _refs(self, ctx: RunContext, images: Sequence[PlannedImage]) -> list[str]:
        refs: list[str] = []
        for image in images:
            if image.built:
                refs += [image.name, *(platform_refs(ctx, image.ref) if self._options and self._options.recursive
                                       else ())]
        return refs

    def warm(self, ctx: RunContext, images: Sequence[PlannedImage]) -> None:
        """Verifying on its own (not right after signing): one cosign run over every image of the run."""
        if self._verifier is None or self._options is None or not (ctx.options.only_verify
                                                                     or ctx.options.expectations):
            return
        key, options = self._verifier, self._options
        if len([i for i in images if i.built]) > 1:
            ctx.start(BATCH, lambda: verified.signatures(ctx, key, options, self._refs(ctx, images)))

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
                return [replace(reused, reused=True)]
        platforms = platform_refs(ctx, image.ref) if self._options.recursive else ()
        answers: Mapping[str, verified.Answer] = {}
        if ctx.options.only_verify or ctx.options.expectations:
            answers = ctx.once(BATCH, dict)  # what the warmed batch verified (nothing: one image only)
        result = verify(ctx.cosign(), image.name, self._verifier, self._options, ctx.docker_config, platforms,
                        answers)
        if ctx.options.expectations is None or result.failed:
            return [result]
        return [self._with_evidence(ctx, image, result)]

    def _with_evidence(self, ctx: RunContext, image: PlannedImage, result: StepResult) -> StepResult:
        """Which stored signatures the verified one is, who they say signed (a certificate's extensions), and
        whether the pinned extensions hold: a pin that fails fails the check."""
        signer = evidence.expectations(ctx).signer
        candidates = evidence.stored_for(ctx, image.ref, "signature")
        bound, ignored = evidence.bind(ctx, candidates, signer)
        expected = {"signer": f"{signer.describe()} ({signer.source})",
                    **{name: f"{pin.describe()} ({pin.source})" for name, pin in signer.certificate.items()}}
        mismatches = {id(b): evidence.certificate_mismatches(b, signer) for b in bound}
        good = [b for b in bound if not mismatches[id(b)]]
        found: dict[str, str] = {"signatures": str(len(bound))}
        if bound and bound[0].certificate is not None:
            cert = (good or bound)[0].certificate
            assert cert is not None
            found.update({"identity": cert.subject, "issuer": cert.issuer,
                          **{k: v for k, v in cert.extensions.items() if k in signer.certificate}})
        payload = CheckEvidence("signature", image.name, expected, found,
                                tuple(evidence.artifact_found(b) for b in bound), tuple(ignored))
        if signer.kind == "keyless" and not bound:
            why = "; ".join(ignored) or "no stored signature carries a certificate"
            error = VerificationFailed(f"{image.name}: cosign verified a signature, but its certificate cannot be "
                                       "read back to check who signed it", why=why,
                                       fix="Give the trusted root cosign verifies against "
                                           "(security.signing.sigstore.trustedRoot), so the certificate's "
                                           "extensions can be checked.")
            return replace(result, outcome=Outcome.FAILED, summary=error.what.removeprefix(f"{image.name}: "),
                           error=error, payload=payload)
        if bound and not good:
            first = mismatches[id(bound[0])]
            error = VerificationFailed(f"{image.name}: signed by the expected identity, but not as pinned: "
                                       f"{first[0]}", why="\n".join(first),
                                       fix="Check the expected value (a flag, security.signing.verify, or the "
                                           "release manifest), or that this image was signed by that workflow "
                                           "at that ref and commit.")
            return replace(result, outcome=Outcome.FAILED, summary=error.what.removeprefix(f"{image.name}: "),
                           error=error, payload=payload)
        pinned = f", {len(signer.certificate)} certificate pin(s) hold" if signer.kind == "keyless" and \
            signer.certificate else ""
        return replace(result, summary=result.summary + pinned, payload=payload)
