"""grype: update, import or check its vulnerability DB once, then scan images and SBOMs from it, failures classified."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sc_ci import retry, runner
from sc_ci.errors import ScError, StepFailed, ToolError
from sc_ci.log import get_logger
from sc_ci.runner import Completed
from sc_ci.tools import versions
from sc_ci.tools.vulndb import (
    DbInfo,
    DbSettings,
    DbSource,
    VulnDbError,
    check_age,
    missing,
    parse_time,
)

log = get_logger("tools.grype")

SCAN_TIMEOUT = 1800.0
DB_TIMEOUT = 900.0
QUIET_ENV = {"GRYPE_CHECK_FOR_APP_UPDATE": "false"}
UPDATED_TEXT = "updated to latest version"  # `grype db update` after installing a new DB
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DB_ABSENT = ("does not exist", "database not found", "no such file or directory")


class Grype:
    """One grype binary of a known version."""

    def __init__(self, path: Path, version: str, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.version = version.lstrip("v")
        self._env = dict(runner.base_env(env))
        self._caller_env = dict(env or {})

    # ---- argv and environment (pure) --------------------------------------------
    def db_update_argv(self) -> list[str]:
        return [str(self.path), "db", "update"]

    def db_status_argv(self) -> list[str]:
        return [str(self.path), "db", "status", "-o", "json"]

    def db_import_argv(self, archive: Path) -> list[str]:
        return [str(self.path), "db", "import", str(archive)]

    def db_env(self, settings: DbSettings, *, update: bool = False) -> dict[str, str]:
        """The DB commands' environment: the cache dir, the mirror, and for `db update` grype's own age
        check set to max_age (so a too-old cached DB is replaced); elsewhere our check decides."""
        env = {**self._env, **QUIET_ENV, "GRYPE_DB_CACHE_DIR": str(settings.grype_dir),
               "GRYPE_DB_AUTO_UPDATE": "false"}
        if settings.grype_update_url:
            env["GRYPE_DB_UPDATE_URL"] = settings.grype_update_url
        if update:
            env["GRYPE_DB_VALIDATE_AGE"] = "true"
            env["GRYPE_DB_MAX_ALLOWED_BUILT_AGE"] = f"{int(settings.max_age.total_seconds())}s"
        else:
            env["GRYPE_DB_VALIDATE_AGE"] = "false"
        return env

    def scan_argv(self, *, image: str | None = None, sbom: Path | None = None,
                  platform: str | None = None) -> list[str]:
        """`grype registry:IMG@sha256:… -o json` (pulled from the registry, never from a Docker daemon)
        or `grype sbom:PATH -o json`. No --fail-on: the engine applies the gates itself."""
        if (image is None) == (sbom is None):
            raise ValueError("grype scan needs exactly one of image or sbom")
        if image is not None:
            if "@sha256:" not in image:
                raise ValueError(f"scan images by digest (REPO@sha256:…), not {image!r}")
            source = f"registry:{image}"
        else:
            source = f"sbom:{sbom}"
        argv = [str(self.path), source, "-o", "json"]  # not --quiet: it silences the error messages too
        if platform and image is not None:
            argv += ["--platform", platform]
        return argv

    def env_for(self, settings: DbSettings, *, plain_http: bool = False,
                docker_config: str | None = None) -> dict[str, str]:
        """A scan's environment: the prepared cache, never an update (GRYPE_DB_AUTO_UPDATE=false, no
        update URL), no age or update-check failures mid-run, plain HTTP only for a loopback registry,
        and the Docker config (registry auth)."""
        env = {**self._env, **QUIET_ENV, "GRYPE_DB_CACHE_DIR": str(settings.grype_dir),
               "GRYPE_DB_AUTO_UPDATE": "false", "GRYPE_DB_VALIDATE_AGE": "false",
               "GRYPE_DB_REQUIRE_UPDATE_CHECK": "false"}
        if plain_http:
            env["GRYPE_REGISTRY_INSECURE_USE_HTTP"] = "true"
        if docker_config:
            env["DOCKER_CONFIG"] = docker_config
        elif "DOCKER_CONFIG" in self._caller_env:
            env["DOCKER_CONFIG"] = self._caller_env["DOCKER_CONFIG"]
        return env

    # ---- the DB, once per run ---------------------------------------------------
    def db_status(self, settings: DbSettings, source: DbSource = "cache") -> DbInfo | None:
        """`grype db status -o json` over the cache: the DB, or None when the cache holds none."""
        result = runner.run(self.db_status_argv(), env=self.db_env(settings), timeout=120.0)
        data = _first_object(result.stdout)
        error = str(data.get("error") or "") if data else ""
        if data is None or (not result.ok and not error):
            if any(s in (result.stderr + result.stdout).lower() for s in _DB_ABSENT):
                return None
            raise ToolError("grype db status failed", why=_tail(result), fix="Rerun with -v to see grype's output.")
        if error:
            if any(s in error.lower() for s in _DB_ABSENT):
                return None
            raise VulnDbError(f"the grype vulnerability DB in {settings.grype_dir} is not usable", why=error,
                              fix="Delete the directory and prepare the DB again (sc-ci refills it when not "
                                  "offline; offline, import a DB with `grype db import`).")
        try:
            built = parse_time(str(data["built"]))
        except (KeyError, ValueError) as exc:
            raise ToolError("grype db status printed no build time", why=result.stdout[:300],
                            fix="Rerun with -v to see grype's output.") from exc
        location = Path(str(data.get("path") or settings.grype_dir / "6" / "vulnerability.db"))
        return DbInfo("grype", built, str(data.get("schemaVersion", "")), location, source)

    def prepare_db(self, settings: DbSettings) -> DbInfo:
        """Make the DB ready for every scan of the run: `grype db update` unless offline (a no-op when the
        cached DB is current), then check it exists and is not older than max_age."""
        source: DbSource = "cache"
        if not settings.offline:
            argv, env = self.db_update_argv(), self.db_env(settings, update=True)
            result = retry.call(lambda: _transient_or(runner.run(argv, env=env, timeout=DB_TIMEOUT)))
            if result.ok:
                if UPDATED_TEXT in (result.stdout + result.stderr):
                    source = "downloaded"
            else:
                cached = self.db_status(settings)
                if cached is None:
                    raise missing("grype", settings, why=_tail(result))
                log.warning("grype DB update failed; using the cached DB built %s: %s", cached.built, _tail(result))
        info = self.db_status(settings, source)
        if info is None:
            raise missing("grype", settings)
        return check_age(info, settings)

    def import_db(self, settings: DbSettings, archive: Path) -> DbInfo:
        """`grype db import FILE` (a vulnerability.db or an archive holding one) into the cache, then the
        same checks as prepare_db: what an air-gapped run does with a DB file carried in."""
        result = runner.run(self.db_import_argv(archive), env=self.db_env(settings), timeout=DB_TIMEOUT)
        if not result.ok:
            raise VulnDbError(f"grype could not import the vulnerability DB {archive}", why=_tail(result),
                              fix="Check the file is a grype DB of schema v6 (vulnerability.db or a "
                                  ".tar.gz/.tar.zst holding it).")
        info = self.db_status(settings, "imported")
        if info is None:
            raise missing("grype", settings, why=f"grype db import {archive} left no DB behind")
        return check_age(info, settings)

    # ---- scans ------------------------------------------------------------------
    def scan(self, *, settings: DbSettings, image: str | None = None, sbom: Path | None = None,
             plain_http: bool = False, platform: str | None = None, docker_config: str | None = None,
             timeout: float = SCAN_TIMEOUT) -> dict[str, Any]:
        """One scan over the prepared DB; the parsed JSON report. Transient registry errors are retried.
        Exit 1 is a real error (we never pass --fail-on, so 2 does not happen)."""
        argv = self.scan_argv(image=image, sbom=sbom, platform=platform)
        env = self.env_for(settings, plain_http=plain_http, docker_config=docker_config)
        target = image or str(sbom)
        result = retry.call(lambda: _transient_or(runner.run(argv, env=env, timeout=timeout)))
        if not result.ok:
            raise classify(result, target, settings)
        report = _first_object(result.stdout)
        if report is None:
            raise ToolError(f"grype printed no JSON report for {target}", why=result.stdout[:300],
                            fix="Rerun with -v to see grype's output.")
        return report


def _first_object(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        start = text.find("{")
        if start < 0:
            return None
        try:
            value = json.loads(text[start:])
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _transient_or(result: Completed) -> Completed:
    if not result.ok and retry.is_transient_text(result.stderr) and not _is_auth(result.stderr) \
            and not _is_not_found(result.stderr):
        raise retry.TransientError(result.tail(3))
    return result


def _is_auth(stderr: str) -> bool:
    return any(s in stderr for s in ("UNAUTHORIZED", "DENIED", "401 Unauthorized", "403 Forbidden"))


def _is_not_found(stderr: str) -> bool:
    return any(s in stderr for s in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"))


def _tail(result: Completed, lines: int = 6) -> str:
    text = _ANSI.sub("", result.tail(lines))
    return "\n".join(line for line in text.splitlines() if line.strip() and "insecure-use-http enabled" not in line)


def classify(result: Completed, target: str, settings: DbSettings | None = None) -> ScError:
    """Turn a failed scan into what the user can act on."""
    err = result.stderr
    tail = _tail(result)
    if any(s in err for s in ("failed to load vulnerability db", "vulnerability database error",
                              "Try 'grype db update'")):
        if settings is not None:
            return missing("grype", settings, why=tail)
        return VulnDbError("grype has no vulnerability DB to scan with", why=tail,
                           fix="Prepare the DB first (grype db update / import with the same GRYPE_DB_CACHE_DIR).")
    if "the vulnerability database was built" in err:
        return VulnDbError("grype refused its vulnerability DB as too old", why=tail,
                           fix="Prepare a newer DB, or raise the allowed age (scan.database.maxAge).")
    if _is_auth(err):
        return StepFailed(f"grype could not pull {target}: the registry denied access", why=tail,
                          fix="Log in to the registry (docker login / DOCKER_CONFIG) or set SC_CI_REGISTRY_USERNAME "
                              "and SC_CI_REGISTRY_PASSWORD; scanning needs pull access.")
    if _is_not_found(err) or ("could not fetch image" in err.lower() and "not found" in err.lower()):
        return StepFailed(f"grype could not find {target} in the registry", why=tail,
                          fix="Check the image reference and that it was pushed.")
    if "server gave HTTP response to HTTPS client" in err:
        return StepFailed(f"grype could not pull {target}: the registry speaks plain HTTP", why=tail,
                          fix="sc-ci uses plain HTTP only for loopback registries (127.0.0.1, localhost); serve "
                              "the registry over HTTPS.")
    return ToolError(f"grype failed for {target} (exit {result.returncode})", why=tail,
                     fix="Rerun with -v to see grype's full output.")


def find(env: Mapping[str, str]) -> Grype:
    """The pinned grype, checked against the minimum version (ToolError with the fix otherwise)."""
    found = versions.require("grype", env)
    return Grype(found.path, found.version or "", env)
