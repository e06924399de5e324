"""SBOM file names derived from the image and its digest: unique per image, platform and format."""

from __future__ import annotations

import hashlib
import re

from sc_ci.imageref import ImageRef
from sc_ci.sbom.formats import SbomFormat

MAX_SLUG = 120  # file systems allow 255 bytes a name; the digest and extension need the rest
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")  # what remains after the mapping below (IPv6 brackets)


def slug(registry: str, repository: str) -> str:
    """A file-name-safe form that keeps distinct names distinct: '/' → '+' and the port's ':' → '_'
    (repository paths never hold '+', host names never hold '_' or '+')."""
    host = _UNSAFE.sub("-", registry.replace(":", "_"))
    return f"{host}+{repository.replace('/', '+')}"


def sbom_filename(image: ImageRef, fmt: SbomFormat, platform: str | None = None) -> str:
    """`<registry>+<repository>@<algo>-<hex>[.<os-arch-variant>].<ext>` ('/' → '+', port ':' → '_').

    The full digest is in the name, so two images (or two platforms of one index) never share a file,
    and two CI jobs writing the SBOM of the same digest and format write to the same name, whose
    content describes the same image (files are replaced atomically). A long repository path is
    shortened with a hash of the full name so distinct names stay distinct."""
    if not image.digest:
        raise ValueError(f"{image} has no digest; resolve it first")
    name = slug(image.registry, image.repository)
    if len(name) > MAX_SLUG:
        tail = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[:MAX_SLUG - 13]}-{tail}"
    algo, _, hexpart = image.digest.partition(":")
    parts = [f"{name}@{algo}-{hexpart}"]
    if platform:
        parts.append(_UNSAFE.sub("-", platform.replace("/", "-")))
    return ".".join([*parts, fmt.extension])
