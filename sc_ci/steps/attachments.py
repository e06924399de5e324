"""What a digest already carries, asked of the registry directly (one manifest request per tag) before a
slower cosign verification is spent on the question: whether signatures or attestations may exist (as the
run found them the first time it asked), and the manifest digests of the tags that hold them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from sc_ci.imageref import ImageRef
from sc_ci.services.registry import RegistryError
from sc_ci.tools.cosign import SignOptions

if TYPE_CHECKING:
    from sc_ci.engine.context import RunContext

Kind = Literal["sig", "att", "bundle"]


def tag_of(ref: ImageRef, kind: Kind) -> ImageRef:
    """`repo:sha256-<hex>.sig` / `.att` (cosign's legacy format) or `repo:sha256-<hex>` (the index of Sigstore
    bundles on registries without the referrers API)."""
    algorithm, _, hexdigest = (ref.digest or "").partition(":")
    suffix = "" if kind == "bundle" else f".{kind}"
    return ImageRef(ref.registry, ref.repository, tag=f"{algorithm}-{hexdigest}{suffix}")


def tag_digest(ctx: RunContext, ref: ImageRef, kind: Kind) -> str | None:
    """The manifest digest the tag points at now; None when there is no such tag."""
    try:
        return ctx.session.registry.manifest(tag_of(ref, kind)).digest
    except RegistryError as exc:
        if "no such image" in exc.what:
            return None
        raise


def may_exist(ctx: RunContext, ref: ImageRef, kind: Literal["sig", "att"], options: SignOptions) -> bool:
    """False only when it is certain nothing existed before this run: legacy storage and no `.sig`/`.att`
    tag the first time the run asked (what this run attaches itself is not a duplicate). Bundles on a
    registry with the referrers API live where a tag lookup cannot see them, so then the answer is True."""
    if ctx.cosign().formats(options) != ("legacy",) or ref.digest is None:
        return True
    key = f"{kind}:{ref.by_digest}"
    with ctx._lock:
        known = ctx.facts.get(key)
    if known is None:
        try:
            known = tag_digest(ctx, ref, kind) is not None
        except RegistryError:
            known = True  # cannot tell: let cosign decide
        with ctx._lock:
            known = ctx.facts.setdefault(key, known)
    return bool(known)
