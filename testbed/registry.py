"""A throwaway Docker distribution registry on 127.0.0.1 (optional htpasswd auth, TLS) for tests and demos."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import requests

from sc_ci import processes, runner
from sc_ci.errors import ScError
from testbed.oci import RegistryClient


class Pushed(Protocol):
    """An image in a registry (testbed.images.PushedImage)."""

    @property
    def repository(self) -> str: ...

    @property
    def digest(self) -> str: ...

DEFAULT_BINARY = "/usr/bin/docker-registry"
_INSTALL_FIX = "apt-get install docker-registry (Debian's package of Docker distribution v2)"
_DIR_PREFIX = "sc-ci-registry-"
_LIVE = processes.Tracker()


class RegistryStartError(ScError):
    """The local registry could not be started (or generated its setup files)."""


def find_binary() -> Path | None:
    """The registry binary: $SC_CI_REGISTRY_BINARY, `docker-registry` on PATH, or Debian's path."""
    candidates = [os.environ.get("SC_CI_REGISTRY_BINARY"), shutil.which("docker-registry"), DEFAULT_BINARY]
    for cand in candidates:
        if cand and os.access(cand, os.X_OK):
            return Path(cand)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the caller retries on a lost race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalRegistry:
    """`docker-registry serve` on a free 127.0.0.1 port with temporary filesystem storage.

    Use as a context manager; `.host` is "127.0.0.1:PORT". With `auth=(user, password)` the registry
    asks for HTTP Basic credentials (htpasswd, bcrypt); distribution does not require TLS for that.
    With `tls=True` it serves HTTPS with a certificate for 127.0.0.1/localhost signed by a CA made at
    start (`.ca_file`). The process runs in its own process group and is stopped at exit; with
    `die_with_parent` (default) the kernel also kills it if the starting *thread* dies, so start it
    from a thread that lives as long as the registry is needed (the main thread, normally).
    """

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        tls: bool = False,
        binary: str | Path | None = None,
        startup_timeout: float = 20.0,
        die_with_parent: bool = True,
        log_level: Literal["error", "warn", "info", "debug"] = "warn",
    ) -> None:
        self.auth = auth
        self.tls = tls
        self._binary = Path(binary) if binary else None
        self._startup_timeout = startup_timeout
        self._die_with_parent = die_with_parent
        self._log_level = log_level
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._port: int | None = None
        self.ca_file: Path | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> LocalRegistry:
        if self._proc is not None:
            return self
        binary = self._binary or find_binary()
        if binary is None or not os.access(binary, os.X_OK):
            raise RegistryStartError("docker-registry binary not found",
                                     why=f"looked for $SC_CI_REGISTRY_BINARY, PATH and {DEFAULT_BINARY}",
                                     fix=_INSTALL_FIX)
        _remove_stale_dirs()
        self._tmp = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
        (self._tmp / "owner.pid").write_text(f"{os.getpid()}\n")
        try:
            if self.tls:
                self.ca_file = _make_tls_files(self._tmp)
            if self.auth:
                _write_htpasswd(self._tmp / "htpasswd", *self.auth)
            last_error = ""
            for _attempt in range(3):
                port = free_port()
                self._write_config(port)
                self._launch(binary)
                status = self._wait_ready(port)
                if status == "ready":
                    self._port = port
                    return self
                last_error = self.stderr_tail()
                self._terminate()
                if status != "port-taken":
                    break
            raise RegistryStartError("the local registry did not start",
                                     why=last_error or "no output from docker-registry",
                                     fix=f"Run `{binary} serve {self._tmp / 'config.yml'}` by hand "
                                         "to see why.")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the process (TERM, then KILL) and remove the storage and config directory."""
        self._terminate()
        _LIVE.discard(self)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._port = None

    def _write_config(self, port: int) -> None:
        assert self._tmp is not None
        http: dict[str, Any] = {
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls:
            http["tls"] = {"certificate": str(self._tmp / "server.crt"), "key": str(self._tmp / "server.key")}
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": self._log_level, "accesslog": {"disabled": True},
                    "fields": {"service": "sc-ci-test-registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self._tmp / "data")},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,  # no `debug` section: no debug/metrics listener at all
        }
        if self.auth:
            htpasswd = str(self._tmp / "htpasswd")
            config["auth"] = {"htpasswd": {"realm": "sc-ci-test-registry", "path": htpasswd}}
        # JSON is YAML: no YAML library needed here.
        (self._tmp / "config.yml").write_text(json.dumps(config, indent=2))

    def _launch(self, binary: Path) -> None:
        assert self._tmp is not None
        argv = [str(binary), "serve", str(self._tmp / "config.yml")]
        if self._die_with_parent:
            argv = processes.die_with_parent(argv)
        # Only PATH/HOME/locale/proxy basics: REGISTRY_* variables of the caller would override the config.
        env = runner.base_env()
        env["HOME"] = str(self._tmp)
        with open(self._tmp / "registry.log", "wb") as log:
            self._proc = subprocess.Popen(  # argv list, no shell
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=self._tmp, start_new_session=True,
            )
        _LIVE.add(self)

    def _wait_ready(self, port: int) -> processes.Readiness:
        assert self._proc is not None
        url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/v2/"
        verify: bool | str = str(self.ca_file) if self.ca_file else True
        with requests.Session() as probe:
            probe.trust_env = False

            def ready() -> bool:
                try:
                    return probe.get(url, timeout=1.0, verify=verify).status_code in (200, 401)
                except requests.RequestException:
                    return False

            return processes.wait_ready(self._proc, ready, self._startup_timeout, self.stderr_tail)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            processes.stop_group(proc)

    # -- what callers use ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("registry is not running")
        return self._proc.pid

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("registry is not running; use it as a context manager or call start()")
        return self._port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> Literal["http", "https"]:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def root(self) -> Path:
        """The temporary directory (config, storage under data/, log, TLS and htpasswd files)."""
        if self._tmp is None:
            raise RuntimeError("registry is not running")
        return self._tmp

    def client(self, *, anonymous: bool = False) -> RegistryClient:
        """A pusher/reader for this registry, with its credentials and CA unless `anonymous`."""
        return RegistryClient(self.host, scheme=self.scheme, auth=None if anonymous else self.auth,
                              verify=str(self.ca_file) if self.ca_file else True)

    def legacy_layers(self, image: Pushed, kind: str) -> int:
        """How many signatures (kind "sig") or attestations ("att") the legacy sha256-….KIND tag holds
        for the image's digest: one layer each; 0 when there is no such tag."""
        tag = image.digest.replace(":", "-") + f".{kind}"
        with self.client() as client:
            resp = client.request("GET", f"/v2/{image.repository}/manifests/{tag}",
                                  headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        return len(resp.json()["layers"]) if resp.status_code == 200 else 0

    def write_docker_config(self, directory: str | Path) -> Path:
        """Write DIR/config.json with this registry's credentials (for cosign, syft, grype, trivy via
        DOCKER_CONFIG=DIR); returns the file path. Mode 0600."""
        path = Path(directory) / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        auths: dict[str, Any] = {}
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            auths[self.host] = {"auth": token}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"auths": auths}, fh, indent=2)
        return path

    def stderr_tail(self, lines: int = 30) -> str:
        if self._tmp is None:
            return ""
        try:
            text = (self._tmp / "registry.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def __repr__(self) -> str:
        where = self.host if self._port else "stopped"
        return f"LocalRegistry({where}, auth={'yes' if self.auth else 'no'}, tls={self.tls})"


def _remove_stale_dirs() -> None:
    """Remove the directories of registries whose owning process died without cleaning up (SIGKILL,
    SIGTERM without a handler: atexit never ran; the registry itself died with its parent)."""
    for candidate in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*"):
        try:
            owner = int((candidate / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or _alive(owner):
            continue
        shutil.rmtree(candidate, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_htpasswd(path: Path, user: str, password: str) -> None:
    try:
        import bcrypt
    except ImportError as exc:
        raise RegistryStartError("auth needs the bcrypt package", why=str(exc),
                                 fix="pip install bcrypt (it is in the project's dev extra)") from exc
    if ":" in user:
        raise RegistryStartError(f"registry user name may not contain ':' ({user!r})")
    # Cost 5: the registry checks the hash on every request, and these are throwaway test passwords.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    path.write_text(f"{user}:{hashed}\n")
    path.chmod(0o600)


def _make_tls_files(directory: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1/localhost, made with openssl; returns the CA file."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RegistryStartError("tls=True needs the openssl command", fix="apt-get install openssl")
    env = runner.base_env()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    steps: list[list[str | Path]] = [
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "2",
         "-subj", "/CN=sc-ci test registry CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", ext],
    ]
    for argv in steps:
        result = runner.run(argv, env=env, timeout=60)
        if not result.ok:
            raise RegistryStartError("could not make the test registry's TLS certificate",
                                     why=result.tail(), fix="Check that openssl works on this machine.")
    return ca_crt
