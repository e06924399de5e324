"""SBOM file names: derived from registry, repository, digest, platform and format; never colliding."""

from __future__ import annotations

import itertools

import pytest

from sc_ci.imageref import parse
from sc_ci.sbom.formats import CYCLONEDX, FORMATS, SPDX
from sc_ci.sbom.naming import MAX_SLUG, sbom_filename

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def test_name_holds_registry_repository_digest_and_format() -> None:
    name = sbom_filename(parse(f"registry.example.com:5000/team/app@{A}"), SPDX)
    assert name == f"registry.example.com_5000+team+app@sha256-{'a' * 64}.spdx.json"


def test_platform_is_part_of_the_name() -> None:
    name = sbom_filename(parse(f"reg.io/app@{A}"), CYCLONEDX, "linux/arm64/v8")
    assert name.endswith(".linux-arm64-v8.cdx.json")


def test_names_never_collide_across_images_platforms_and_formats() -> None:
    refs = [f"reg.io/team/app@{A}", f"reg.io/team/app@{B}", f"reg.io/team-app@{A}", f"other.io/team/app@{A}",
            f"reg.io/team/app/sub@{A}", f"reg.io/team/app_sub@{A}", f"reg.io/team/app-sub@{A}",
            f"reg.io:5000/app@{A}", f"reg.io-5000/app@{A}", f"reg.io/5000/app@{A}"]
    platforms = [None, "linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    names = [sbom_filename(parse(r), f, p) for r, f, p in itertools.product(refs, FORMATS, platforms)]
    assert len(names) == len(set(names))
    assert all("/" not in n and ":" not in n and len(n) < 255 for n in names)


def test_same_image_same_name_in_every_job() -> None:
    assert sbom_filename(parse(f"reg.io/app:1.0@{A}"), SPDX) == sbom_filename(parse(f"reg.io/app@{A}"), SPDX)


def test_long_repositories_are_shortened_but_stay_distinct() -> None:
    base = "reg.io/" + "/".join(["segment-name"] * 15)
    first = sbom_filename(parse(f"{base}/one@{A}"), SPDX)
    second = sbom_filename(parse(f"{base}/two@{A}"), SPDX)
    assert first != second
    assert len(first) <= MAX_SLUG + len("@sha256-") + 64 + len(".spdx.json")


def test_a_digest_is_required() -> None:
    with pytest.raises(ValueError, match="resolve it first"):
        sbom_filename(parse("reg.io/app:1.0"), SPDX)
