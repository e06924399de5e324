"""Dockerfile base images for provenance materials: FROM parsing (ARGs, --platform, stages, scratch) and
pinning to digests with a resolver (a dict here; the registry client in production)."""

from __future__ import annotations

import pytest

from sc_ci.imageref import ImageRef
from sc_ci.provenance import dockerfile, materials
from sc_ci.provenance.dockerfile import BaseImage
from sc_ci.provenance.interface import ProvenanceError
from sc_ci.services.registry import RegistryError

D1, D2, D3, D4 = ("sha256:" + c * 64 for c in "1234")


def refs(text: str, **build_args: str) -> list[tuple[str, str | None, str]]:
    parsed = dockerfile.parse(text, build_args)
    return [(i.ref, i.platform, i.instruction) for i in parsed.images]


def test_single_stage() -> None:
    assert refs("FROM python:3.12-slim\nRUN pip install app\n") == [("python:3.12-slim", None, "FROM")]


def test_keywords_are_case_insensitive_and_comments_ignored() -> None:
    text = "# base image\nfrom alpine:3.20 as Base\n  # FROM commented:1\nrun echo hi\n"
    assert refs(text) == [("alpine:3.20", None, "FROM")]


def test_arg_defaults_and_build_arg_overrides() -> None:
    text = ("ARG REGISTRY=registry.example.com\nARG VERSION=3.12\nARG VARIANT\n"
            "FROM ${REGISTRY}/python:$VERSION${VARIANT:+-}${VARIANT}\n")
    parsed = dockerfile.parse(text)  # VARIANT has no value: empty, as `docker build` without --build-arg
    assert [i.ref for i in parsed.images] == ["registry.example.com/python:3.12"]
    assert parsed.problems == ("line 4: ARG VARIANT has no value: recorded registry.example.com/python:3.12 "
                               "(what the build uses without --build-arg VARIANT=…)",)
    assert refs(text, VERSION="3.13", VARIANT="slim") == [("registry.example.com/python:3.13-slim", None, "FROM")]
    assert dockerfile.parse(text, {"VARIANT": "slim"}).problems == ()


def test_arg_default_can_use_an_earlier_arg() -> None:
    text = "ARG MAJOR=3\nARG TAG=${MAJOR}.20\nFROM alpine:${TAG}\n"
    assert refs(text) == [("alpine:3.20", None, "FROM")]
    assert refs(text, TAG="edge") == [("alpine:edge", None, "FROM")]


def test_default_word_when_unset() -> None:
    assert refs("ARG TAG\nFROM alpine:${TAG:-3.19}\n") == [("alpine:3.19", None, "FROM")]


def test_an_undeclared_build_arg_does_not_reach_from() -> None:
    """Docker expands only ARGs declared before the first FROM; --build-arg alone declares nothing."""
    parsed = dockerfile.parse("FROM alpine:${TAG}\n", {"TAG": "3.20"})
    assert parsed.images == ()
    assert parsed.problems == ("line 1: FROM alpine:${TAG} left out: ARG TAG has no value (declare the ARG "
                               "with a default before the first FROM, or pass --build-arg NAME=VALUE)",)


def test_arg_without_value_is_reported_not_guessed() -> None:
    parsed = dockerfile.parse("ARG BASE\nFROM $BASE\nFROM alpine:3.20\n")
    assert [i.ref for i in parsed.images] == ["alpine:3.20"]
    assert len(parsed.problems) == 1
    assert parsed.problems[0].startswith("line 2: FROM $BASE left out: ARG BASE has no value")


def test_platform_flag() -> None:
    text = ("ARG ARCH=arm64\nFROM --platform=linux/amd64 golang:1.22 AS build\n"
            "FROM --platform=linux/$ARCH alpine:3.20\nFROM --platform=$BUILDPLATFORM node:20\n")
    assert refs(text) == [("golang:1.22", "linux/amd64", "FROM"), ("alpine:3.20", "linux/arm64", "FROM"),
                          ("node:20", None, "FROM")]  # $BUILDPLATFORM is known only during the build


def test_platform_arg_in_the_image_name_is_reported() -> None:
    parsed = dockerfile.parse("FROM golang:1.22-${TARGETARCH}\n")  # "golang:1.22-" would be a valid tag
    assert parsed.images == ()
    assert "depends on the platform being built" in parsed.problems[0]


def test_multi_stage_aliases_indexes_and_scratch() -> None:
    text = """\
FROM golang:1.22 AS Build
RUN go build -o /out/app ./cmd/app
FROM build AS test
FROM gcr.io/distroless/static:nonroot AS runtime
COPY --from=BUILD /out/app /app
COPY --from=0 /out/app /app2
COPY --from=nginx:1.27 /etc/nginx/mime.types /etc/
FROM scratch
COPY --from=runtime / /
"""
    parsed = dockerfile.parse(text)
    assert parsed.images == (
        BaseImage("golang:1.22", 1, "FROM", None, "Build"),
        BaseImage("gcr.io/distroless/static:nonroot", 4, "FROM", None, "runtime"),
        BaseImage("nginx:1.27", 7, "COPY --from"),
    )
    assert parsed.problems == ()


def test_stage_args_feed_copy_from_and_run_mounts() -> None:
    text = ("ARG TOOLS=registry.example.com/tools:2\nFROM alpine:3.20\nARG TOOLS\nARG CACHE=cache/img:1\n"
            "COPY --from=$TOOLS /bin/tool /bin/\n"
            "RUN --mount=type=cache,target=/root/.cache --mount=type=bind,from=${CACHE},target=/c make\n")
    assert refs(text) == [("alpine:3.20", None, "FROM"), ("registry.example.com/tools:2", None, "COPY --from"),
                          ("cache/img:1", None, "RUN --mount")]


