"""Assemble the in-toto Statement with its SLSA v1 predicate: pure functions of the CI context, the
subject digest, the timings, the resolved base images and the sanitized environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sc_ci.ci.interface import CIContext, Platform
from sc_ci.imageref import DEFAULT_REGISTRY, ImageRef
from sc_ci.provenance import buildkite, circleci, github, gitlab, jenkins, manual
from sc_ci.provenance.envvars import registered_secret
from sc_ci.provenance.interface import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    BuildDescription,
    Json,
    ProvenanceError,
    compact,
)
from sc_ci.provenance.materials import dependencies, normalize_uri

Describe = Callable[[CIContext], BuildDescription]

MAPPINGS: Mapping[Platform, Describe] = {
    Platform.GITHUB: github.describe,
    Platform.GITLAB: gitlab.describe,
    Platform.JENKINS: jenkins.describe,
    Platform.CIRCLECI: circleci.describe,
    Platform.BUILDKITE: buildkite.describe,
    Platform.LOCAL: manual.describe,
}


@dataclass(frozen=True)
class Timings:
    """When the release run started and when the provenance was generated (after the image's steps)."""

    started: datetime
    finished: datetime


@dataclass(frozen=True)
class Options:
    """What the configuration adds to the platform's mapping."""

    builder_id: str | None = None  # provenance.builder.id / --builder-id: replaces the detected one
    include_materials: bool = True  # resolvedDependencies: the source commit and the base images
    base_images: Sequence[Json] = ()  # resolved descriptors (materials.base_image_descriptors)
    env: Mapping[str, str] | None = None  # sanitized variables (envvars.sanitize), None: not recorded


_DEFAULTS = Options()


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, whole seconds (in-toto Timestamp)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def subject(image: ImageRef) -> Json:
    """The statement subject for an image digest, named as cosign names it (repository, no tag)."""
    if not image.digest:
        raise ValueError(f"{image} has no digest; resolve it first")
    algorithm, _, hexdigest = image.digest.partition(":")
    registry = "index.docker.io" if image.registry == DEFAULT_REGISTRY else image.registry
    return {"name": f"{registry}/{image.repository}", "digest": {algorithm: hexdigest}}


def describe(ctx: CIContext) -> BuildDescription:
    """The platform's mapping of `ctx` (outside CI: the manual mapping of explicitly given facts)."""
    return MAPPINGS[ctx.platform](ctx)


def predicate(ctx: CIContext, timings: Timings, options: Options = _DEFAULTS,
              is_secret: Callable[[str], bool] = registered_secret) -> Json:
    """The SLSA v1 provenance predicate for a build described by `ctx`. Fails closed: a predicate that
    would carry a secret value (a registered one, in any field) is never returned."""
    build = describe(ctx)
    builder_id = options.builder_id or build.builder_id  # every mapping requires its own builder id
    external = dict(build.external)
    internal = dict(build.internal)
    if options.env is not None:
        if build.env_placement == "externalParameters.variables":
            external["variables"] = dict(options.env)
        else:
            internal["env"] = dict(options.env)
    resolved = dependencies(build.source, options.base_images) if options.include_materials else []
    started = build.started_on if build.started_on and build.started_on <= timings.finished else timings.started
    builder = compact({"id": normalize_uri(builder_id), "version": dict(build.builder_version)})
    result: Json = {
        "buildDefinition": compact({
            "buildType": build.build_type,
            "externalParameters": external,
            "internalParameters": internal,
            "resolvedDependencies": resolved or None,
        }),
        "runDetails": {
            "builder": builder,
            "metadata": compact({
                "invocationId": build.invocation_id,
                "startedOn": timestamp(started),
                "finishedOn": timestamp(timings.finished),
            }),
        },
    }
    leaks = secret_paths(result, is_secret)
    if leaks:
        raise ProvenanceError(
            f"the provenance would contain a secret value (in {', '.join(leaks)}); nothing was attached",
            why="a CI variable the provenance records holds a value registered as secret (a masked variable "
                "or a credential given to sc-ci)",
            fix="Do not reuse a secret's value in branch, job, pipeline or repository names, or give the "
                "build facts explicitly (--source-repo, --git-sha, --workflow-name).")
    return result


def secret_paths(value: object, is_secret: Callable[[str], bool], path: str = "predicate") -> list[str]:
    """Dotted paths of every string (key or value) inside `value` that `is_secret` flags."""
    if isinstance(value, str):
        return [path] if is_secret(value) else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            child = f"{path}.{key}"
            found += [child] if is_secret(str(key)) else []
            found += secret_paths(item, is_secret, child)
        return found
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in secret_paths(item, is_secret, f"{path}[{index}]")]
    return []


def statement(image: ImageRef, ctx: CIContext, timings: Timings, options: Options = _DEFAULTS,
              is_secret: Callable[[str], bool] = registered_secret) -> Json:
    """The in-toto Statement v1 binding the provenance predicate to `image` (a digest-pinned ref)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject(image)],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(ctx, timings, options, is_secret),
    }
