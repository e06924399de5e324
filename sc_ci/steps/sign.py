"""The signing step: sign one image digest with cosign, then verify it right away when asked."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sc_ci.runner import Completed
from sc_ci.steps.interface import StepResult, timed
from sc_ci.tools.cosign import Cosign, Key, SignOptions


@dataclass(frozen=True)
class SigningPlan:
    """Everything signing needs, decided before any tool runs (no secret is revealed here)."""

    key: Key
    verify_key: Key | None  # None: verification after signing is off
    options: SignOptions
    docker_config: str | None = None

    def with_docker_config(self, docker_config: str | None) -> SigningPlan:
        return replace(self, docker_config=docker_config)

    def attest(self, cosign: Cosign, image: str, predicate: Path, predicate_type: str) -> Completed:
        """Attach `predicate` to `image` as an attestation signed exactly like the image itself."""
        return cosign.attest(image, self.key, predicate, predicate_type, self.options, self.docker_config)

    def verify_attestation(self, cosign: Cosign, image: str, predicate_type: str) -> list[dict[str, object]]:
        """Verify attestations of `predicate_type` with this plan's verification key; decoded statements."""
        key = self.verify_key or self.key
        return cosign.verify_attestation(image, key, predicate_type, self.options, self.docker_config)


def sign(cosign: Cosign, image: str, plan: SigningPlan) -> StepResult:
    """Sign `image` (a repo@sha256:… reference)."""

    def action() -> tuple[str, dict[str, str]]:
        result = cosign.sign(image, plan.key, plan.options, plan.docker_config)
        return (f"signed with {plan.key.label}",
                {"key": plan.key.label, "cosign": cosign.version, "seconds": f"{result.seconds:.2f}"})

    return timed("sign", image, action)


def verify(cosign: Cosign, image: str, key: Key, options: SignOptions, docker_config: str | None = None) -> StepResult:
    """Verify `image` against `key`; the result names the exact command a consumer can run."""

    def action() -> tuple[str, dict[str, str]]:
        verified = cosign.verify(image, key, options, docker_config)
        return (f"verified {verified.signatures} signature(s) with {key.label}",
                {"key": key.label, "command": consumer_command(image, key, options)})

    return timed("verify", image, action)


def consumer_command(image: str, key: Key, options: SignOptions) -> str:
    """The `cosign verify …` line a consumer runs (with a public key file they hold)."""
    key_arg = key.label if not key.ref.startswith("env://") else "cosign.pub"
    tlog = "" if options.tlog else " --insecure-ignore-tlog=true"
    return f"cosign verify --key {key_arg}{tlog} {image}"
