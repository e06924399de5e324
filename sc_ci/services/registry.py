"""OCI distribution API client: resolve a tag to its digest once, read manifests (with auth)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests

from sc_ci import retry
from sc_ci.errors import StepFailed
from sc_ci.imageref import ImageRef
from sc_ci.services.dockerconfig import Credential
from sc_ci.services.http import session

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = frozenset(MANIFEST_TYPES[0::2])
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def is_plain_http(host: str, insecure: frozenset[str] = frozenset()) -> bool:
    """Loopback registries and the ones the user lists as insecure are spoken to over plain HTTP."""
    if host in insecure:
        return True
    name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") or "]:" in host else host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Manifest:
    """A fetched manifest: its digest, media type and raw bytes."""

    digest: str
    media_type: str
    body: bytes

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class RegistryError(StepFailed):
    """The registry could not be reached or refused the request."""


@dataclass
class RegistryClient:
    """Talks to registries over the distribution API; credentials per host; bearer tokens cached."""

    credentials: Mapping[str, Credential] = field(default_factory=dict)
    insecure: frozenset[str] = frozenset()
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    _session: requests.Session = field(default_factory=session)

    def base_url(self, host: str) -> str:
        api_host = "registry-1.docker.io" if host == "docker.io" else host
        return f"{'http' if is_plain_http(host, self.insecure) else 'https'}://{api_host}"

    def resolve(self, ref: ImageRef) -> ImageRef:
        """Return `ref` pinned to a digest. A given digest is checked to exist; a tag is resolved once."""
        manifest = self.manifest(ref)
        if ref.digest and manifest.digest != ref.digest:
            raise RegistryError(f"{ref}: registry returned digest {manifest.digest}",
                                why="the manifest served does not match the digest requested",
                                fix="Check the registry for corruption or a misbehaving proxy.")
        return ref.with_digest(manifest.digest)

    def manifest(self, ref: ImageRef) -> Manifest:
        target = ref.digest or ref.tag or "latest"
        url = f"{self.base_url(ref.registry)}/v2/{ref.repository}/manifests/{target}"
        try:
            resp = retry.call(lambda: self._get(ref, url))
        except retry.TransientError as exc:
            raise RegistryError(f"cannot reach registry {ref.registry}", why=str(exc),
                                fix="Check the registry host and port, network access and proxy settings; "
                                    "the request was retried with backoff.") from exc
        if resp.status_code == 404:
            raise RegistryError(f"{ref}: no such image in the registry",
                                why=f"{ref.registry} answered 404 for {ref.repository}:{target}",
                                fix="Check the repository and tag (push the image first), or the registry host.")
        if resp.status_code in (401, 403):
            raise RegistryError(f"{ref}: access denied by {ref.registry} (HTTP {resp.status_code})",
                                why="no credentials, or credentials without pull access",
                                fix="Log in (docker login / DOCKER_CONFIG) or set SC_CI_REGISTRY_USERNAME "
                                    "and SC_CI_REGISTRY_PASSWORD.")
        if resp.status_code != 200:
            raise RegistryError(f"{ref}: registry error HTTP {resp.status_code}", why=resp.text[:300])
        body = resp.content
        digest = resp.headers.get("Docker-Content-Digest") or f"sha256:{hashlib.sha256(body).hexdigest()}"
        if ref.digest is None or digest == ref.digest:
            computed = f"sha256:{hashlib.sha256(body).hexdigest()}"
            if digest.startswith("sha256:") and computed != digest:
                raise RegistryError(f"{ref}: manifest digest mismatch",
                                    why=f"header says {digest}, content hashes to {computed}")
        media_type = resp.headers.get("Content-Type", "").split(";")[0]
        return Manifest(digest, media_type, body)

    def _get(self, ref: ImageRef, url: str) -> requests.Response:
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        token = self._tokens.get((ref.registry, ref.repository))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = self._session.get(url, headers=headers)
            if resp.status_code == 401 and not token:
                auth = self._authorize(ref, resp.headers.get("WWW-Authenticate", ""))
                if auth:
                    resp = self._session.get(url, headers={**headers, "Authorization": auth})
        except requests.ConnectionError as exc:
            raise retry.TransientError(f"cannot connect to {ref.registry}: {exc}") from exc
        if retry.is_transient_status(resp.status_code):
            raise retry.TransientError(f"{ref.registry} answered HTTP {resp.status_code}")
        return resp

    def _authorize(self, ref: ImageRef, challenge: str) -> str | None:
        scheme = challenge.split(" ", 1)[0].lower()
        cred = self.credentials.get(ref.registry)
        if scheme == "basic":
            return None if cred is None else _basic(cred)
        if scheme != "bearer":
            return None
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm:
            return None
        params.setdefault("scope", f"repository:{ref.repository}:pull")
        resp = self._session.get(realm, params=params,
                                 auth=(cred.username, cred.password.reveal()) if cred else None)
        if resp.status_code != 200:
            return None
        data = resp.json()
        token = data.get("token") or data.get("access_token")
        if not token:
            return None
        self._tokens[(ref.registry, ref.repository)] = token
        return f"Bearer {token}"


def _basic(cred: Credential) -> str:
    raw = f"{cred.username}:{cred.password.reveal()}".encode()
    return "Basic " + base64.b64encode(raw).decode()

