"""pytest fixtures for the test-bed vulnerability DBs: built and served once a session, a prepared offline cache.

Use them from a test module (or a conftest) with `from testbed.vulndb.fixtures import *  # noqa: F403`;
they need the `registry` fixture of tests/conftest.py (trivy's DB artifact is pushed there)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import pytest

from sc_ci.errors import ToolError
from sc_ci.tools import grype as grype_mod
from sc_ci.tools import trivy as trivy_mod
from sc_ci.tools.grype import Grype
from sc_ci.tools.trivy import Trivy
from sc_ci.tools.vulndb import DbInfo, DbSettings
from testbed.registry import LocalRegistry
from testbed.vulndb import grype_db, trivy_db
from testbed.vulndb.serve import GrypeListingServer, ServedDbs, push_trivy_db

__all__ = ["PreparedDbs", "fresh_vulndb_cache", "grype_scanner", "prepared_vulndbs", "trivy_scanner", "vulndbs"]

CacheFactory = Callable[..., DbSettings]
"""fresh_vulndb_cache(*, offline=False, max_age=timedelta(days=5)) -> DbSettings over a new empty cache"""


def _missing(message: str) -> NoReturn:
    """A prerequisite is absent: fail in CI (CI=true), skip on a developer's machine (as tests/conftest.py)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: missing prerequisites fail, they never skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def grype_scanner() -> Grype:
    """The pinned grype (sc_ci.tools.grype.find)."""
    try:
        return grype_mod.find(os.environ)
    except ToolError as exc:
        _missing(f"{exc.what}: run `make tools`")


@pytest.fixture(scope="session")
def trivy_scanner() -> Trivy:
    """The pinned trivy (sc_ci.tools.trivy.find)."""
    try:
        return trivy_mod.find(os.environ)
    except ToolError as exc:
        _missing(f"{exc.what}: run `make tools`")


@pytest.fixture(scope="session")
def vulndbs(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDbs]:
    """Both DBs built once (known advisories, built now) and served as mirrors: grype's listing on a
    loopback HTTP server (`.grype_update_url`), trivy's artifact in the session registry
    (`.trivy_repository`). `.settings(cache_dir, offline=…)` gives DbSettings using them."""
    root = tmp_path_factory.mktemp("vulndb-build")
    grype = grype_db.build(root / "grype")
    trivy = trivy_db.build(root / "trivy")
    with GrypeListingServer(grype) as server:
        repository = push_trivy_db(trivy, registry.host)
        yield ServedDbs(grype, trivy, server, repository)


class PreparedDbs:
    """One session cache filled from the mirrors, each scanner's prepare_db run at most once (on first
    use: `ready(scanner)`); what a scan step gets afterwards is `.settings`, the same cache offline."""

    def __init__(self, online: DbSettings) -> None:
        self.online = online
        self.settings = DbSettings(online.cache_dir, offline=True, max_age=online.max_age)
        self.infos: dict[str, DbInfo] = {}
        self._lock = threading.Lock()

    def ready(self, scanner: Grype | Trivy) -> DbSettings:
        """Prepare `scanner`'s DB once for the session; the offline settings to scan with."""
        name = "grype" if isinstance(scanner, Grype) else "trivy"
        with self._lock:
            if name not in self.infos:
                self.infos[name] = scanner.prepare_db(self.online)
        return self.settings


@pytest.fixture(scope="session")
def prepared_vulndbs(vulndbs: ServedDbs, tmp_path_factory: pytest.TempPathFactory) -> PreparedDbs:
    """A session cache the scanners prepare their DBs into once (`.ready(scanner)` -> offline DbSettings)."""
    return PreparedDbs(vulndbs.settings(tmp_path_factory.mktemp("vulndb-cache")))


@pytest.fixture
def fresh_vulndb_cache(vulndbs: ServedDbs, tmp_path: Path) -> CacheFactory:
    """A factory of DbSettings over a new empty cache dir pointing at the session mirrors."""
    counter = iter(range(1, 1000))

    def make(*, offline: bool = False, max_age: timedelta = timedelta(days=5)) -> DbSettings:
        return vulndbs.settings(tmp_path / f"vulndb-{next(counter)}", offline=offline, max_age=max_age)

    return make
