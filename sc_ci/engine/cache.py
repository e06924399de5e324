"""The digest-keyed cache: results that depend only on an image digest and tool versions (SBOMs, scan
results, release records), written atomically and integrity-checked on every read.

A cache a CI restores is input like any other (it may come from another branch): an entry is used only
when its envelope parses, names exactly the key asked for, and its content hashes to the recorded sha256;
callers re-validate the content itself (an SBOM is schema-checked and must describe the digest). Anything
else is ignored, counted and rebuilt, never trusted."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sc_ci.log import get_logger

log = get_logger("cache")
FORMAT = "sc-ci/cache-entry/v1"
MAX_ENTRY = 64 * 1024 * 1024  # an entry larger than this is not read


def key_id(kind: str, key: Mapping[str, str]) -> str:
    """A stable file name for (kind, key): the sha256 of its canonical JSON."""
    canonical = json.dumps({"kind": kind, **key}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Cache:
    """One directory (`--cache-dir`, SC_CI_CACHE_DIR) holding `<kind>/<sha256>.json` envelopes."""

    root: Path
    hits: int = 0
    misses: int = 0
    rejected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _path(self, kind: str, key: Mapping[str, str]) -> Path:
        return self.root / kind / f"{key_id(kind, key)}.json"

    def get(self, kind: str, key: Mapping[str, str]) -> bytes | None:
        """The content stored under (kind, key), or None (missing, corrupt, tampered or for another key)."""
        path = self._path(kind, key)
        content = self._read(path, kind, key)
        with self._lock:
            if content is None:
                self.misses += 1
            else:
                self.hits += 1
        return content

    def _read(self, path: Path, kind: str, key: Mapping[str, str]) -> bytes | None:
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_ENTRY:
                return None
            envelope = json.loads(path.read_bytes())
        except (OSError, ValueError):
            self._reject(path, "unreadable")
            return None
        try:
            if envelope["format"] != FORMAT or envelope["kind"] != kind or envelope["key"] != dict(key):
                self._reject(path, "written for another key")
                return None
            content = base64.b64decode(envelope["content"], validate=True)
            if hashlib.sha256(content).hexdigest() != envelope["sha256"]:
                self._reject(path, "content does not match its sha256")
                return None
        except (KeyError, TypeError, ValueError):
            self._reject(path, "not a cache entry")
            return None
        return content

    def _reject(self, path: Path, why: str) -> None:
        with self._lock:
            self.rejected += 1
        log.warning("cache entry %s ignored (%s); it is rebuilt", path.name, why)

    def put(self, kind: str, key: Mapping[str, str], content: bytes) -> None:
        """Store `content` atomically (temp file, fsync, rename); a failure to write only logs."""
        path = self._path(kind, key)
        envelope = {"format": FORMAT, "kind": kind, "key": dict(key),
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "content": base64.b64encode(content).decode("ascii")}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".entry.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(envelope, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("could not write cache entry %s: %s", path, exc.strerror or exc)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "rejected": self.rejected}
