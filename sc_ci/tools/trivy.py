"""trivy: fetch or check its vulnerability DB once, then scan images and SBOMs offline from it, failures classified."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sc_ci import retry, runner
from sc_ci.errors import ScError, StepFailed, ToolError
from sc_ci.log import get_logger
from sc_ci.runner import Completed
from sc_ci.services.registry import is_plain_http
from sc_ci.tools import versions
from sc_ci.tools.vulndb import DbInfo, DbSettings, DbSource, VulnDbError, check_age, missing, parse_time

log = get_logger("tools.trivy")

SCAN_TIMEOUT = 1800.0
DB_TIMEOUT = 900.0
QUIET_ENV = {"TRIVY_SKIP_VERSION_CHECK": "true", "TRIVY_DISABLE_TELEMETRY": "true", "TRIVY_NO_PROGRESS": "true"}
# Every scan reads the DB prepared once for the run and nothing else: no DB or Java DB download, no
# network lookups for packages (--offline-scan), no version check or telemetry, vulnerabilities only.
SCAN_FLAGS = ("--skip-db-update", "--skip-java-db-update", "--offline-scan", "--skip-version-check",
              "--disable-telemetry", "--no-progress", "--scanners", "vuln", "--format", "json")


class Trivy:
    """One trivy binary of a known version."""

    def __init__(self, path: Path, version: str, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.version = version.lstrip("v")
        self._env = dict(runner.base_env(env))
        self._caller_env = dict(env or {})

    # ---- argv builders (pure) -------------------------------------------------
    def db_argv(self, settings: DbSettings) -> list[str]:
        """`trivy image --download-db-only` into the cache (a no-op when the cached DB is still fresh),
        from settings.trivy_repository when set (plain HTTP/--insecure only for a loopback mirror)."""
        argv = [str(self.path), "image", "--download-db-only", "--cache-dir", str(settings.trivy_dir),
                "--skip-version-check", "--disable-telemetry", "--no-progress", "--quiet"]
        if settings.trivy_repository:
            argv += ["--db-repository", settings.trivy_repository]
            if is_plain_http(settings.trivy_repository.split("/", 1)[0]):
                argv.append("--insecure")
        return argv

    def scan_argv(self, *, settings: DbSettings, image: str | None = None, sbom: Path | None = None,
                  plain_http: bool = False, platform: str | None = None) -> list[str]:
        """`trivy image IMG@sha256:… --image-src remote` (straight from the registry; there is no Docker
        daemon) or `trivy sbom PATH`, over the prepared cache, JSON on stdout."""
        if (image is None) == (sbom is None):
            raise ValueError("trivy scan needs exactly one of image or sbom")
        base = [str(self.path)]
        if image is not None:
            if "@sha256:" not in image:
                raise ValueError(f"scan images by digest (REPO@sha256:…), not {image!r}")
            argv = [*base, "image", "--image-src", "remote", "--cache-dir", str(settings.trivy_dir), *SCAN_FLAGS]
            if plain_http:
                argv.append("--insecure")
            if platform:
                argv += ["--platform", platform]
            return [*argv, "--quiet", image]
        return [*base, "sbom", "--cache-dir", str(settings.trivy_dir), *SCAN_FLAGS, "--quiet", str(sbom)]

    def env_for(self, *, docker_config: str | None = None) -> dict[str, str]:
        """Base environment, update checks and telemetry off, and the Docker config (registry auth)."""
        env = {**self._env, **QUIET_ENV}
        if docker_config:
            env["DOCKER_CONFIG"] = docker_config
        elif "DOCKER_CONFIG" in self._caller_env:
            env["DOCKER_CONFIG"] = self._caller_env["DOCKER_CONFIG"]
        return env

    # ---- the DB, once per run ---------------------------------------------------
    def db_status(self, settings: DbSettings, source: DbSource = "cache") -> DbInfo | None:
        """What the cache holds (metadata.json beside trivy.db), or None when there is no DB."""
        db_dir = settings.trivy_dir / "db"
        try:
            meta = json.loads((db_dir / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (db_dir / "trivy.db").is_file() or not isinstance(meta, dict) or "UpdatedAt" not in meta:
            return None
        try:
            built = parse_time(str(meta["UpdatedAt"]))
        except ValueError:
            return None
        return DbInfo("trivy", built, f"v{meta.get('Version', '?')}", db_dir / "trivy.db", source)

    def prepare_db(self, settings: DbSettings) -> DbInfo:
        """Make the DB ready for every scan of the run: download it unless offline (trivy skips the
        download while the cached DB is fresh), then check it exists and is not older than max_age."""
        before = _downloaded_at(settings)
        source: DbSource = "cache"
        if not settings.offline:
            argv, env = self.db_argv(settings), self.env_for()
            result = retry.call(lambda: _transient_or(runner.run(argv, env=env, timeout=DB_TIMEOUT)))
            if not result.ok:
                cached = self.db_status(settings)
                if cached is None:
                    raise missing("trivy", settings, why=_tail(result))
                log.warning("trivy DB download failed; using the cached DB built %s: %s", cached.built,
                            _tail(result))
            elif _downloaded_at(settings) != before:
                source = "downloaded"
        info = self.db_status(settings, source)
        if info is None:
            raise missing("trivy", settings)
        return check_age(info, settings)

    # ---- scans ------------------------------------------------------------------
    def scan(self, *, settings: DbSettings, image: str | None = None, sbom: Path | None = None,
             plain_http: bool = False, platform: str | None = None, docker_config: str | None = None,
             timeout: float = SCAN_TIMEOUT) -> dict[str, Any]:
        """One scan over the prepared DB; the parsed JSON report. Transient registry errors are retried."""
        argv = self.scan_argv(settings=settings, image=image, sbom=sbom, plain_http=plain_http, platform=platform)
        env = self.env_for(docker_config=docker_config)
        target = image or str(sbom)
        result = retry.call(lambda: _transient_or(runner.run(argv, env=env, timeout=timeout)))
        if not result.ok:
            raise classify(result, target, settings)
        try:
            report = json.loads(result.stdout)
        except ValueError as exc:
            raise ToolError(f"trivy printed no JSON report for {target}", why=result.stdout[:300],
                            fix="Rerun with -v to see trivy's output.") from exc
        if not isinstance(report, dict):
            raise ToolError(f"trivy's report for {target} is not a JSON object", fix="Rerun with -v.")
        return report


def _downloaded_at(settings: DbSettings) -> str | None:
    try:
        meta = json.loads((settings.trivy_dir / "db" / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(meta.get("DownloadedAt")) if isinstance(meta, dict) else None


def _transient_or(result: Completed) -> Completed:
    if not result.ok and retry.is_transient_text(result.stderr) and not _is_auth(result.stderr) \
            and not _is_not_found(result.stderr):
        raise retry.TransientError(result.tail(3))
    return result


def _is_auth(stderr: str) -> bool:
    return any(s in stderr for s in ("UNAUTHORIZED", "DENIED", "401 Unauthorized", "403 Forbidden",
                                     "unauthorized: authentication required"))


def _is_not_found(stderr: str) -> bool:
    return any(s in stderr for s in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "unable to find the specified image"))


def _tail(result: Completed, lines: int = 6) -> str:
    return "\n".join(line for line in result.tail(lines).splitlines() if line.strip())


def classify(result: Completed, target: str, settings: DbSettings | None = None) -> ScError:
    """Turn a failed scan into what the user can act on."""
    err = result.stderr
    tail = _tail(result)
    if "--skip-db-update cannot be specified on the first run" in err or "DB error" in err:
        if settings is not None:
            return missing("trivy", settings, why=tail)
        return VulnDbError("trivy has no vulnerability DB to scan with", why=tail,
                           fix="Prepare the DB first (trivy image --download-db-only into the same --cache-dir).")
    if _is_auth(err):
        return StepFailed(f"trivy could not pull {target}: the registry denied access", why=tail,
                          fix="Log in to the registry (docker login / DOCKER_CONFIG) or set SC_CI_REGISTRY_USERNAME "
                              "and SC_CI_REGISTRY_PASSWORD; scanning needs pull access.")
    if _is_not_found(err):
        return StepFailed(f"trivy could not find {target} in the registry", why=tail,
                          fix="Check the image reference and that it was pushed.")
    if "server gave HTTP response to HTTPS client" in err:
        return StepFailed(f"trivy could not pull {target}: the registry speaks plain HTTP", why=tail,
                          fix="sc-ci uses plain HTTP only for loopback registries (127.0.0.1, localhost); serve "
                              "the registry over HTTPS.")
    if "CycloneDX decode error" in err and "specification version" in err:
        return StepFailed(f"trivy cannot read the CycloneDX version of {target}", why=tail,
                          fix="Give trivy a CycloneDX 1.6 SBOM (syft: -o cyclonedx-json@1.6); trivy 0.68 reads "
                              "CycloneDX up to 1.6, syft writes 1.7 by default.")
    if "no such file or directory" in err.lower() and not target.count("@sha256:"):
        return StepFailed(f"trivy could not read the SBOM {target}", why=tail, fix="Check the SBOM file exists.")
    return ToolError(f"trivy failed for {target} (exit {result.returncode})", why=tail,
                     fix="Rerun with -v to see trivy's full output.")


def find(env: Mapping[str, str]) -> Trivy:
    """The pinned trivy, checked against the minimum version and the forbidden ones."""
    found = versions.require("trivy", env)
    return Trivy(found.path, found.version or "", env)
