"""The vendored in-toto / SLSA JSON Schemas: they accept real provenance and reject what the specs forbid."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sc_ci.ci.interface import CIContext, OIDCKind, OIDCSource, Platform
from sc_ci.imageref import ImageRef
from sc_ci.provenance import statement

DATA = Path(__file__).parents[1] / "data"
SHA = "9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
CTX = CIContext(Platform.GITHUB, OIDCSource(OIDCKind.NONE, False, "none"),
                builder_id="https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main",
                server_url="https://github.com", repository="acme/app", repo_url="https://github.com/acme/app",
                commit=SHA, ref="refs/heads/main", workflow_ref="acme/app/.github/workflows/r.yml@refs/heads/main",
                run_id="1", run_url="https://github.com/acme/app/actions/runs/1/attempts/1")


def ours() -> dict[str, Any]:
    base = {"uri": "pkg:docker/alpine@3.20", "digest": {"sha256": "cd" * 32}}
    return statement.statement(ImageRef("127.0.0.1:5000", "team/app", "1", "sha256:" + "ab" * 32), CTX,
                               statement.Timings(NOW, NOW), statement.Options(base_images=[base], env={"CI": "true"}))


def test_our_statement_and_cosigns_wrapper_of_it_are_valid(attestation_schemas: Any) -> None:
    stmt = ours()
    attestation_schemas.check(stmt)
    as_cosign_wraps_it = {**stmt, "_type": "https://in-toto.io/Statement/v0.1"}
    attestation_schemas.check(as_cosign_wraps_it)


def test_upstream_github_buildtype_example_is_valid(attestation_schemas: Any) -> None:
    example = json.loads((DATA / "provenance" / "github-actions-buildtypes-workflow-v1.json").read_text())
    assert attestation_schemas.errors(example) == []  # the Statement (its draft predicateType skips the predicate)
    predicate_errors = list(attestation_schemas.validators["urn:sc-ci:schema:slsa:provenance:v1"]
                            .iter_errors(example["predicate"]))
    assert predicate_errors == []


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(stmt: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = stmt
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return mutate


def _del(path: str) -> Mutation:
    def mutate(stmt: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = stmt
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[last]
    return mutate


@pytest.mark.parametrize(("mutation", "where"), [
    (_set("_type", "https://in-toto.io/Statement/v2"), "_type"),
    (_set("subject", []), "subject"),
    (_del("subject.0.digest"), "subject/0"),
    (_set("subject.0.digest", {}), "subject/0/digest"),
    (_set("subject.0.digest.sha256", "AB" * 32), "subject/0/digest/sha256"),
    (_set("subject.0.digest.sha256", "ab" * 31), "subject/0/digest/sha256"),
    (_set("predicateType", "HTTPS://slsa.dev/provenance/v1"), "predicateType"),
    (_del("predicate.buildDefinition"), "predicate/"),
    (_del("predicate.runDetails"), "predicate/"),
    (_del("predicate.buildDefinition.buildType"), "predicate/buildDefinition"),
    (_set("predicate.buildDefinition.buildType", "not a uri"), "predicate/buildDefinition/buildType"),
    (_del("predicate.buildDefinition.externalParameters"), "predicate/buildDefinition"),
    (_set("predicate.buildDefinition.externalParameters", {}), "predicate/buildDefinition/externalParameters"),
    (_set("predicate.buildDefinition.internalParameters", []), "predicate/buildDefinition/internalParameters"),
    (_set("predicate.buildDefinition.resolvedDependencies.0", {"annotations": {}}),
     "predicate/buildDefinition/resolvedDependencies/0"),
    (_set("predicate.buildDefinition.resolvedDependencies.0.digest.gitCommit", SHA[:12]),
     "predicate/buildDefinition/resolvedDependencies/0/digest/gitCommit"),
    (_set("predicate.buildDefinition.resolvedDependencies.1.uri", "pkg:docker/Alpine@3.20 "),
     "predicate/buildDefinition/resolvedDependencies/1/uri"),
    (_set("predicate.buildDefinition.resolvedDependencies.0.uri", "git+HTTPS://GitHub.com/acme/app"),
     "predicate/buildDefinition/resolvedDependencies/0/uri"),
    (_del("predicate.runDetails.builder.id"), "predicate/runDetails/builder"),
    (_set("predicate.runDetails.builder.id", "https://GitHub.com/acme/app"), "predicate/runDetails/builder/id"),
    (_set("predicate.runDetails.builder.version", {"sc-ci": 1}), "predicate/runDetails/builder/version/sc-ci"),
    (_set("predicate.runDetails.metadata.invocationId", 412), "predicate/runDetails/metadata/invocationId"),
    (_set("predicate.runDetails.metadata.startedOn", "2026-03-01T10:00:00+02:00"),
     "predicate/runDetails/metadata/startedOn"),
    (_set("predicate.runDetails.metadata.finishedOn", "2026-03-01 10:00:00Z"),
     "predicate/runDetails/metadata/finishedOn"),
])
def test_schemas_reject_what_the_specs_forbid(mutation: Mutation, where: str, attestation_schemas: Any) -> None:
    stmt = copy.deepcopy(ours())
    mutation(stmt)
    errors = attestation_schemas.errors(stmt)
    assert errors, "the schemas accepted a statement the specification forbids"
    assert any(e.startswith(where) for e in errors), errors


def test_v0_1_statement_needs_subject_names(attestation_schemas: Any) -> None:
    stmt = {**ours(), "_type": "https://in-toto.io/Statement/v0.1"}
    stmt["subject"] = [{"digest": {"sha256": "ab" * 32}}]
    assert any(e.startswith("subject/0") and "'name'" in e for e in attestation_schemas.errors(stmt))
    stmt["subject"] = [{"name": "", "digest": {"sha256": "ab" * 32}}]
    assert attestation_schemas.errors(stmt) != []


def test_unknown_fields_are_allowed_as_the_parsing_rules_require(attestation_schemas: Any) -> None:
    stmt = ours()
    stmt["predicate"]["runDetails"]["https://example.com/extension"] = {"x": 1}
    stmt["predicate"]["buildDefinition"]["resolvedDependencies"][0]["https://example.com/tags"] = ["dev"]
    attestation_schemas.check(stmt)
