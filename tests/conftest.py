"""Shared fixtures: a real registry on 127.0.0.1, the known images pushed into it, and pinned-tool lookup."""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import pytest

from testbed.images import PushedImage, push_demo_images, push_image
from testbed.oci import FileMap
from testbed.registry import LocalRegistry, find_binary

AUTH_USER = "sc-ci-test"
INTEGRATION_DIR = Path(__file__).parent / "integration"

FreshImage = Callable[..., PushedImage]
"""fresh_image(base="alpine-app", *, tag=None, extra_files=None) -> PushedImage"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: runs real tools against a real registry on 127.0.0.1")



def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ is an integration test, marked or not."""
    for item in items:
        if INTEGRATION_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


def missing(message: str) -> NoReturn:
    """A prerequisite is absent: fail in CI (CI=true), skip on a developer's machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: missing prerequisites fail, they never skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def tool() -> Callable[[str], Path]:
    """tool("cosign") -> Path of the pinned binary, via sc_ci.tools.locate.find."""

    def find(name: str) -> Path:
        try:
            from sc_ci.tools.locate import find as locate
        except ImportError as exc:
            missing(f"cannot look up {name}: sc_ci.tools.locate is unavailable ({exc}); run `make tools`")
        path = locate(name)
        if path is None:
            missing(f"{name} (pinned version) is not installed: run `make tools`")
        return path

    return find


def start_registry(*, auth: tuple[str, str] | None = None, tls: bool = False) -> LocalRegistry:
    """Start a LocalRegistry, or skip/fail (see `missing`) when docker-registry is not installed."""
    if find_binary() is None:
        missing("docker-registry is not installed: apt-get install docker-registry")
    return LocalRegistry(auth=auth, tls=tls).start()


@pytest.fixture
def registry_factory() -> Iterator[Callable[..., LocalRegistry]]:
    """registry_factory(auth=None, tls=False) -> a started LocalRegistry of the test's own, stopped
    at the end of the test (stopping it earlier is fine)."""
    started: list[LocalRegistry] = []

    def make(*, auth: tuple[str, str] | None = None, tls: bool = False) -> LocalRegistry:
        reg = start_registry(auth=auth, tls=tls)
        started.append(reg)
        return reg

    try:
        yield make
    finally:
        for reg in started:
            reg.stop()


@pytest.fixture(scope="session")
def skopeo() -> Path:
    """Debian's skopeo: an independent registry client to check what we pushed."""
    found = shutil.which("skopeo")
    if found is None:
        missing("skopeo is not installed: apt-get install skopeo")
    return Path(found)


@pytest.fixture(scope="session")
def registry() -> Iterator[LocalRegistry]:
    """A plain-HTTP registry for the whole session (no auth)."""
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def demo_images(registry: LocalRegistry) -> dict[str, PushedImage]:
    """Every known image pushed once as demo/NAME:1.0.0 — read-only: never sign or re-tag these."""
    return push_demo_images(registry.host)


@pytest.fixture
def fresh_image(registry: LocalRegistry, request: pytest.FixtureRequest) -> FreshImage:
    """A factory pushing a known image (default alpine-app) to a new repository with one extra layer
    holding a unique id, so its digest is new too: sign and attest these freely."""
    counter = itertools.count(1)
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "test"

    def make(base: str = "alpine-app", *, tag: str | None = None,
             extra_files: FileMap | None = None) -> PushedImage:
        repo = f"fresh/{slug}-{next(counter)}-{uuid.uuid4().hex[:10]}"
        files = {"etc/sc-ci-fresh-id": f"{repo}\n", **(extra_files or {})}
        return push_image(registry.host, base, repository=repo, tag=tag, extra_files=files)

    return make


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[LocalRegistry]:
    """A registry requiring HTTP Basic credentials (`.auth` = (user, password)); plain HTTP."""
    try:
        import bcrypt  # noqa: F401 - needed to write the htpasswd file
    except ImportError:
        missing("the auth registry needs the bcrypt package: pip install -e '.[dev]'")
    reg = start_registry(auth=(AUTH_USER, secrets.token_urlsafe(16)))
    try:
        yield reg
    finally:
        reg.stop()


class AttestationSchemas:
    """The vendored in-toto Statement (v1, v0.1) and SLSA v1 provenance JSON Schemas (tests/data/schemas)."""

    DIR = Path(__file__).parent / "data" / "schemas"
    STATEMENTS: ClassVar[dict[str, str]] = {
        "https://in-toto.io/Statement/v1": "urn:sc-ci:schema:in-toto:statement:v1",
        "https://in-toto.io/Statement/v0.1": "urn:sc-ci:schema:in-toto:statement:v0.1",
    }
    PROVENANCE = ("https://slsa.dev/provenance/v1", "urn:sc-ci:schema:slsa:provenance:v1")

    def __init__(self) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        documents = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.DIR.glob("*.schema.json"))]
        for document in documents:
            Draft202012Validator.check_schema(document)
        registry: Registry[Any] = Registry().with_resources(
            (doc["$id"], Resource.from_contents(doc)) for doc in documents)
        self.validators = {doc["$id"]: Draft202012Validator(doc, registry=registry) for doc in documents}

    def errors(self, statement: Mapping[str, Any]) -> list[str]:
        """Every schema violation of `statement` (and of its predicate, for SLSA v1 provenance)."""
        schema = self.STATEMENTS.get(statement.get("_type", ""))
        if schema is None:
            return [f"_type {statement.get('_type')!r} is not an in-toto Statement type"]
        found = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                 for e in self.validators[schema].iter_errors(statement)]
        if statement.get("predicateType") == self.PROVENANCE[0]:
            found += [f"predicate/{'/'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in self.validators[self.PROVENANCE[1]].iter_errors(statement.get("predicate"))]
        return found

    def check(self, statement: Mapping[str, Any]) -> None:
        errors = self.errors(statement)
        assert errors == [], "\n".join(errors)


@pytest.fixture(scope="session")
def attestation_schemas() -> AttestationSchemas:
    return AttestationSchemas()
