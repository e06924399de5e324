"""resolvedDependencies entries: the git source, and Dockerfile base images pinned to their digests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

from sc_ci import imageref
from sc_ci.errors import ScError
from sc_ci.imageref import DEFAULT_REGISTRY, ImageRef
from sc_ci.provenance.dockerfile import BaseImage
from sc_ci.provenance.interface import Json, ProvenanceError, SourceDependency

Resolver = Callable[[ImageRef], ImageRef]


def normalize_uri(uri: str) -> str:
    """Scheme and authority in lower case, as in-toto's ResourceURI/TypeURI require (RFC 3986 6.2.2.1)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if not parts.scheme:
        return uri
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, parts.fragment))


def source_uri(repository: str, ref: str | None = None) -> str:
    """SPDX download location of a git source: `git+https://host/owner/repo@refs/heads/main`."""
    uri = f"git+{normalize_uri(repository.rstrip('/'))}"
    return f"{uri}@{ref}" if ref else uri


def source_descriptor(source: SourceDependency) -> Json:
    return {"uri": source_uri(source.repository, source.ref), "digest": {"gitCommit": source.commit}}


def purl(ref: ImageRef, platform: str | None = None) -> str:
    """The package URL of an image (purl `docker` type): `pkg:docker/ns/name@tag?platform=…&repository_url=…`.

    Docker Hub images drop the registry and the `library/` namespace, as the purl spec's examples do.
    """
    name = ref.repository
    if ref.registry == DEFAULT_REGISTRY:
        name = name.removeprefix("library/")
    version = ref.tag or ref.digest or "latest"
    qualifiers = []
    if platform:
        qualifiers.append(f"platform={quote(platform, safe='')}")
    if ref.registry != DEFAULT_REGISTRY:
        qualifiers.append(f"repository_url={quote(ref.registry.lower(), safe=':')}")
    tail = f"?{'&'.join(qualifiers)}" if qualifiers else ""
    return f"pkg:docker/{quote(name, safe='/')}@{quote(version, safe='')}{tail}"


def base_image_descriptors(bases: Sequence[BaseImage], resolve: Resolver, dockerfile: str) -> list[Json]:
    """One descriptor per distinct base image, pinned to a digest. A reference that already carries a
    digest is recorded as written (no network); a tag is resolved with `resolve` (the registry client)."""
    out: list[Json] = []
    seen: set[str] = set()
    for base in bases:
        pinned = _pin(base, resolve, dockerfile)
        algorithm, _, hexdigest = (pinned.digest or "").partition(":")
        uri = purl(pinned, base.platform)
        if f"{uri} {pinned.digest}" in seen:
            continue
        seen.add(f"{uri} {pinned.digest}")
        out.append({"uri": uri, "digest": {algorithm: hexdigest}})
    return out


def _pin(base: BaseImage, resolve: Resolver, dockerfile: str) -> ImageRef:
    where = f"{dockerfile}:{base.line}"
    try:
        ref = imageref.parse(base.ref)
    except ScError as exc:
        raise ProvenanceError(
            f"{where}: {base.instruction} names {base.ref!r}, which is not a valid image reference",
            why=exc.why or exc.what,
            fix="Fix the Dockerfile, or pass --build-arg NAME=VALUE for the ARG it uses.",
        ) from exc
    if ref.digest:
        return ref
    try:
        return resolve(ref)
    except ScError as exc:
        raise ProvenanceError(
            f"{where}: cannot resolve base image {base.ref} to a digest",
            why=f"{exc.what}{': ' + exc.why if exc.why else ''}",
            fix="Let sc-ci read that registry (docker login / DOCKER_CONFIG, or SC_CI_REGISTRY_USERNAME and "
            "SC_CI_REGISTRY_PASSWORD), pin the digest in the Dockerfile (FROM image@sha256:…), or record "
            "no base images: drop --dockerfile (or set provenance.metadata.includeMaterials: false).",
        ) from exc


def dependencies(source: SourceDependency | None, images: Iterable[Json]) -> list[Json]:
    """resolvedDependencies: the source first, then the base images."""
    return ([source_descriptor(source)] if source else []) + list(images)
