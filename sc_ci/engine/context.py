"""What every step of one run shares: the session (config, CI context, registry), the tools found once,
the one signing plan (and its one OIDC token), per-digest manifests, a private work directory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sc_ci.engine.cache import Cache
from sc_ci.imageref import ImageRef
from sc_ci.provenance.interface import Explicit
from sc_ci.services.registry import Manifest
from sc_ci.session import Session
from sc_ci.signing import identity
from sc_ci.signing.plan import SigningPlan
from sc_ci.tools import versions
from sc_ci.tools.cosign import Cosign
from sc_ci.tools.syft import Syft

if TYPE_CHECKING:
    from sc_ci.results.run import PlannedImage
    from sc_ci.verify.expect import Expectations

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions:
    """What a command asks for beyond the configuration (flags that are not config keys)."""

    explicit: Explicit = field(default_factory=Explicit)
    dockerfile: str | None = None  # provenance materials: base images of this Dockerfile
    build_args: Mapping[str, str] = field(default_factory=dict)
    statement_dir: Path | None = None  # also save each provenance statement here
    provenance_verify: bool | None = None  # read provenance back after attaching (None: when verifiable)
    attach_sboms: bool | None = None  # None: security.sbom attach settings
    given_identity: identity.Given | None = None  # verify commands: --certificate-* flags
    only_verify: bool = False  # `image verify`: the verify step checks signatures, nothing is signed
    expectations: Expectations | None = None  # the verify side: what every verify step checks against
    attest_vsa: bool = False  # `release verify --attest-vsa`: a signed verification summary per image
    sbom_format: str | None = None  # `sbom verify --format`: the one format checked
    sbom_local: object = None  # `sbom verify --sbom FILE`: the parsed local SBOM the attested one must equal


@dataclass
class RunContext:
    """One run's shared state. Built before any tool runs; steps read it from worker threads, so what they
    share is created during planning (single-threaded) or behind a lock."""

    session: Session
    options: RunOptions
    workdir: Path
    cache: Cache | None = None
    docker_config: str | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    signing: SigningPlan | None = None
    _tools: dict[str, object] = field(default_factory=dict, repr=False)
    _manifests: dict[str, Manifest] = field(default_factory=dict, repr=False)
    facts: dict[str, object] = field(default_factory=dict, repr=False)  # what the run found out once (locked)
    planned: tuple[PlannedImage, ...] = ()  # the run's images, set once they are resolved (before any step runs)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _once: dict[str, Future[Any]] = field(default_factory=dict, repr=False)
    _background: ThreadPoolExecutor | None = field(default=None, repr=False)
    closing: threading.Event = field(default_factory=threading.Event, repr=False)  # set when the run stops

    @property
    def env(self) -> Mapping[str, str]:
        return self.session.env

    @property
    def security(self):  # type: ignore[no-untyped-def]  # SecurityConfig (kept untyped to avoid a cycle)
        return self.session.loaded.security

    @property
    def dry_run(self) -> bool:
        return self.session.dry_run

    # ---- tools: located and version-checked once per run -----------------------
    def tool_version(self, name: str) -> versions.ToolVersion:
        return versions.require(name, self.env)

    def cosign(self) -> Cosign:
        with self._lock:
            tool = self._tools.get("cosign")
            if not isinstance(tool, Cosign):
                found = self.tool_version("cosign")
                tool = self._tools["cosign"] = Cosign(found.path, found.version or "", self.env)
            return tool

    def syft(self) -> Syft:
        with self._lock:
            tool = self._tools.get("syft")
            if not isinstance(tool, Syft):
                found = self.tool_version("syft")
                tool = self._tools["syft"] = Syft(found.path, found.version or "", self.env)
            return tool

    def tool(self, name: str) -> object:
        """The run's `name` tool: cosign and syft as objects; others (the scanners) as their step registered
        them, or — before that — located and version-checked."""
        if name == "cosign":
            return self.cosign()
        if name == "syft":
            return self.syft()
        with self._lock:
            if name in self._tools:
                return self._tools[name]
        return self.tool_version(name)

    def register_tool(self, name: str, tool: object) -> None:
        with self._lock:
            self._tools[name] = tool

    def tool_versions(self) -> dict[str, str]:
        with self._lock:
            return {name: str(getattr(tool, "version", "")) for name, tool in sorted(self._tools.items())}

    # ---- work done once per run, shared by every image's steps ----------------
    def once(self, key: str, work: Callable[[], T]) -> T:
        """`work()`'s result, computed once per run for `key` (the first caller computes it, the others wait
        for it; an exception is every caller's)."""
        return self.start(key, work).result()

    def start(self, key: str, work: Callable[[], T]) -> Future[T]:
        """Start `work` once per run for `key` in the background (warming what steps will ask for), or
        return the one already started."""
        with self._lock:
            found = self._once.get(key)
            if found is None:
                if self.closing.is_set():
                    raise RuntimeError("the run is over: no new background work")
                if self._background is None:
                    self._background = ThreadPoolExecutor(max(2, self.session.workers),
                                                          thread_name_prefix="sc-ci-once")
                found = self._once[key] = self._background.submit(work)
        return found

    def close(self) -> None:
        """Stop background work (cancellation, the end of the run): nothing queued starts any more."""
        self.closing.set()
        with self._lock:
            pool, self._background = self._background, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # ---- registry facts, fetched once per digest -------------------------------
    def manifest(self, ref: ImageRef) -> Manifest:
        key = ref.by_digest
        with self._lock:
            cached = self._manifests.get(key)
        if cached is not None:
            return cached
        manifest = self.session.registry.manifest(ref)
        with self._lock:
            self._manifests[key] = manifest
        return manifest

    def signing_plan(self) -> SigningPlan:
        """The run's one signing plan (key or keyless with its one token), built on first use during
        planning; every step that signs uses this one."""
        if self.signing is None:
            from sc_ci.signing import setup as signing_setup

            self.signing = signing_setup.plan(self.session, self.cosign())
        return self.signing
