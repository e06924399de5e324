"""Registry credentials: read them from the Docker config, or write a private one for the tools."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sc_ci import safefile
from sc_ci.errors import ConfigError
from sc_ci.imageref import host_problem
from sc_ci.sanitize import quoted
from sc_ci.secrets import Secret

DOCKER_HUB = "docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"  # the key docker login writes for Docker Hub
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
GITHUB_REGISTRY = "ghcr.io"
MAX_CONFIG_BYTES = 4 * 1024 * 1024
HOST_VAR = "SC_CI_REGISTRY_HOST"
_LOG = logging.getLogger("sc_ci.dockerconfig")


@dataclass(frozen=True)
class Credential:
    """A username and secret password (or identity token) for one registry host."""

    username: str
    password: Secret


def config_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME", "~")).expanduser() / ".docker")


def normalize_host(server: str) -> str:
    """The registry host a Docker config key or image reference names: scheme and path dropped, Docker
    Hub's aliases folded into `docker.io`, lower case."""
    host = server.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme):]
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


def auth_key(host: str) -> str:
    """The `auths` key the tools look a host up by (Docker Hub's is its historic v1 URL)."""
    return DOCKER_HUB_AUTH_KEY if normalize_host(host) == DOCKER_HUB else host


def _load_config(env: Mapping[str, str]) -> dict[str, object]:
    """The user's config.json as a mapping; {} when missing, unreadable, too big, not a file or not JSON."""
    try:
        data = json.loads(safefile.read_bytes(config_dir(env) / "config.json", limit=MAX_CONFIG_BYTES))
    except (OSError, ValueError, RecursionError, safefile.UnsafeFileError):
        return {}
    return data if isinstance(data, dict) else {}


def _entry_credential(entry: object) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    user, password = entry.get("username"), entry.get("password")
    auth = entry.get("auth")
    if auth:
        if not isinstance(auth, str):
            return None
        try:
            user, sep, password = base64.b64decode(auth, validate=True).decode("utf-8").partition(":")
        except (ValueError, binascii.Error):
            return None
        if not sep:
            return None
    if isinstance(user, str) and isinstance(password, str) and user and password:
        return user, password
    return None


def read_credentials(env: Mapping[str, str]) -> dict[str, Credential]:
    """host → credential from $DOCKER_CONFIG/config.json `auths` (credential helpers are left to the tools).
    A malformed file or entry is skipped, never an error."""
    auths = _load_config(env).get("auths")
    found: dict[str, Credential] = {}
    if not isinstance(auths, dict):
        return found
    for server, entry in auths.items():
        pair = _entry_credential(entry)
        if pair is None or not isinstance(server, str):
            continue
        key = normalize_host(server)
        if not key or host_problem(key):
            continue
        found[key] = Credential(pair[0], Secret(pair[1], f"registry password for {key}"))
    return found


def credential_host(env: Mapping[str, str]) -> str | None:
    """The one registry SC_CI_REGISTRY_USERNAME/_PASSWORD are for: SC_CI_REGISTRY_HOST, else the host of
    SC_CI_REGISTRY (or the action's `registry` input), else the CI's own registry (GitLab's CI_REGISTRY;
    ghcr.io in GitHub Actions). None when nothing names one."""
    for var in (HOST_VAR, "SC_CI_REGISTRY", "INPUT_REGISTRY"):
        value = (env.get(var) or "").strip()
        if value:
            return _checked_host(value, var)
    if env.get("GITLAB_CI") == "true" and (env.get("CI_REGISTRY") or "").strip():
        return _checked_host(env["CI_REGISTRY"].strip(), "CI_REGISTRY")
    if env.get("GITHUB_ACTIONS") == "true":
        return GITHUB_REGISTRY
    return None


def _checked_host(value: str, var: str) -> str:
    host = normalize_host(value)
    problem = host_problem(host)
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "it contains whitespace or control characters"
    elif var == HOST_VAR and "/" in value.split("://", 1)[-1].rstrip("/"):
        problem = "it names a path; give the host[:port] only"
    if problem:
        raise ConfigError(f"{quoted(value, 80)} is not a registry host", path=var, why=problem,
                          fix=f"{HOST_VAR}=registry.example.com   (host[:port], no scheme or path)")
    return host


def explicit_credentials(env: Mapping[str, str], registries: set[str]) -> dict[str, Credential]:
    """SC_CI_REGISTRY_USERNAME/_PASSWORD for the one host `credential_host` names; every other host of
    the run gets nothing from them. ConfigError when they are set but no host is named."""
    user, password = env.get("SC_CI_REGISTRY_USERNAME"), env.get("SC_CI_REGISTRY_PASSWORD")
    if not (user and password):
        return {}
    secret = Secret(password, "SC_CI_REGISTRY_PASSWORD")
    host = credential_host(env)
    if host is None:
        raise ConfigError(
            "SC_CI_REGISTRY_USERNAME / SC_CI_REGISTRY_PASSWORD are set, but not which registry they are for",
            path=HOST_VAR,
            why="registry credentials are only ever sent to the one registry they belong to",
            fix=f"{HOST_VAR}=registry.example.com   (or SC_CI_REGISTRY=registry.example.com/team)",
        )
    others = sorted(normalize_host(r) for r in registries if normalize_host(r) != host)
    if others:
        _LOG.warning("registry credentials apply to %s only, not to %s", host, ", ".join(others))
    return {host: Credential(user, secret)}


@contextmanager
def private_docker_config(creds: Mapping[str, Credential], base_env: Mapping[str, str]) -> Iterator[str | None]:
    """Yield a DOCKER_CONFIG dir (0700, config.json 0600) holding `creds` merged over the user's own
    config, each under its own host only; removed on exit whatever happens. Yields None when there is
    nothing to add. A malformed user config is replaced, never an error."""
    if not creds:
        yield None
        return
    merged = _load_config(base_env)
    auths_in = merged.get("auths")
    # only well-formed entries are kept: one the tools cannot unmarshal would make them ignore the file
    auths: dict[str, object] = {
        k: v for k, v in (auths_in.items() if isinstance(auths_in, dict) else ())
        if isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    }
    helpers_in = merged.get("credHelpers")
    helpers: dict[str, object] = {
        k: v for k, v in (helpers_in.items() if isinstance(helpers_in, dict) else ()) if isinstance(v, str)
    }
    for host, cred in creds.items():
        key = auth_key(host)
        for server in [s for s in auths if normalize_host(s) == normalize_host(host)]:
            del auths[server]  # the explicit credential wins over any alias spelling of the same host
        for server in [s for s in helpers if normalize_host(s) == normalize_host(host)]:
            del helpers[server]
        token = base64.b64encode(f"{cred.username}:{cred.password.reveal()}".encode()).decode()
        auths[key] = {"auth": token}
    merged["auths"] = auths
    if "credHelpers" in merged:
        merged["credHelpers"] = helpers
    tmp = tempfile.mkdtemp(prefix="sc-ci-docker-")
    try:
        os.chmod(tmp, 0o700)
        safefile.write_text(Path(tmp) / "config.json", json.dumps(merged), mode=0o600, fsync=False)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
