"""Platforms of a multi-arch index: which manifests get an SBOM of their own (attestation and
unknown-platform entries are skipped)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sc_ci.errors import StepFailed

IMAGE_MANIFEST_TYPES = frozenset({
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
})


@dataclass(frozen=True)
class PlatformManifest:
    platform: str  # os/arch[/variant]
    digest: str


def platform_manifests(index_body: bytes, source: str) -> list[PlatformManifest]:
    """The image manifests an OCI index / Docker manifest list points at, with their platforms.

    Skipped: entries without a platform or with os/arch `unknown` (buildx stores its attestation
    manifests that way) and entries that are not image manifests (nested indexes, artifacts)."""
    try:
        index = json.loads(index_body)
        entries = index["manifests"]
    except (ValueError, KeyError, TypeError) as exc:
        raise StepFailed(f"{source}: the image index cannot be read", why=repr(exc),
                         fix="Check the image in the registry (e.g. skopeo inspect --raw).") from exc
    found: list[PlatformManifest] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("mediaType", next(iter(IMAGE_MANIFEST_TYPES))) \
                not in IMAGE_MANIFEST_TYPES:
            continue
        platform = entry.get("platform") or {}
        os_name, arch = platform.get("os"), platform.get("architecture")
        if not os_name or not arch or "unknown" in (os_name, arch):
            continue
        name = f"{os_name}/{arch}" + (f"/{platform['variant']}" if platform.get("variant") else "")
        digest = entry.get("digest")
        if isinstance(digest, str):
            found.append(PlatformManifest(name, digest))
    if not found:
        raise StepFailed(f"{source}: the image index lists no platform image", why="every entry is an attestation, "
                         "an unknown platform or not an image manifest",
                         fix="Push the platform images, or generate the SBOM of one manifest by its digest.")
    return found