def test_global_arg_not_redeclared_in_the_stage_is_not_visible_there() -> None:
    parsed = dockerfile.parse("ARG TOOLS=tools:2\nFROM alpine:3.20\nCOPY --from=$TOOLS /x /x\n")
    assert [i.ref for i in parsed.images] == ["alpine:3.20"]
    assert parsed.problems == ("line 3: COPY --from=$TOOLS left out: ARG TOOLS has no value (declare the ARG "
                               "with a default before the first FROM, or pass --build-arg NAME=VALUE)",)


def test_continuation_lines_heredocs_and_backtick_escape() -> None:
    text = "FROM \\\n    --platform=linux/amd64 \\\n    debian:12 \\\n    AS base\nRUN <<EOF\nFROM evil:1\nEOF\n"
    assert dockerfile.parse(text).images == (BaseImage("debian:12", 1, "FROM", "linux/amd64", "base"),)
    windows = "# escape=`\nARG TAG=ltsc2022\nFROM mcr.microsoft.com/windows/servercore:`\n    $TAG\n"
    assert refs(windows) == [("mcr.microsoft.com/windows/servercore:ltsc2022", None, "FROM")]


def test_escaped_dollar_is_literal() -> None:
    assert refs("ARG A=x\nFROM img:\\$A\n") == [("img:$A", None, "FROM")]


def test_each_image_once() -> None:
    text = "FROM alpine:3.20 AS a\nFROM alpine:3.20 AS b\nCOPY --from=alpine:3.20 / /\n"
    assert refs(text) == [("alpine:3.20", None, "FROM")]


# ------------------------------------------------------------------------------------------- pinning


def resolver(table: dict[str, str]) -> materials.Resolver:
    calls: list[str] = []

    def resolve(ref: ImageRef) -> ImageRef:
        calls.append(str(ref))
        if str(ref) not in table:
            raise RegistryError(f"{ref}: no such image in the registry", why="answered 404")
        return ref.with_digest(table[str(ref)])

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def test_descriptors_pin_tags_and_keep_written_digests() -> None:
    text = f"""\
ARG REG=registry.example.com:5000
FROM --platform=linux/arm64 ${{REG}}/team/base:1.0 AS build
FROM python:3.12-slim
FROM alpine@{D3}
COPY --from=ghcr.io/acme/tools:2 /t /t
"""
    resolve = resolver({"registry.example.com:5000/team/base:1.0": D1, "docker.io/library/python:3.12-slim": D2,
                        "ghcr.io/acme/tools:2": D4})
    got = materials.base_image_descriptors(dockerfile.parse(text).images, resolve, "Dockerfile")
    assert got == [
        {"uri": "pkg:docker/team/base@1.0?platform=linux%2Farm64&repository_url=registry.example.com:5000",
         "digest": {"sha256": "1" * 64}},
        {"uri": "pkg:docker/python@3.12-slim", "digest": {"sha256": "2" * 64}},
        {"uri": f"pkg:docker/alpine@sha256%3A{'3' * 64}", "digest": {"sha256": "3" * 64}},
        {"uri": "pkg:docker/acme/tools@2?repository_url=ghcr.io", "digest": {"sha256": "4" * 64}},
    ]
    assert "docker.io/library/alpine" not in " ".join(resolve.calls)  # type: ignore[attr-defined]


def test_unresolvable_base_image_names_the_line_and_the_fix() -> None:
    images = dockerfile.parse("FROM alpine:3.20\nFROM registry.example.com/missing:1\n").images
    with pytest.raises(ProvenanceError) as err:
        materials.base_image_descriptors(images, resolver({"docker.io/library/alpine:3.20": D1}), "app/Dockerfile")
    assert err.value.what == "app/Dockerfile:2: cannot resolve base image registry.example.com/missing:1 to a digest"
    assert "no such image" in err.value.why
    assert "FROM image@sha256:" in err.value.fix
    assert "includeMaterials: false" in err.value.fix


def test_invalid_reference_after_expansion() -> None:
    images = dockerfile.parse('ARG TAG="not valid"\nFROM alpine:${TAG}\n').images
    with pytest.raises(ProvenanceError, match=r"Dockerfile:2: FROM names 'alpine:not valid', which is not a valid"):
        materials.base_image_descriptors(images, resolver({}), "Dockerfile")


@pytest.mark.parametrize(("ref", "platform", "uri"), [
    (ImageRef("docker.io", "library/nginx", "1.27", D1), None, "pkg:docker/nginx@1.27"),
    (ImageRef("docker.io", "bitnami/redis", "7", D1), None, "pkg:docker/bitnami/redis@7"),
    (ImageRef("docker.io", "library/nginx", None, D1), None, f"pkg:docker/nginx@sha256%3A{'1' * 64}"),
    (ImageRef("quay.io", "org/img", "v1", D1), "linux/arm64/v8",
     "pkg:docker/org/img@v1?platform=linux%2Farm64%2Fv8&repository_url=quay.io"),
])
def test_purl(ref: ImageRef, platform: str | None, uri: str) -> None:
    assert materials.purl(ref, platform) == uri


@pytest.mark.parametrize(("uri", "normalized"), [
    ("HTTPS://GitHub.COM/Acme/App", "https://github.com/Acme/App"),
    ("git+https://Example.com:8443/a/B@refs/heads/Main", "git+https://example.com:8443/a/B@refs/heads/Main"),
    ("pkg:docker/nginx@1.27", "pkg:docker/nginx@1.27"),
    ("no-scheme/path", "no-scheme/path"),
])
def test_normalize_uri(uri: str, normalized: str) -> None:
    assert materials.normalize_uri(uri) == normalized
