"""Vulnerability DB settings shared by grype and trivy, what a prepared DB is, and its age and presence checks."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sc_ci.errors import ConfigError, ToolError
from sc_ci.log import get_logger

log = get_logger("tools.vulndb")

Scanner = Literal["grype", "trivy"]
DbSource = Literal["cache", "downloaded", "imported"]

CACHE_DIR_ENV = "SC_CI_VULNDB_DIR"
DEFAULT_MAX_AGE = timedelta(days=5)  # grype's own default (db.max-allowed-built-age: 120h)


class VulnDbError(ToolError):
    """A scanner's vulnerability DB is missing, too old or could not be fetched."""


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """${SC_CI_VULNDB_DIR:-~/.cache/sc-ci/vulndb}: the one directory a CI cache action keeps."""
    env = os.environ if env is None else env
    configured = env.get(CACHE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    home = env.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".cache" / "sc-ci" / "vulndb"


def usable_cache_dir(path: Path, *, explicit: bool) -> Path:
    """The DB cache directory, made if missing. One that was configured (scan.db.cacheDir, --cache-dir,
    SC_CI_VULNDB_DIR) and cannot be made or written is a configuration error, before any scanner runs. The
    default under HOME falls back to a private directory under TMPDIR, with a warning: a CI container
    whose HOME does not exist or is not its user's (Jenkins' docker agent runs as the jenkins uid with the
    agent's HOME) still scans, only without a cache between runs."""
    problem = _unwritable(path)
    if problem is None:
        return path
    if explicit:
        raise ConfigError(f"the vulnerability DB cache directory {path} is not usable",
                          why=problem,
                          fix="Point security.scan.db.cacheDir (SC_CI_SECURITY__SCAN__DB__CACHEDIR) or --cache-dir "
                              "at a directory this user can write, or create it with the right owner.")
    fallback = Path(tempfile.gettempdir()) / f"sc-ci-vulndb-{os.getuid()}"
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
        info = fallback.lstat()
    except OSError as exc:
        raise ConfigError(f"no usable vulnerability DB cache directory ({path}, {fallback})",
                          why=f"{problem}; {exc.strerror or exc}",
                          fix="Set security.scan.db.cacheDir (SC_CI_SECURITY__SCAN__DB__CACHEDIR) to a writable "
                              "directory, or give the job a HOME it can write.") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError(f"{fallback} is not this user's directory (a symlink, or another user's)",
                          why=f"the default cache under HOME is not usable: {problem}",
                          fix="Set security.scan.db.cacheDir (SC_CI_SECURITY__SCAN__DB__CACHEDIR) to a directory "
                              "of this user's.")
    log.warning("the vulnerability DB cache %s is not usable (%s); using %s for this run. Set "
                "security.scan.db.cacheDir (SC_CI_SECURITY__SCAN__DB__CACHEDIR) to a writable directory that "
                "is kept between runs, or give the job a writable HOME.", path, problem, fallback)
    return fallback


def _unwritable(path: Path) -> str | None:
    """Why `path` cannot serve as a cache directory (made here when missing), or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create it: {exc.strerror or exc}"
    if not path.is_dir():
        return "it is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return "this user cannot write to it"
    return None


@dataclass(frozen=True)
class DbSettings:
    """Where the DBs live and how they may be refreshed. `cache_dir/grype` is GRYPE_DB_CACHE_DIR and
    `cache_dir/trivy` trivy's --cache-dir (its DB in trivy/db/). Offline: never download, use what the
    cache holds. `grype_update_url` (GRYPE_DB_UPDATE_URL: a listing base or a latest.json URL) and
    `trivy_repository` (--db-repository, e.g. registry.example.com/aquasec/trivy-db:2) name mirrors."""

    cache_dir: Path
    offline: bool = False
    max_age: timedelta = DEFAULT_MAX_AGE
    grype_update_url: str | None = None
    trivy_repository: str | None = None

    @property
    def grype_dir(self) -> Path:
        return self.cache_dir / "grype"

    @property
    def trivy_dir(self) -> Path:
        return self.cache_dir / "trivy"


@dataclass(frozen=True)
class DbInfo:
    """A DB ready for scans: which scanner, when it was built, its schema, its file, and where it came
    from this run (read from the cache, downloaded, or imported from a file)."""

    scanner: Scanner
    built: datetime
    schema: str
    location: Path
    source: DbSource

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(UTC)) - self.built


def _human(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def check_age(info: DbInfo, settings: DbSettings, *, now: datetime | None = None) -> DbInfo:
    """The DB itself, or VulnDbError when it was built longer ago than settings.max_age."""
    age = info.age(now)
    if age <= settings.max_age:
        return info
    if settings.offline:
        fix = (f"Refresh the cache directory {settings.cache_dir} from a machine with access to the DB "
               f"source (sc-ci with offline: false fills it), import a newer DB file, or raise the allowed age "
               f"(scan.database.maxAge) if an old DB is acceptable.")
    else:
        fix = (f"The DB source served no newer DB: check the mirror ({_mirror(info.scanner, settings)}) is "
               f"being updated, or raise the allowed age (scan.database.maxAge).")
    raise VulnDbError(
        f"the {info.scanner} vulnerability DB is too old: built {info.built:%Y-%m-%d %H:%M} UTC, "
        f"{_human(age)} ago (allowed: {_human(settings.max_age)})",
        why=f"{info.location} (source: {info.source})", fix=fix)


def missing(scanner: Scanner, settings: DbSettings, *, why: str = "") -> VulnDbError:
    """The error for a cache without a DB while offline (or after a failed download)."""
    where = settings.grype_dir if scanner == "grype" else settings.trivy_dir / "db"
    if settings.offline:
        fix = (f"Offline mode uses only the cache: fill {where} first (run once with offline: false, restore "
               f"the CI cache holding {settings.cache_dir}, "
               + ("or `grype db import vulnerability.db` with GRYPE_DB_CACHE_DIR set" if scanner == "grype"
                  else "or unpack a trivy db.tar.gz into it") + ").")
    else:
        fix = f"Check network access to {_mirror(scanner, settings)}, or point the scanner at a reachable mirror."
    return VulnDbError(f"no {scanner} vulnerability DB in {where}", why=why, fix=fix)


def _mirror(scanner: Scanner, settings: DbSettings) -> str:
    if scanner == "grype":
        return settings.grype_update_url or "grype.anchore.io (GRYPE_DB_UPDATE_URL)"
    return settings.trivy_repository or "mirror.gcr.io/aquasec/trivy-db:2 (--db-repository)"


def parse_time(text: str) -> datetime:
    """RFC 3339 with or without fractional seconds (Go prints up to nanoseconds) -> aware UTC datetime."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    main, dot, rest = value.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        value = f"{main}.{digits[:6]}{zone}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
