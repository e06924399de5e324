"""The SLSA v1.0 Build level an image reaches, from its verified provenance and the certificate that signed it
(SLSA v1.0 levels.md, "Build track"): L1 provenance exists; L2 it is signed by a hosted build platform (a CI
identity's certificate: Fulcio's Build Signer URI); L3 the signer is an isolated builder the verifier trusts
(a reusable workflow at a tag), it is the provenance's builder.id, on a GitHub-hosted runner, and the
certificate's source repository and commit are the provenance's. Pure: the reason says why not higher."""

from __future__ import annotations

from collections.abc import Sequence

from sc_ci.provenance.check import Facts, same_repository
from sc_ci.results.verify import Level, SignerFound
from sc_ci.verify.expect import Pin

#: This project's reusable workflow: the isolated builder trusted by default (at a tag only).
DEFAULT_BUILDER = "https://github.com/simple-container-com/sc-security-action/.github/workflows/slsa3.yml"
DEFAULT_TRUSTED = f"{DEFAULT_BUILDER}@refs/tags/v*"
TAG_REF = "@refs/tags/"


def _path(uri: str) -> str:
    return uri.partition("@")[0]


def build_level(signer: SignerFound | None, facts: Facts | None, trusted: Sequence[Pin]) -> Level:
    """The level and the reason it is not higher; `violation` (a trusted builder used at a branch) fails the
    provenance check."""
    if facts is None:
        return Level(0, "no signed SLSA provenance names this digest (Build L1 needs provenance)")
    builder = facts.builder_id or ""
    if signer is None or signer.kind == "unknown":
        return Level(1, "provenance exists, but the certificate or key that signed it could not be read back",
                     builder)
    if signer.kind == "key":
        return Level(1, "provenance is signed with a key: a verifier cannot tell that only a hosted build platform "
                        "holds it (L2 needs the platform's signature: sign keyless in CI)", builder)
    ext = signer.extensions
    signed_by = ext.get("buildSignerURI")
    if not signed_by:
        return Level(1, f"provenance is signed by {signer.identity or 'an identity'}, which is not a build platform's "
                        "(its certificate has no Build Signer URI): L2 needs a hosted CI's signature", builder)
    trusted_path = next((pin for pin in trusted if _path(pin.value) == _path(signed_by)), None)
    if trusted_path is not None and TAG_REF not in signed_by and TAG_REF in trusted_path.value:
        return Level(2, f"the trusted builder {_path(signed_by)} ran at {signed_by.partition('@')[2] or 'no ref'}, "
                        "not at a tag: a builder is trusted only at a release tag (a branch can change)", builder,
                     violation=f"builder {signed_by} is not at a tag ({trusted_path.describe()} is required)")
    if not any(pin.matches(signed_by) for pin in trusted):
        shown = ", ".join(p.value for p in trusted) or "none"
        return Level(2, f"signed by {signed_by}, which is not a trusted isolated builder (trusted: {shown}); the "
                        "job that ran the build steps could also sign", builder)
    if builder != signed_by:
        return Level(2, f"the certificate's Build Signer URI {signed_by} is not the provenance's builder.id "
                        f"{builder or '(none)'}", builder)
    if ext.get("runnerEnvironment") != "github-hosted":
        return Level(2, f"the runner environment is {ext.get('runnerEnvironment') or 'not stated'}, not "
                        "github-hosted: a self-hosted runner is not an isolated build platform", builder)
    source = ext.get("sourceRepositoryURI")
    if not (source and facts.source_repo and same_repository(source, facts.source_repo)):
        return Level(2, f"the certificate's source repository {source or '(none)'} is not the provenance's "
                        f"{facts.source_repo or '(none)'}", builder)
    digest = ext.get("sourceRepositoryDigest")
    if not (digest and facts.git_sha and digest.lower() == facts.git_sha.lower()):
        return Level(2, f"the certificate's source commit {digest or '(none)'} is not the provenance's "
                        f"{facts.git_sha or '(none)'}", builder)
    return Level(3, "provenance signed by a trusted isolated builder (a reusable workflow at a tag, GitHub-hosted), "
                    "the highest level of the SLSA v1.0 Build track", builder)
