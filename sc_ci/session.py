"""What a command needs once per run: config, CI context, registry client, tools, image digests."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from sc_ci import ci, config, imageref, parallel
from sc_ci.ci.interface import CIContext
from sc_ci.config.loader import LoadedConfig
from sc_ci.errors import UsageError
from sc_ci.imageref import ImageRef
from sc_ci.services import dockerconfig
from sc_ci.services.registry import RegistryClient
from sc_ci.signing import keys
from sc_ci.tools import versions
from sc_ci.tools.cosign import Cosign


@dataclass
class Session:
    """One run's shared state; built before any tool starts, so bad input fails first."""

    env: Mapping[str, str]
    loaded: LoadedConfig
    ci: CIContext
    images: tuple[ImageRef, ...]
    registry: RegistryClient
    explicit_creds: Mapping[str, dockerconfig.Credential]
    upstream: frozenset[str] = frozenset()  # references the project does not build (scanned only)
    _resolved: tuple[ImageRef, ...] | None = field(default=None, repr=False)

    @property
    def workers(self) -> int:
        return self.loaded.runtime.workers

    @property
    def dry_run(self) -> bool:
        return self.loaded.runtime.dry_run

    def resolve_digests(self) -> tuple[ImageRef, ...]:
        """Each tag resolved once per run, in parallel; digests given by the user are checked to exist.
        Every later step of the run works on these digests, even if a tag moves meanwhile."""
        if self._resolved is None:
            self._resolved = tuple(parallel.map_bounded(self.registry.resolve, list(self.images), self.workers))
        return self._resolved

    def docker_config(self) -> AbstractContextManager[str | None]:
        """A private DOCKER_CONFIG holding explicitly given registry credentials (None: use the user's)."""
        return dockerconfig.private_docker_config(self.explicit_creds, self.env)

    def cosign(self) -> Cosign:
        found = versions.require("cosign", self.env)
        return Cosign(found.path, found.version or "", self.env)


def runtime_flags(args: argparse.Namespace) -> dict[str, object]:
    flags: dict[str, object] = {}
    if getattr(args, "dry_run", False):
        flags["dryRun"] = True
    if getattr(args, "workers", None):
        flags["workers"] = args.workers
    if getattr(args, "secrets_file", None):
        flags["secretsFile"] = args.secrets_file
    for attr, key in (("timeout", "timeout"), ("step_timeout", "stepTimeout")):
        if getattr(args, attr, None) is not None:
            flags[key] = getattr(args, attr)
    return flags


def check_keys(loaded: LoadedConfig) -> None:
    """Key files exist, env:// variables are set, ${secret:…} references resolve: before any tool runs."""
    loaded.check_secrets()
    for path, public in (("signing.privateKey", False), ("signing.publicKey", True)):
        keys.configured(loaded, path, public=public)


def open_session(args: argparse.Namespace, env: Mapping[str, str], flags: Mapping[str, object],
                 *, need_images: bool = True) -> Session:
    """Validate image references, load config, detect CI: all before any tool or network call."""
    cli_refs: Sequence[str] = getattr(args, "images", None) or []
    parsed = [imageref.parse(r) for r in cli_refs]
    loaded = config.load(env=env, flags={**runtime_flags(args), **flags},
                         config_path=getattr(args, "config", None), stack=getattr(args, "stack", None),
                         environment=getattr(args, "environment", None), project_root=Path.cwd())
    if not parsed:
        parsed = [imageref.parse(r) for r in loaded.images]
    if need_images and not parsed:
        raise UsageError("no image given",
                         fix="Pass --image REF (repeatable), set SC_CI_IMAGES / the `images` input, or point "
                             "--stack/--env at a Simple Container project.")
    check_keys(loaded)
    hosts = {ref.registry for ref in parsed}
    explicit = dockerconfig.explicit_credentials(env, hosts)
    creds = {**dockerconfig.read_credentials(env), **explicit}
    upstream = frozenset(str(imageref.parse(r)) for r in loaded.upstream) if not cli_refs else frozenset()
    return Session(env, loaded, ci.detect(env), tuple(parsed), RegistryClient.from_env(env, creds), explicit,
                   upstream)
