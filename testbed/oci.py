"""Build OCI images in memory (deterministic tar+gzip layers, config, manifest, index) and push them."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urljoin

import requests

from sc_ci.errors import ScError
from sc_ci.services.http import session as http_session

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})

FIXED_MTIME = 1590969600  # 2020-06-01T00:00:00Z: every file, layer and config gets this time
FIXED_CREATED = "2020-06-01T00:00:00Z"

Format = Literal["oci", "docker"]
_MEDIA: dict[str, dict[str, str]] = {
    "oci": {"index": OCI_INDEX, "manifest": OCI_MANIFEST, "config": OCI_CONFIG, "layer": OCI_LAYER_GZIP},
    "docker": {"index": DOCKER_LIST, "manifest": DOCKER_MANIFEST, "config": DOCKER_CONFIG,
               "layer": DOCKER_LAYER_GZIP},
}
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryHTTPError(ScError):
    """The registry refused or failed a request made by the test/demo image pusher."""

    def __init__(self, what: str, *, status: int = 0, why: str = "", fix: str = "") -> None:
        super().__init__(what, why=why, fix=fix)
        self.status = status


# ---------------------------------------------------------------------------------------------
# File maps and layers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    """A regular file in a layer."""

    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Symlink:
    """A symbolic link in a layer."""

    target: str


@dataclass(frozen=True)
class Dir:
    """An explicit directory (parents of files are added automatically with mode 0755)."""

    mode: int = 0o755


Entry = File | Symlink | Dir | bytes | str
FileMap = Mapping[str, Entry]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """The one JSON encoding used for configs and manifests, so equal content gives equal digests."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _normalize(files: FileMap) -> dict[str, File | Symlink | Dir]:
    """Relative, clean paths → entries, with every missing parent directory added."""
    out: dict[str, File | Symlink | Dir] = {}
    for raw_path, entry in files.items():
        parts = [p for p in raw_path.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise ValueError(f"invalid path in layer: {raw_path!r}")
        path = "/".join(parts)
        if isinstance(entry, str):
            entry = File(entry.encode())
        elif isinstance(entry, bytes):
            entry = File(entry)
        out[path] = entry
        for i in range(1, len(parts)):
            out.setdefault("/".join(parts[:i]), Dir())
    return out


def tar_bytes(files: FileMap, *, mtime: int = FIXED_MTIME) -> bytes:
    """An uncompressed tar of `files`, sorted, root-owned, with fixed times: same input, same bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, entry in sorted(_normalize(files).items()):
            info = tarfile.TarInfo(path)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if isinstance(entry, Dir):
                info.type = tarfile.DIRTYPE
                info.mode = entry.mode
                tar.addfile(info)
            elif isinstance(entry, Symlink):
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                info.mode = 0o777
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = entry.mode
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and mtime 0 (digests depend only on content and the zlib in use)."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return out.getvalue()


@dataclass(frozen=True)
class Blob:
    """Bytes with a media type; `descriptor()` is how manifests point at it."""

    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Layer(Blob):
    """A gzip-compressed tar layer; `diff_id` is the digest of the uncompressed tar."""

    diff_id: str = ""
    comment: str = ""


def build_layer(files: FileMap, *, comment: str = "", media_type: str = OCI_LAYER_GZIP,
                mtime: int = FIXED_MTIME) -> Layer:
    raw = tar_bytes(files, mtime=mtime)
    return Layer(media_type, gzip_bytes(raw), diff_id=sha256_digest(raw), comment=comment)


# ---------------------------------------------------------------------------------------------
# Images and indexes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Platform:
    """os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform must be os/arch[/variant], got {text!r}")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def as_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


@dataclass(frozen=True)
class Image:
    """One platform's image: config blob, layers and the manifest that ties them together."""

    manifest: Blob
    config: Blob
    layers: tuple[Layer, ...]
    platform: Platform

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    def blobs(self) -> tuple[Blob, ...]:
        return (*self.layers, self.config)


@dataclass(frozen=True)
class ImageIndex:
    """A multi-platform index (OCI) or manifest list (Docker) over several images."""

    manifest: Blob
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    def image_for(self, platform: str | Platform) -> Image:
        wanted = Platform.parse(platform) if isinstance(platform, str) else platform
        for image in self.images:
            if image.platform == wanted:
                return image
        raise KeyError(f"no image for platform {wanted} in index (have: "
                       f"{', '.join(str(i.platform) for i in self.images)})")


def build_image(
    layers: Sequence[Layer | FileMap],
    *,
    platform: Platform | str = Platform(),
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    cmd: Sequence[str] | None = ("/bin/sh",),
    entrypoint: Sequence[str] | None = None,
    working_dir: str = "/",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    created: str = FIXED_CREATED,
    fmt: Format = "oci",
) -> Image:
    """Assemble an image from layers (prebuilt, or file maps to build). Deterministic by construction."""
    media = _MEDIA[fmt]
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    built: list[Layer] = []
    for index, item in enumerate(layers):
        layer = item if isinstance(item, Layer) else build_layer(item, comment=f"layer {index + 1}")
        if layer.media_type != media["layer"]:
            layer = replace(layer, media_type=media["layer"])
        built.append(layer)
    container_config: dict[str, Any] = {"Env": list(env), "WorkingDir": working_dir}
    if cmd is not None:
        container_config["Cmd"] = list(cmd)
    if entrypoint is not None:
        container_config["Entrypoint"] = list(entrypoint)
    if labels:
        container_config["Labels"] = dict(labels)
    config_obj: dict[str, Any] = {
        **plat.as_json(),
        "created": created,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in built]},
        "history": [
            {"created": created, "created_by": layer.comment or f"sc-ci demo layer {i + 1}"}
            for i, layer in enumerate(built)
        ],
    }
    config = Blob(media["config"], canonical_json(config_obj))
    manifest_obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media["manifest"],
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in built],
    }
    if annotations and fmt == "oci":
        manifest_obj["annotations"] = dict(annotations)
    return Image(Blob(media["manifest"], canonical_json(manifest_obj)), config, tuple(built), plat)


