"""Whether a digest may already carry signatures or attestations, asked of the registry directly (one
manifest request) before a slower cosign verification is spent on the question."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from sc_ci.imageref import ImageRef
from sc_ci.services.registry import RegistryError
from sc_ci.tools.cosign import SignOptions

if TYPE_CHECKING:
    from sc_ci.engine.context import RunContext

Kind = Literal["sig", "att"]


def legacy_tag(ref: ImageRef, kind: Kind) -> ImageRef:
    """`repo:sha256-<hex>.sig` / `.att`: where cosign's legacy format keeps them."""
    algorithm, _, hexdigest = (ref.digest or "").partition(":")
    return ImageRef(ref.registry, ref.repository, tag=f"{algorithm}-{hexdigest}.{kind}")


def may_exist(ctx: RunContext, ref: ImageRef, kind: Kind, options: SignOptions) -> bool:
    """False only when it is certain nothing exists: legacy storage and no `.sig`/`.att` tag. Bundles
    (referrers) may live where a tag lookup cannot see them, so then the answer is True."""
    if ctx.cosign().formats(options) != ("legacy",) or ref.digest is None:
        return True
    try:
        ctx.session.registry.manifest(legacy_tag(ref, kind))
    except RegistryError as exc:
        return "no such image" not in exc.what
    return True
