"""OCI distribution API client: resolve a tag to its digest once, read manifests, blobs and referrers (with
auth), every body bounded and checked against its digest."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from sc_ci import retry
from sc_ci.errors import StepFailed, UsageError
from sc_ci.imageref import DIGEST_ALGOS, ImageRef, check_digest
from sc_ci.sanitize import one_line, quoted
from sc_ci.services.dockerconfig import Credential, normalize_host
from sc_ci.services.http import session

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = frozenset(MANIFEST_TYPES[0::2])
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution spec's manifest limit
MAX_BLOB_BYTES = 64 * 1024 * 1024  # the largest signature or attestation layer read (an SBOM rides in one)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MAX_TOKEN_BYTES = 1024 * 1024
REALM_HOSTS_VAR = "SC_CI_REGISTRY_TOKEN_REALM_HOSTS"
#: token services that live on another host than their registry, trusted with that registry's credential
KNOWN_REALMS: Mapping[str, frozenset[str]] = {
    "docker.io": frozenset({"auth.docker.io"}),
    "registry.gitlab.com": frozenset({"gitlab.com"}),
}
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_LOG = logging.getLogger("sc_ci.registry")


def _host_name(host: str) -> str:
    """The host part of host[:port] / [v6]:port, lower case, without brackets."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


def is_loopback(host: str) -> bool:
    name = _host_name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_plain_http(host: str, insecure: frozenset[str] = frozenset()) -> bool:
    """Loopback registries and the ones the user lists as insecure are spoken to over plain HTTP."""
    return host in insecure or is_loopback(host)


def realm_hosts_from_env(env: Mapping[str, str]) -> frozenset[str]:
    """Extra hosts trusted as token realms: SC_CI_REGISTRY_TOKEN_REALM_HOSTS (comma list), and a GitLab
    job's own server (its registry's tokens come from CI_SERVER_HOST)."""
    hosts = {h.strip().lower() for h in (env.get(REALM_HOSTS_VAR) or "").split(",") if h.strip()}
    if env.get("GITLAB_CI") == "true" and env.get("CI_SERVER_HOST"):
        hosts.add(env["CI_SERVER_HOST"].strip().lower())
    return frozenset(hosts)


@dataclass(frozen=True)
class Manifest:
    """A fetched manifest: its digest, media type and raw bytes."""

    digest: str
    media_type: str
    body: bytes

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass(frozen=True)
class IndexEntry:
    """One manifest an index points at: digest, media type, `os/arch[/variant]` (None if unknown), and the
    artifact type a referrer declares ("" for images)."""

    digest: str
    media_type: str
    platform: str | None
    artifact_type: str = ""


class RegistryError(StepFailed):
    """The registry could not be reached or refused the request."""


def index_entries(body: bytes, source: str) -> tuple[IndexEntry, ...]:
    """The entries of an OCI index / Docker manifest list. A malformed index (not JSON, no `manifests`
    list, an entry that is not a mapping or has an invalid digest) is a RegistryError; a `platform` that
    is not a mapping of strings is treated as unknown (None)."""
    try:
        index = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RegistryError(f"{source}: the image index is not JSON", why=one_line(exc),
                            fix="Check the image in the registry (e.g. skopeo inspect --raw).") from exc
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list):
        raise RegistryError(f"{source}: the image index has no `manifests` list",
                            fix="Check the image in the registry (e.g. skopeo inspect --raw).")
    found: list[IndexEntry] = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise RegistryError(f"{source}: entry {number} of the image index is not a mapping")
        digest, media_type = entry.get("digest"), entry.get("mediaType")
        try:
            check_digest(digest if isinstance(digest, str) else "", source)
        except UsageError as exc:
            raise RegistryError(f"{source}: entry {number} of the image index has an invalid digest",
                                why=exc.why, fix="Check the image in the registry.") from exc
        artifact_type = entry.get("artifactType")
        found.append(IndexEntry(str(digest), media_type if isinstance(media_type, str) else "",
                                _platform(entry.get("platform")),
                                one_line(artifact_type, 200) if isinstance(artifact_type, str) else ""))
    return tuple(found)


def _platform(value: object) -> str | None:
    if not isinstance(value, dict):
        return None
    os_name, arch, variant = value.get("os"), value.get("architecture"), value.get("variant")
    if not (isinstance(os_name, str) and isinstance(arch, str) and os_name and arch):
        return None
    name = f"{one_line(os_name, 40)}/{one_line(arch, 40)}"
    return name + f"/{one_line(variant, 40)}" if isinstance(variant, str) and variant else name


def _digest_of(body: bytes, algo: str) -> str:
    return f"{algo}:{hashlib.new(algo, body).hexdigest()}"