def build_index(images: Iterable[Image], *, annotations: Mapping[str, str] | None = None,
                fmt: Format = "oci") -> ImageIndex:
    media = _MEDIA[fmt]
    members = tuple(images)
    if not members:
        raise ValueError("an index needs at least one image")
    index_obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media["index"],
        "manifests": [img.manifest.descriptor(platform=img.platform.as_json()) for img in members],
    }
    if annotations and fmt == "oci":
        index_obj["annotations"] = dict(annotations)
    return ImageIndex(Blob(media["index"], canonical_json(index_obj)), members)


# ---------------------------------------------------------------------------------------------
# Registry client (push side)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest as the registry served it."""

    digest: str
    media_type: str
    body: bytes = field(repr=False)

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class RegistryClient:
    """Push blobs/manifests and read them back over the distribution API; answers Basic and Bearer
    challenges (WWW-Authenticate) with the given credentials."""

    def __init__(
        self,
        host: str,
        *,
        scheme: Literal["http", "https"] = "http",
        auth: tuple[str, str] | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.base_url = f"{scheme}://{host}"
        self._auth = auth
        self._timeout = timeout
        self._session = http_session()
        self._session.trust_env = False  # loopback test registries: no proxies, no ~/.netrc
        self._session.verify = verify
        self._basic: str | None = None  # set once the registry asked for Basic auth
        self._tokens: dict[str, str] = {}  # scope → bearer token

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # -- low level ------------------------------------------------------------------------

    def request(self, method: str, path_or_url: str, *, scope: str = "",
                headers: Mapping[str, str] | None = None, data: bytes | None = None,
                params: Mapping[str, str] | None = None) -> requests.Response:
        """One request, retried once with credentials if the registry answers 401 with a challenge."""
        url = path_or_url if "://" in path_or_url else urljoin(self.base_url, path_or_url)
        hdrs = dict(headers or {})
        sent_auth = self._auth_header(scope)
        if sent_auth:
            hdrs["Authorization"] = sent_auth
        resp = self._send(method, url, hdrs, data, params)
        if resp.status_code == 401:
            answer = self._answer(resp.headers.get("WWW-Authenticate", ""), scope)
            if answer and answer != sent_auth:
                hdrs["Authorization"] = answer
                resp = self._send(method, url, hdrs, data, params)
        return resp

    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
              params: Mapping[str, str] | None) -> requests.Response:
        try:
            return self._session.request(method, url, headers=headers, data=data, params=params,
                                         timeout=self._timeout, allow_redirects=True)
        except requests.RequestException as exc:
            raise RegistryHTTPError(f"{method} {url} failed", why=str(exc),
                                    fix="Is the registry running on that host and port?") from exc

    def _auth_header(self, scope: str) -> str | None:
        if scope and scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        return self._basic

    def _answer(self, challenge: str, scope: str) -> str | None:
        kind = challenge.split(" ", 1)[0].lower()
        if kind == "basic":
            if self._auth is None:
                return None
            raw = f"{self._auth[0]}:{self._auth[1]}".encode()
            self._basic = "Basic " + base64.b64encode(raw).decode()
            return self._basic
        if kind != "bearer":
            return None
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", "")
        if not realm:
            return None
        params["scope"] = params.get("scope") or scope
        if not params["scope"]:
            params.pop("scope")
        try:
            resp = self._session.get(realm, params=params, auth=self._auth, timeout=self._timeout)
        except requests.RequestException as exc:
            raise RegistryHTTPError(f"token request to {realm} failed", why=str(exc)) from exc
        if resp.status_code != 200:
            raise RegistryHTTPError(f"token service {realm} refused (HTTP {resp.status_code})",
                                    status=resp.status_code, why=resp.text[:300],
                                    fix="Check the registry credentials.")
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryHTTPError(f"token service {realm} returned no token", why=resp.text[:300])
        self._tokens[scope or params.get("scope", "")] = token
        return f"Bearer {token}"

    @staticmethod
    def _fail(resp: requests.Response, what: str) -> RegistryHTTPError:
        fix = "Pass auth=(user, password) to RegistryClient." if resp.status_code in (401, 403) else ""
        return RegistryHTTPError(f"{what}: HTTP {resp.status_code}", status=resp.status_code,
                                 why=resp.text[:500], fix=fix)

    # -- API --------------------------------------------------------------------------------

    def ping(self) -> int:
        """GET /v2/ (authenticating if asked); returns the final status code."""
        return self.request("GET", "/v2/").status_code

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=_scope(repo, "pull"))
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise self._fail(resp, f"HEAD blob {repo}@{digest}")

    def push_blob(self, repo: str, blob: Blob | bytes) -> str:
        """Upload (POST, then one monolithic PUT) unless the registry already has it; returns the digest."""
        data = blob.data if isinstance(blob, Blob) else blob
        digest = sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        scope = _scope(repo, "pull,push")
        start = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope,
                             headers={"Content-Length": "0"})
        if start.status_code != 202 or "Location" not in start.headers:
            raise self._fail(start, f"start upload to {repo}")
        location = urljoin(self.base_url, start.headers["Location"])
        location += ("&" if "?" in location else "?") + f"digest={digest}"
        done = self.request("PUT", location, scope=scope, data=data,
                            headers={"Content-Type": "application/octet-stream"})
        if done.status_code != 201:
            raise self._fail(done, f"upload blob {digest} to {repo}")
        got = done.headers.get("Docker-Content-Digest", digest)
        if got != digest:
            raise RegistryHTTPError(f"registry stored {got} for blob {digest}")
        return digest

    def push_manifest(self, repo: str, reference: str, manifest: Blob) -> str:
        """PUT a manifest by tag (or digest); returns its digest (checked against the registry's)."""
        resp = self.request("PUT", f"/v2/{repo}/manifests/{reference}", scope=_scope(repo, "pull,push"),
                            data=manifest.data, headers={"Content-Type": manifest.media_type})
        if resp.status_code != 201:
            raise self._fail(resp, f"push manifest {repo}:{reference}")
        got = resp.headers.get("Docker-Content-Digest", manifest.digest)
        if got != manifest.digest:
            raise RegistryHTTPError(f"registry computed {got} for manifest {manifest.digest}")
        return manifest.digest

    def push_image(self, repo: str, image: Image, *, tag: str | None = None) -> str:
        for blob in image.blobs():
            self.push_blob(repo, blob)
        return self.push_manifest(repo, tag or image.digest, image.manifest)

    def push(self, repo: str, tag: str, artifact: Image | ImageIndex) -> str:
        """Push an image or an index (children by digest first) and point `tag` at it."""
        if isinstance(artifact, Image):
            return self.push_image(repo, artifact, tag=tag)
        for image in artifact.images:
            self.push_image(repo, image)
        return self.push_manifest(repo, tag, artifact.manifest)

    def get_manifest(self, repo: str, reference: str,
                     accept: Sequence[str] = MANIFEST_TYPES) -> FetchedManifest:
        resp = self.request("GET", f"/v2/{repo}/manifests/{reference}", scope=_scope(repo, "pull"),
                            headers={"Accept": ", ".join(accept)})
        if resp.status_code != 200:
            raise self._fail(resp, f"GET manifest {repo}:{reference}")
        body = resp.content
        digest = resp.headers.get("Docker-Content-Digest") or sha256_digest(body)
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return FetchedManifest(digest, media_type, body)

    def get_blob(self, repo: str, digest: str) -> bytes:
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=_scope(repo, "pull"))
        if resp.status_code != 200:
            raise self._fail(resp, f"GET blob {repo}@{digest}")
        if sha256_digest(resp.content) != digest:
            raise RegistryHTTPError(f"blob {repo}@{digest} content does not match its digest")
        return resp.content

    def tags(self, repo: str) -> list[str]:
        resp = self.request("GET", f"/v2/{repo}/tags/list", scope=_scope(repo, "pull"))
        if resp.status_code == 404:
            return []
        if resp.status_code != 200:
            raise self._fail(resp, f"list tags of {repo}")
        return list(resp.json().get("tags") or [])


def _scope(repo: str, actions: str) -> str:
    return f"repository:{repo}:{actions}"
