"""The testbed itself: registry lifecycle, pushed images read back (API, skopeo, syft, trivy), auth, TLS."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from sc_ci import runner
from testbed import images
from testbed.images import KNOWN_PACKAGES, PushedImage, push_image
from testbed.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    RegistryHTTPError,
    sha256_digest,
)
from testbed.registry import LocalRegistry, RegistryStartError

FreshImage = Callable[..., PushedImage]
RegistryFactory = Callable[..., LocalRegistry]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _skopeo(binary: Path, *args: str | Path, home: Path) -> runner.Completed:
    env = runner.base_env()
    env["HOME"] = str(home)  # no user auth files or registries.conf from the developer's home
    return runner.run([binary, *args], env=env, timeout=60)


def _rootfs(client: RegistryClient, repo: str, manifest: dict[str, Any]) -> dict[str, bytes | str]:
    """Apply the layers in order: path → file bytes, or "-> target" for a symlink."""
    files: dict[str, bytes | str] = {}
    for layer in manifest["layers"]:
        blob = client.get_blob(repo, layer["digest"])
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    files[member.name] = extracted.read()
                elif member.issym():
                    files[member.name] = f"-> {member.linkname}"
    return files


def _apk_stanzas(db: str) -> dict[str, list[tuple[str, str]]]:
    """package name → its (field, value) lines, in file order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for stanza in db.strip().split("\n\n"):
        lines = [(key, value) for key, _, value in (line.partition(":") for line in stanza.splitlines())]
        out[dict(lines)["P"]] = lines
    return out


def _values(lines: list[tuple[str, str]], key: str) -> list[str]:
    return [value for k, value in lines if k == key]


def _fetch(client: RegistryClient, pushed: PushedImage) -> tuple[dict[str, Any], dict[str, Any]]:
    manifest = client.get_manifest(pushed.repository, pushed.digest).json()
    config = json.loads(client.get_blob(pushed.repository, manifest["config"]["digest"]))
    return manifest, config


# ---------------------------------------------------------------------------------------------
# registry lifecycle
# ---------------------------------------------------------------------------------------------


def test_registry_starts_and_stops_cleanly(registry_factory: RegistryFactory) -> None:
    reg = registry_factory()
    try:
        pid, port, root = reg.pid, reg.port, reg.root
        assert reg.host == f"127.0.0.1:{port}"
        assert reg.url == f"http://127.0.0.1:{port}"
        assert requests.get(f"{reg.url}/v2/", timeout=5).status_code == 200
        assert os.getpgid(pid) == pid, "the registry runs in its own process group"
        assert root.is_dir()
        config = json.loads((root / "config.yml").read_text())
        assert config["storage"]["delete"]["enabled"] is True
        assert "debug" not in config["http"]
    finally:
        reg.stop()
    assert not reg.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not root.exists(), "temp dir removed"
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
    with socket.socket() as sock:  # nobody listens: we can
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
    reg.stop()  # idempotent


_CHILD = """
import sys, time
from testbed.registry import LocalRegistry
reg = LocalRegistry().start()
print(reg.pid, reg.root, flush=True)
if sys.argv[1] == "hang":
    time.sleep(60)
"""


