"""Serve the test-bed DBs as an air-gapped mirror would: a grype listing on loopback HTTP, trivy's OCI artifact."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from sc_ci.tools.vulndb import DbSettings
from testbed.oci import RegistryClient
from testbed.vulndb import grype_db, trivy_db

LISTING_PATH = f"/v{grype_db.MODEL}/latest.json"


class GrypeListingServer:
    """`/v6/latest.json` and the archive it points at, on 127.0.0.1; `.update_url` is what
    GRYPE_DB_UPDATE_URL takes (grype appends /v6/latest.json). `.requests` counts GETs per path."""

    def __init__(self, db: grype_db.GrypeDb) -> None:
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._files: dict[str, bytes] = {}
        self.publish(db)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.requests[path] += 1
                    body = server._files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/json" if path.endswith(".json")
                                 else "application/gzip")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="grype-listing", daemon=True)
        self._thread.start()

    def publish(self, db: grype_db.GrypeDb) -> None:
        """Serve `db` from now on (a new listing and archive)."""
        data = grype_db.archive(db)
        listing = grype_db.listing(db, data)
        with self._lock:
            self._files = {LISTING_PATH: json.dumps(listing).encode(),
                           f"/v{grype_db.MODEL}/{listing['path']}": data}

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def update_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def listing_fetches(self) -> int:
        return self.requests[LISTING_PATH]

    @property
    def archive_fetches(self) -> int:
        return sum(n for path, n in self.requests.items() if path != LISTING_PATH)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> GrypeListingServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def push_trivy_db(db: trivy_db.TrivyDb, registry_host: str, *, repository: str = trivy_db.DEFAULT_REPOSITORY) -> str:
    """Push the trivy DB artifact to a (plain-HTTP loopback) registry; returns the --db-repository value."""
    with RegistryClient(registry_host) as client:
        trivy_db.push(db, client, repository=repository)
    return f"{registry_host}/{repository}:{trivy_db.SCHEMA_VERSION}"


@dataclass(frozen=True)
class ServedDbs:
    """Both DBs built and served: grype's listing server (`.grype_update_url`, request counts) and
    trivy's DB repository, plus the files themselves (for `grype db import`, a pre-filled trivy cache)."""

    grype: grype_db.GrypeDb
    trivy: trivy_db.TrivyDb
    grype_server: GrypeListingServer
    trivy_repository: str

    @property
    def grype_update_url(self) -> str:
        return self.grype_server.update_url

    def settings(self, cache_dir: Path, *, offline: bool = False,
                 max_age: timedelta = timedelta(days=5)) -> DbSettings:
        """DbSettings pointing the scanners at these mirrors, with a cache of the caller's."""
        return DbSettings(cache_dir, offline=offline, max_age=max_age, grype_update_url=self.grype_update_url,
                          trivy_repository=self.trivy_repository)