def verify_digest(ref: ImageRef, body: bytes, header: str | None) -> str:
    """The manifest's digest, checked against its bytes: the `Docker-Content-Digest` header (sha256 or
    sha512) and the digest asked for must both match. Any other algorithm is refused."""
    shown = str(ref)
    claims = [d for d in (header, ref.digest) if d]
    for claimed in claims:
        algo = claimed.partition(":")[0]
        if algo not in DIGEST_ALGOS:
            raise RegistryError(f"{shown}: the registry sent a digest of unsupported algorithm {quoted(algo, 20)}",
                                why="only sha256 and sha512 digests can be verified here",
                                fix="Use a registry that serves sha256 (or sha512) digests.")
        try:
            check_digest(claimed, shown)
        except UsageError as exc:
            raise RegistryError(f"{shown}: the registry sent a malformed digest", why=exc.why) from exc
        computed = _digest_of(body, algo)
        if computed != claimed:
            raise RegistryError(f"{shown}: manifest digest mismatch",
                                why=f"expected {one_line(claimed, 140)}, content hashes to {computed}",
                                fix="Check the registry for corruption or a misbehaving proxy.")
    return ref.digest or header or _digest_of(body, "sha256")


@dataclass
class RegistryClient:
    """Talks to registries over the distribution API; credentials per host; bearer tokens cached.
    A credential goes only to its own registry or a token realm on the same host (or one trusted in
    KNOWN_REALMS / `token_realm_hosts`), and only over https (plain http on loopback only)."""

    credentials: Mapping[str, Credential] = field(default_factory=dict)
    insecure: frozenset[str] = frozenset()
    token_realm_hosts: frozenset[str] = frozenset()
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    _withheld: dict[str, str] = field(default_factory=dict)
    _session: requests.Session = field(default_factory=session)

    @classmethod
    def from_env(cls, env: Mapping[str, str], credentials: Mapping[str, Credential],
                 insecure: frozenset[str] = frozenset()) -> RegistryClient:
        """A client trusting the realm hosts named by SC_CI_REGISTRY_TOKEN_REALM_HOSTS (and GitLab's)."""
        return cls(credentials=credentials, insecure=insecure, token_realm_hosts=realm_hosts_from_env(env))

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
            resp, body = retry.call(lambda: self._get(ref, url, ", ".join(MANIFEST_TYPES), MAX_MANIFEST_BYTES,
                                                      "the manifest"))
        except retry.TransientError as exc:
            raise RegistryError(f"cannot reach registry {ref.registry}", why=one_line(exc, 300),
                                fix="Check the registry host and port, network access and proxy settings; "
                                    "the request was retried with backoff.") from exc
        if resp.status_code == 404:
            raise RegistryError(f"{ref}: no such image in the registry",
                                why=f"{ref.registry} answered 404 for {ref.repository}:{target}",
                                fix="Check the repository and tag (push the image first), or the registry host.")
        if resp.status_code in (401, 403):
            withheld = self._withheld.get(ref.registry)
            raise RegistryError(f"{ref}: access denied by {ref.registry} (HTTP {resp.status_code})",
                                why=withheld or "no credentials, or credentials without pull access",
                                fix="Log in (docker login / DOCKER_CONFIG) or set SC_CI_REGISTRY_USERNAME "
                                    "and SC_CI_REGISTRY_PASSWORD (with SC_CI_REGISTRY_HOST)"
                                    + (f"; or trust the token service: {REALM_HOSTS_VAR}=<host>"
                                       if withheld else "") + ".")
        if resp.status_code != 200:
            raise RegistryError(f"{ref}: registry error HTTP {resp.status_code}",
                                why=one_line(body.decode("utf-8", "replace"), 300))
        digest = verify_digest(ref, body, resp.headers.get("Docker-Content-Digest") or None)
        media_type = one_line(resp.headers.get("Content-Type", "").split(";")[0].strip(), 200)
        return Manifest(digest, media_type, body)

    def blob(self, ref: ImageRef, digest: str, limit: int = MAX_BLOB_BYTES) -> bytes:
        """The blob `digest` of `ref`'s repository, at most `limit` bytes, checked against its digest."""
        check_digest(digest, str(ref))
        url = f"{self.base_url(ref.registry)}/v2/{ref.repository}/blobs/{digest}"
        try:
            resp, body = retry.call(lambda: self._get(ref, url, "*/*", limit, f"blob {digest[:19]}…"))
        except retry.TransientError as exc:
            raise RegistryError(f"cannot reach registry {ref.registry}", why=one_line(exc, 300),
                                fix="Check the registry host and port, network access and proxy settings; "
                                    "the request was retried with backoff.") from exc
        if resp.status_code != 200:
            raise RegistryError(f"{ref.name}: blob {digest} could not be read (HTTP {resp.status_code})",
                                why=one_line(body.decode("utf-8", "replace"), 300),
                                fix="Check that the signature or attestation was pushed completely.")
        computed = _digest_of(body, digest.partition(":")[0])
        if computed != digest:
            raise RegistryError(f"{ref.name}: blob digest mismatch", why=f"expected {digest}, content hashes to "
                                f"{computed}", fix="Check the registry for corruption or a misbehaving proxy.")
        return body

    def referrers(self, ref: ImageRef) -> tuple[IndexEntry, ...]:
        """The manifests whose `subject` is `ref`'s digest: the OCI 1.1 referrers API, else the `sha256-<hex>`
        index tag that clients (cosign through go-containerregistry) keep where the registry has no such API."""
        if not ref.digest:
            raise ValueError(f"{ref} has no digest")
        url = f"{self.base_url(ref.registry)}/v2/{ref.repository}/referrers/{ref.digest}"
        try:
            resp, body = retry.call(lambda: self._get(ref, url, OCI_INDEX, MAX_MANIFEST_BYTES, "the referrers"))
        except retry.TransientError as exc:
            raise RegistryError(f"cannot reach registry {ref.registry}", why=one_line(exc, 300)) from exc
        if resp.status_code == 200 and resp.headers.get("Content-Type", "").split(";")[0].strip() == OCI_INDEX:
            return index_entries(body, f"{ref.name}: the referrers")
        algorithm, _, hexdigest = ref.digest.partition(":")
        try:
            fallback = self.manifest(ImageRef(ref.registry, ref.repository, tag=f"{algorithm}-{hexdigest}"))
        except RegistryError as exc:
            if "no such image" in exc.what:
                return ()
            raise
        return index_entries(fallback.body, f"{ref.name}: the referrers index tag")

    def _get(self, ref: ImageRef, url: str, accept: str, limit: int,
             what: str) -> tuple[requests.Response, bytes]:
        headers = {"Accept": accept}
        token = self._tokens.get((ref.registry, ref.repository))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = self._session.get(url, headers=headers, stream=True)
            if resp.status_code == 401 and not token:
                auth = self._authorize(ref, url, resp.headers.get("WWW-Authenticate", ""))
                if auth:
                    resp.close()
                    resp = self._session.get(url, headers={**headers, "Authorization": auth}, stream=True)
            if retry.is_transient_status(resp.status_code):
                wait = retry.retry_after(resp.headers)  # honoured: 429/503 say when to come back
                resp.close()
                raise retry.TransientError(f"{ref.registry} answered HTTP {resp.status_code}", retry_after=wait)
            return resp, _read_bounded(resp, limit, f"{ref}: {what}")
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise retry.TransientError(f"cannot connect to {ref.registry}: {one_line(exc, 300)}") from exc
        except requests.RequestException as exc:
            raise RegistryError(f"{ref}: the request to {ref.registry} failed", why=one_line(exc, 300)) from exc

    def _may_send(self, ref: ImageRef, url: str, *, to_registry: bool) -> str | None:
        """Why the credential must not go to `url` (None: it may)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
            return f"the token service {one_line(url, 120)} is not https" if not to_registry else \
                f"{ref.registry} is spoken to over plain http"
        if to_registry:
            return None
        registry_host = _host_name(urlsplit(self.base_url(ref.registry)).netloc)
        trusted = {registry_host, _host_name(ref.registry), *KNOWN_REALMS.get(normalize_host(ref.registry), ()),
                   *self.token_realm_hosts}
        if host not in trusted:
            return (f"the token service is on another host ({one_line(host, 80)}) than the registry; "
                    "the credential was not sent there")
        return None

    def _authorize(self, ref: ImageRef, url: str, challenge: str) -> str | None:
        scheme = challenge.split(" ", 1)[0].lower()
        cred = self.credentials.get(ref.registry)
        if scheme == "basic":
            if cred is None:
                return None
            refused = self._may_send(ref, url, to_registry=True)
            if refused:
                self._withheld[ref.registry] = refused
                _LOG.warning("%s: %s", ref.registry, refused)
                return None
            return _basic(cred)
        if scheme != "bearer":
            return None
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm or urlsplit(realm).scheme not in ("http", "https"):
            return None
        params.setdefault("scope", f"repository:{ref.repository}:pull")
        if cred is not None:
            refused = self._may_send(ref, realm, to_registry=False)
            if refused:
                self._withheld[ref.registry] = refused
                _LOG.warning("%s: %s (trust it with %s)", ref.registry, refused, REALM_HOSTS_VAR)
                cred = None
        resp = self._session.get(realm, params=params, stream=True,
                                 auth=(cred.username, cred.password.reveal()) if cred else None)
        if resp.status_code != 200:
            resp.close()
            return None
        try:
            data = json.loads(_read_bounded(resp, MAX_TOKEN_BYTES, f"{ref}: the token response"))
        except (ValueError, RecursionError):
            return None
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or any(c.isspace() or ord(c) < 32 for c in token):
            return None
        self._tokens[(ref.registry, ref.repository)] = token
        return f"Bearer {token}"


def _read_bounded(resp: requests.Response, limit: int, what: str) -> bytes:
    """The response body, refusing (RegistryError) one larger than `limit` without reading it all."""
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        resp.close()
        raise RegistryError(f"{what} is larger than {limit // 1024} KiB", why=f"Content-Length {length}")
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(65536):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise RegistryError(f"{what} is larger than {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _basic(cred: Credential) -> str:
    raw = f"{cred.username}:{cred.password.reveal()}".encode()
    return "Basic " + base64.b64encode(raw).decode()