def _gone(pid: int, timeout: float = 5.0) -> bool:
    """True once pid no longer runs (exited, or a zombie waiting for init to reap it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_registry_never_outlives_its_process(registry_factory: RegistryFactory, how: str) -> None:
    registry_factory().stop()  # skips/fails early when docker-registry is missing
    root_dir = Path(__file__).resolve().parents[2]
    env = {**runner.base_env(), "PYTHONPATH": str(root_dir)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, "hang" if how == "sigkill" else "exit"],
                             stdout=subprocess.PIPE, text=True, env=env, cwd=root_dir)
    try:
        assert child.stdout is not None
        pid_text, root = child.stdout.readline().split()
        pid = int(pid_text)
        if how == "sigkill":  # no atexit, no finally: the kernel's parent-death signal must do it
            os.kill(pid, 0)
            child.kill()
        child.wait(timeout=30)
        assert _gone(pid), f"registry {pid} survived its parent ({how})"
        if how == "sigkill":  # its directory is left behind, and removed by the next start
            assert Path(root).is_dir()
            registry_factory().stop()
        assert not Path(root).exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_registry_start_failure_explains_itself(tmp_path: Path) -> None:
    fake = tmp_path / "fake-registry"
    fake.write_text("#!/bin/sh\necho 'configuration error: something is wrong' >&2\nexit 3\n")
    fake.chmod(0o755)
    reg = LocalRegistry(binary=fake, startup_timeout=5)
    with pytest.raises(RegistryStartError) as info:
        reg.start()
    assert "configuration error: something is wrong" in info.value.diagnostics()
    assert not reg.running


# ---------------------------------------------------------------------------------------------
# pushed images
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alpine-app", "debian-app", "service-3"])
def test_pushed_image_reads_back(registry: LocalRegistry, demo_images: dict[str, PushedImage],
                                 name: str) -> None:
    pushed = demo_images[name]
    assert pushed.ref == f"{registry.host}/demo/{name}:1.0.0"
    assert pushed.by_digest == f"{registry.host}/demo/{name}@{pushed.digest}"
    with registry.client() as client:
        by_tag = client.get_manifest(pushed.repository, pushed.tag)
        by_digest = client.get_manifest(pushed.repository, pushed.digest)
        assert by_tag.digest == by_digest.digest == pushed.digest == sha256_digest(by_tag.body)
        assert by_tag.body == by_digest.body == images.build(name).manifest.data
        assert by_tag.media_type == OCI_MANIFEST
        manifest, config = _fetch(client, pushed)
        assert (config["os"], config["architecture"]) == ("linux", "amd64")
        assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"]) == len(config["history"])
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
            blob = client.get_blob(pushed.repository, layer["digest"])
            assert sha256_digest(blob) == layer["digest"]
            assert len(blob) == layer["size"]
            assert sha256_digest(gzip.decompress(blob)) == diff_id


def test_alpine_app_files_match_known_packages(registry: LocalRegistry,
                                               demo_images: dict[str, PushedImage]) -> None:
    pushed = demo_images["alpine-app"]
    known = KNOWN_PACKAGES["alpine-app"]
    with registry.client() as client:
        manifest, _config = _fetch(client, pushed)
        files = _rootfs(client, pushed.repository, manifest)
    assert b"ID=alpine\n" in files["etc/os-release"]
    assert b"VERSION_ID=3.12.0\n" in files["etc/os-release"]
    assert files["etc/alpine-release"] == b"3.12.0\n"
    db = _apk_stanzas(files["lib/apk/db/installed"].decode())  # type: ignore[union-attr]
    assert set(db) == {p.name for p in known.os_packages}
    for package in known.os_packages:
        lines = db[package.name]
        assert _values(lines, "V") == [package.version]
        assert _values(lines, "A") == ["x86_64"]
        assert _values(lines, "o") == [package.source_name]
        assert _values(lines, "L") == [package.license]
        directory = path = ""
        checked = 0
        for key, value in lines:  # every F:/R: file exists in the image and its Z: checksum is right
            if key == "F":
                directory = value
            elif key == "R":
                path = f"{directory}/{value}"
                assert path in files, path
            elif key == "Z":
                content = files[path]
                raw = content[3:].encode() if isinstance(content, str) else content  # "-> target"
                assert value == "Q1" + base64.b64encode(hashlib.sha1(raw).digest()).decode()  # noqa: S324
                checked += 1
        assert checked == len(_values(lines, "R")) > 0
    assert _values(db["libssl1.1"], "o") == ["openssl"]
    for package in known.language_packages:
        evidence = files[package.location.lstrip("/")]
        assert isinstance(evidence, bytes)
        if package.type == "python":
            assert f"Name: {package.name}\nVersion: {package.version}\n".encode() in evidence
            record = files[package.location.lstrip("/").replace("METADATA", "RECORD")]
            assert isinstance(record, bytes)
            for row in record.decode().splitlines():
                path, digest, size = row.split(",")
                if digest:
                    data = files[f"{images.SITE_PACKAGES}/{path}"]
                    assert isinstance(data, bytes)
                    assert len(data) == int(size)
                    expect = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                    assert digest == f"sha256={expect}"
        else:
            meta = json.loads(evidence)
            assert (meta["name"], meta["version"]) == (package.name, package.version)
    lock = json.loads(files["app/package-lock.json"])
    assert lock["lockfileVersion"] == 3
    assert lock["packages"]["node_modules/lodash"]["version"] == "4.17.15"
    assert lock["packages"]["node_modules/minimist"]["version"] == "1.2.0"


def test_debian_app_has_dpkg_status(registry: LocalRegistry, demo_images: dict[str, PushedImage]) -> None:
    pushed = demo_images["debian-app"]
    with registry.client() as client:
        manifest, _config = _fetch(client, pushed)
        files = _rootfs(client, pushed.repository, manifest)
    assert b"ID=debian\n" in files["etc/os-release"]
    assert b'VERSION_ID="12"' in files["etc/os-release"]
    status = files["var/lib/dpkg/status"]
    assert isinstance(status, bytes)
    stanzas = {stanza.split("\n", 1)[0].removeprefix("Package: "): stanza
               for stanza in status.decode().strip().split("\n\n")}
    known = KNOWN_PACKAGES["debian-app"]
    assert set(stanzas) == {p.name for p in known.os_packages}
    for package in known.os_packages:
        assert f"\nVersion: {package.version}\n" in stanzas[package.name]
        assert "Status: install ok installed" in stanzas[package.name]
        if package.origin:
            assert f"\nSource: {package.origin}\n" in stanzas[package.name]
    assert known.get("libssl3").source_name == "openssl"


def test_multiarch_index_lists_both_platforms(registry: LocalRegistry,
                                              demo_images: dict[str, PushedImage]) -> None:
    pushed = demo_images["multiarch"]
    assert pushed.is_index
    assert set(pushed.platforms) == {"linux/amd64", "linux/arm64/v8"}
    with registry.client() as client:
        index = client.get_manifest(pushed.repository, pushed.tag)
        assert index.media_type == OCI_INDEX
        assert index.digest == pushed.digest
        assert index.is_index
        entries = index.json()["manifests"]
        platforms = {(m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant"))
                     for m in entries}
        assert platforms == {("linux", "amd64", None), ("linux", "arm64", "v8")}
        arches: dict[str, str] = {}
        for entry in entries:
            child = client.get_manifest(pushed.repository, entry["digest"])
            assert child.media_type == OCI_MANIFEST
            config = json.loads(client.get_blob(pushed.repository, child.json()["config"]["digest"]))
            assert config["architecture"] == entry["platform"]["architecture"]
            files = _rootfs(client, pushed.repository, child.json())
            arches[config["architecture"]] = files["etc/apk/arch"].decode().strip()  # type: ignore[union-attr]
            assert pushed.platforms[files["etc/sc-ci-platform"].decode().strip()] == entry["digest"]  # type: ignore[union-attr]
    assert arches == {"amd64": "x86_64", "arm64": "aarch64"}
    assert pushed.platform_digest("linux/arm64") == pushed.platforms["linux/arm64/v8"]
    amd = images.known_packages("multiarch", "linux/amd64")
    arm = images.known_packages("multiarch", "linux/arm64/v8")
    assert arm.name_versions() - amd.name_versions() == {("ca-certificates-bundle", "20191127-r4")}


def test_nine_distinct_service_images(demo_images: dict[str, PushedImage]) -> None:
    services = [demo_images[f"service-{i}"] for i in range(1, 10)]
    assert len({s.digest for s in services}) == 9
    assert all(KNOWN_PACKAGES[s.name].name_versions() == {("musl", "1.1.24-r9"), ("busybox", "1.31.1-r19")}
               for s in services)


def test_skopeo_reads_the_same_digests(demo_images: dict[str, PushedImage], skopeo: Path,
                                       tmp_path: Path) -> None:
    alpine = demo_images["alpine-app"]
    result = _skopeo(skopeo, "inspect", "--tls-verify=false", f"docker://{alpine.ref}", home=tmp_path)
    assert result.ok, result.stderr
    info = json.loads(result.stdout)
    assert info["Digest"] == alpine.digest
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Labels"]["org.opencontainers.image.title"] == "alpine-app"
    assert len(info["Layers"]) == 3

    multi = demo_images["multiarch"]
    raw = _skopeo(skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{multi.ref}", home=tmp_path)
    assert raw.ok, raw.stderr
    assert sha256_digest(raw.stdout.encode()) == multi.digest
    arm = _skopeo(skopeo, "inspect", "--tls-verify=false", "--override-arch", "arm64",
                  "--override-variant", "v8", f"docker://{multi.platform_by_digest('linux/arm64/v8')}",
                  home=tmp_path)
    assert arm.ok, arm.stderr
    assert json.loads(arm.stdout)["Architecture"] == "arm64"


@pytest.mark.parametrize("scanner", ["syft", "trivy"])
def test_scanners_find_exactly_the_known_packages(
    scanner: str, tool: Callable[[str], Path], demo_images: dict[str, PushedImage], tmp_path: Path,
) -> None:
    """The images' package databases are real formats: the real cataloguers read the known answers."""
    binary = tool(scanner)
    env = {**runner.base_env(), "HOME": str(tmp_path), "SYFT_CHECK_FOR_APP_UPDATE": "false",
           "SYFT_REGISTRY_INSECURE_USE_HTTP": "true"}
    for name in ("alpine-app", "debian-app"):
        pushed, known = demo_images[name], KNOWN_PACKAGES[name]
        if scanner == "syft":
            result = runner.run([binary, "scan", "-q", f"registry:{pushed.by_digest}", "-o", "json"],
                                env=env, timeout=120)
            assert result.ok, result.stderr
            sbom = json.loads(result.stdout)
            found = {(a["name"], a["version"]) for a in sbom["artifacts"]}
            distro = (sbom["distro"]["id"], sbom["distro"]["versionID"])
        else:
            result = runner.run([binary, "image", "--insecure", "--format", "cyclonedx", "--quiet",
                                 "--cache-dir", tmp_path / "trivy-cache", "--skip-db-update",
                                 "--skip-java-db-update", "--offline-scan", "--skip-version-check",
                                 "--disable-telemetry", pushed.by_digest], env=env, timeout=120)
            assert result.ok, result.stderr
            components = json.loads(result.stdout).get("components", [])
            found = {(c["name"], c["version"]) for c in components if c["type"] == "library"}
            distro = next((c["name"], c["version"]) for c in components if c["type"] == "operating-system")
        assert found == known.name_versions(), name
        assert distro == (known.distro, known.distro_version), name


