"""Registry credentials: read them from the Docker config, or write a private one for the tools."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sc_ci.secrets import Secret


@dataclass(frozen=True)
class Credential:
    """A username and secret password (or identity token) for one registry host."""

    username: str
    password: Secret


def config_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME", "~")).expanduser() / ".docker")


def read_credentials(env: Mapping[str, str]) -> dict[str, Credential]:
    """host → credential from $DOCKER_CONFIG/config.json `auths` (credential helpers are left to the tools)."""
    path = config_dir(env) / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    found: dict[str, Credential] = {}
    for host, entry in (data.get("auths") or {}).items():
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username"), entry.get("password")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except ValueError:
                continue
        if user and password:
            key = host.removeprefix("https://").removeprefix("http://").split("/")[0]
            found[key] = Credential(user, Secret(password, f"registry password for {key}"))
    return found


def explicit_credentials(env: Mapping[str, str], registries: set[str]) -> dict[str, Credential]:
    """SC_CI_REGISTRY_USERNAME/_PASSWORD apply to every registry of this run (one registry is the norm)."""
    user, password = env.get("SC_CI_REGISTRY_USERNAME"), env.get("SC_CI_REGISTRY_PASSWORD")
    if not (user and password):
        return {}
    secret = Secret(password, "registry password")
    return {host: Credential(user, secret) for host in registries}


@contextmanager
def private_docker_config(creds: Mapping[str, Credential], base_env: Mapping[str, str]) -> Iterator[str | None]:
    """Yield a DOCKER_CONFIG dir (0700, config.json 0600) holding `creds` merged over the user's own
    config; removed on exit whatever happens. Yields None when there is nothing to add."""
    if not creds:
        yield None
        return
    merged: dict[str, object] = {}
    try:
        merged = json.loads((config_dir(base_env) / "config.json").read_text())
    except (OSError, ValueError):
        merged = {}
    auths = dict(merged.get("auths") or {})  # type: ignore[call-overload]
    for host, cred in creds.items():
        token = base64.b64encode(f"{cred.username}:{cred.password.reveal()}".encode()).decode()
        auths[host] = {"auth": token}
    merged["auths"] = auths
    tmp = tempfile.mkdtemp(prefix="sc-ci-docker-")
    try:
        os.chmod(tmp, 0o700)
        fd = os.open(Path(tmp) / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(merged, fh)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