def test_push_is_deterministic_and_tags_repoint(registry: LocalRegistry,
                                               demo_images: dict[str, PushedImage]) -> None:
    assert images.build("alpine-app", extra_files={"x": "1"}).manifest.data == \
        images.build("alpine-app", extra_files={"x": "1"}).manifest.data
    again = push_image(registry.host, "alpine-app", repository="again/alpine-app")
    assert again.digest == demo_images["alpine-app"].digest
    again_index = push_image(registry.host, "multiarch", repository="again/multiarch")
    assert again_index.digest == demo_images["multiarch"].digest
    docker = images.build("service-1", fmt="docker")
    assert docker.digest != demo_images["service-1"].digest
    assert docker.digest == images.build("service-1", fmt="docker").digest

    first = push_image(registry.host, "service-1", repository="again/moving", tag="stable")
    second = push_image(registry.host, "service-2", repository="again/moving", tag="stable")
    with registry.client() as client:
        assert client.get_manifest("again/moving", "stable").digest == second.digest != first.digest
        assert client.get_manifest("again/moving", first.digest).digest == first.digest  # still by digest
        assert client.tags("again/moving") == ["stable"]


def test_fresh_images_never_collide(fresh_image: FreshImage, demo_images: dict[str, PushedImage]) -> None:
    a, b = fresh_image(), fresh_image()
    c = fresh_image("service-4", tag="v9")
    assert len({a.digest, b.digest, demo_images["alpine-app"].digest}) == 3
    assert a.repository != b.repository
    assert a.repository.startswith("fresh/")
    assert c.ref.endswith(":v9")
    assert a.known() == KNOWN_PACKAGES["alpine-app"]


# ---------------------------------------------------------------------------------------------
# auth and TLS
# ---------------------------------------------------------------------------------------------


def test_auth_registry_rejects_anonymous_accepts_credentials(auth_registry: LocalRegistry, skopeo: Path,
                                                             tmp_path: Path) -> None:
    assert auth_registry.auth is not None
    anonymous = requests.get(f"{auth_registry.url}/v2/", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    with auth_registry.client(anonymous=True) as client, pytest.raises(RegistryHTTPError) as info:
        push_image(auth_registry.host, "service-5", client=client)
    assert info.value.status == 401
    wrong = RegistryClient(auth_registry.host, auth=(auth_registry.auth[0], "wrong-password"))
    with wrong, pytest.raises(RegistryHTTPError):
        wrong.get_manifest("demo/service-5", "1.0.0")

    pushed = push_image(auth_registry.host, "service-5", auth=auth_registry.auth)
    with auth_registry.client() as client:
        assert client.ping() == 200
        assert client.get_manifest(pushed.repository, pushed.tag).digest == pushed.digest

    denied = _skopeo(skopeo, "inspect", "--tls-verify=false", f"docker://{pushed.ref}", home=tmp_path)
    assert not denied.ok
    config = auth_registry.write_docker_config(tmp_path / "docker")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    allowed = _skopeo(skopeo, "inspect", "--tls-verify=false", "--authfile", config, f"docker://{pushed.ref}",
                      home=tmp_path)
    assert allowed.ok, allowed.stderr
    assert json.loads(allowed.stdout)["Digest"] == pushed.digest


def test_tls_registry_with_generated_ca(registry_factory: RegistryFactory, skopeo: Path,
                                       tmp_path: Path) -> None:
    reg = registry_factory(tls=True, auth=("tls-user", "tls-password"))
    try:
        assert reg.ca_file is not None
        assert reg.url.startswith("https://127.0.0.1:")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{reg.url}/v2/", timeout=5)
        assert requests.get(f"{reg.url}/v2/", timeout=5, verify=str(reg.ca_file)).status_code == 401
        pushed = push_image(reg.host, "service-6", auth=reg.auth, scheme="https", verify=str(reg.ca_file))
        certs = tmp_path / "certs"
        certs.mkdir()
        shutil.copy(reg.ca_file, certs / "ca.crt")
        authfile = reg.write_docker_config(tmp_path / "docker")
        verified = _skopeo(skopeo, "inspect", "--cert-dir", certs, "--authfile", authfile, f"docker://{pushed.ref}",
                           home=tmp_path)
        assert verified.ok, verified.stderr
        assert json.loads(verified.stdout)["Digest"] == pushed.digest
    finally:
        reg.stop()


class _FakeBearerRegistry(BaseHTTPRequestHandler):
    """Just enough of a token-auth registry: /token (Basic u:p → token) and /v2/ (Bearer token)."""

    tokens_issued = 0

    def log_message(self, *args: Any) -> None:
        pass

    def _challenge(self) -> None:
        port = self.headers.get("Host", "").rpartition(":")[2]
        self.send_response(401)
        self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",'
                                             'service="fake",scope="repository:x/y:pull"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/token"):
            expected = "Basic " + base64.b64encode(b"u:p").decode()
            wanted_scope = "scope=repository%3Ax%2Fy%3Apull"
            if self.headers.get("Authorization") != expected or wanted_scope not in self.path:
                self._reply(401)
                return
            type(self).tokens_issued += 1
            self._reply(200, json.dumps({"token": "tok-123"}).encode())
        elif self.headers.get("Authorization") != "Bearer tok-123":
            self._challenge()
        else:
            self._reply(200, b"{}" if self.path == "/v2/" else b"")

    def do_HEAD(self) -> None:
        if self.headers.get("Authorization") != "Bearer tok-123":
            self._challenge()
        else:
            self._reply(404)


def test_bearer_token_flow() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeBearerRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        with RegistryClient(host, auth=("u", "p")) as client:
            assert client.blob_exists("x/y", "sha256:" + "0" * 64) is False
            assert client.blob_exists("x/y", "sha256:" + "1" * 64) is False
        assert _FakeBearerRegistry.tokens_issued == 1, "token cached per scope"
        with RegistryClient(host, auth=("u", "bad")) as client, pytest.raises(RegistryHTTPError) as info:
            client.blob_exists("x/y", "sha256:" + "0" * 64)
        assert info.value.status == 401
    finally:
        server.shutdown()
        server.server_close()
