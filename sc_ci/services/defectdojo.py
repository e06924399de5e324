"""Upload scan reports to DefectDojo: one test per image (titled repo@digest), imported once, reimported after."""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from sc_ci import imageref
from sc_ci import secrets as secret_masker
from sc_ci.errors import ConfigError, ScError
from sc_ci.log import get_logger
from sc_ci.secrets import Secret
from sc_ci.services.http import session as new_session

log = get_logger("defectdojo")

CONFIG_PATH = "security.scan.upload.defectdojo"
GRYPE = "Anchore Grype"  # DefectDojo's scan_type for grype's JSON report (dojo/tools/anchore_grype)
TRIVY = "Trivy Scan"  # DefectDojo's scan_type for trivy's JSON report (dojo/tools/trivy)
SCAN_TYPES: Mapping[str, str] = {"grype": GRYPE, "trivy": TRIVY}
API = "/api/v2"
TITLE_MAX = 255  # Test.title is a CharField(max_length=255)
VERSION_MAX = 100  # Test.version is a CharField(max_length=100)
MESSAGE_MAX = 600  # the most of a DefectDojo answer that goes into an error
SEVERITIES = ("critical", "high", "medium", "low", "info")
_TAG_BAD = re.compile(r"[ ,'\"]")  # DefectDojo's TAG_PATTERN (dojo/validators.py): no spaces, commas or quotes
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MAX_REDIRECTS = 3
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

KEY_FIX = """\
Use a DefectDojo API v2 key (DefectDojo → your user → API v2 Key, /api/key-v2) of a user allowed to import
scans into the product (Writer, Maintainer or Owner on it; creating products with autoCreateContext also needs
the Add Product permission on the product type), kept in a CI secret:

security:
  scan:
    upload:
      defectdojo:
        apiKey: ${secret:DEFECTDOJO_API_KEY}"""


class UploadAction(StrEnum):
    IMPORT = "import"  # a new test was created (POST /api/v2/import-scan/)
    REIMPORT = "reimport"  # the image's existing test was updated (POST /api/v2/reimport-scan/)


@dataclass(frozen=True)
class FindingCounts:
    """Active findings of the test after the upload, by severity; the delta fields come with a reimport only."""

    critical: int
    high: int
    medium: int
    low: int
    info: int
    total: int
    created: int | None = None
    closed: int | None = None
    reactivated: int | None = None
    untouched: int | None = None


@dataclass(frozen=True)
class UploadResult:
    """One report uploaded: into which test, how, and what DefectDojo counted."""

    action: UploadAction
    test_id: int
    test_title: str
    scan_type: str
    image: str  # repo@sha256:…
    url: str  # the test's page in DefectDojo
    engagement_id: int | None = None
    product_id: int | None = None
    counts: FindingCounts | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures only (connection errors, timeouts, 408/429/5xx): backoff with full jitter, a
    server's Retry-After honoured, and no new attempt that would start after `total_seconds`."""

    attempts: int = 5
    total_seconds: float = 120.0
    initial_backoff: float = 1.0
    max_backoff: float = 30.0


@dataclass(frozen=True)
class _Target:
    scan_type: str
    image: str
    title: str
    version: str | None
    extra: tuple[tuple[str, str], ...]  # build_id, commit_hash, branch_tag when given
    tags: tuple[str, ...]


class _Transient(Exception):
    """A failure worth another attempt; `retry_after` is the server's Retry-After in seconds."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class _TokenAuth(requests.auth.AuthBase):
    """`Authorization: Token KEY` on each prepared request (an explicit auth also keeps ~/.netrc out)."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Token {self._key.reveal()}"
        return r

    def __repr__(self) -> str:
        return "_TokenAuth(***)"


def scan_type_for(tool: str) -> str:
    """DefectDojo's scan_type for a scanner's JSON report: grype → "Anchore Grype", trivy → "Trivy Scan"."""
    try:
        return SCAN_TYPES[tool.lower()]
    except KeyError:
        raise ScError(f"no DefectDojo scan type for the scanner {tool!r}",
                      fix=f"Upload the JSON report of one of: {', '.join(sorted(SCAN_TYPES))}.") from None


def clean(text: str, limit: int = MESSAGE_MAX) -> str:
    """Untrusted text made safe for one log line or an error: secrets masked, control characters and
    newlines folded to spaces, `::` broken up (no workflow command can start), at most `limit` characters."""
    text = secret_masker.mask(text)
    text = _CONTROL.sub(" ", text)
    text = re.sub(r" {2,}", " ", text).strip()
    text = text.replace("::", ": :")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def describe_errors(body: Any) -> str:
    """DefectDojo's error body in one line: `field: message; …` for serializer errors ({"file": ["…"]}),
    the messages of a list (["Product \"x\" does not exist"]), or `detail` / `message`."""
    if isinstance(body, Mapping):
        fields = {k: v for k, v in body.items() if k not in ("message", "detail", "pro")}
        if fields:
            return "; ".join(f"{k}: {_flatten(v)}" for k, v in fields.items())
        return _flatten(body.get("detail") or body.get("message") or "")
    return _flatten(body)


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return " ".join(_flatten(v) for v in value)
    return "" if value is None else str(value)


def _pinned(image: str) -> imageref.ImageRef:
    ref = imageref.parse(image)
    if not ref.digest:
        raise ScError(f"DefectDojo uploads need the image digest, and {image!r} has none",
                      fix="Pass repo@sha256:… (the digest the scan ran on).")
    return ref


def title_for(image: str, custom: str | None = None) -> str:
    """The title of the image's test: `repo@sha256:…` (a tag is dropped), or `custom (repo@sha256:…)` when
    a custom title does not name the digest itself; at most 255 characters, cut at the front."""
    ref = _pinned(image)
    pinned = f"{ref.name}@{ref.digest}"
    title = pinned
    if custom and custom.strip():
        title = " ".join(custom.split())
        if str(ref.digest) not in title:
            title = f"{_bounded(title, 100)} ({pinned})"
    return _bounded(title, TITLE_MAX)  # the digest is at the end: what is cut is the front


def _tag(value: str) -> str:
    return _TAG_BAD.sub("_", value)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[len(text) - limit + 1:]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_url(url: str) -> str:
    path = f"{CONFIG_PATH}.url"
    example = "https://defectdojo.example.com"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an http(s) URL", path=path, fix=f"Set the DefectDojo root, e.g. {example}.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError("DefectDojo must be reached over https", path=path,
                          why="the API key would cross the network in clear text (http is allowed on loopback only)",
                          fix=f"Use https://{parts.netloc}{parts.path}.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("the DefectDojo URL must not carry credentials, a query or a fragment", path=path,
                          fix=f"Set the root only ({example}) and the key in apiKey.")
    prefix = parts.path.rstrip("/")
    if prefix.endswith(API):
        prefix = prefix[: -len(API)]
    return f"{parts.scheme}://{parts.netloc}{prefix}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _counts(statistics: Any) -> FindingCounts | None:
    """FindingCounts from the response's `statistics` ({"after": {sev: {"active": n, …}, "total": …},
    "delta": {"created": {"total": {"total": n}}, …}}), or None when DefectDojo sent none."""
    if not isinstance(statistics, Mapping) or not isinstance(statistics.get("after"), Mapping):
        return None
    after = statistics["after"]

    def active(severity: str) -> int:
        entry = after.get(severity)
        return (_int(entry.get("active")) or 0) if isinstance(entry, Mapping) else 0

    delta = statistics.get("delta")

    def changed(action: str) -> int | None:
        if not isinstance(delta, Mapping) or not isinstance(delta.get(action), Mapping):
            return None
        total = delta[action].get("total")
        return _int(total.get("total")) if isinstance(total, Mapping) else None

    by_severity = {s: active(s) for s in SEVERITIES}
    total = active("total") or sum(by_severity.values())
    return FindingCounts(**by_severity, total=total, created=changed("created"), closed=changed("closed"),
                         reactivated=changed("reactivated"), untouched=changed("untouched"))


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _Transient):
        return True
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.InvalidURL):
        return False  # a certificate problem does not pass on retry
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


class Uploader:
    """Uploads grype/trivy JSON reports to one DefectDojo product + engagement, one test per image.

    Each upload looks the image's test up (product by name → engagement by name → test by title and
    scan type), then reimports into it (`close_old_findings=true`: scoped to that one test) or imports
    a new test (`close_old_findings=false`, so other images' findings in the engagement stay open).
    The lookup is part of every attempt, so a retried import that had reached DefectDojo becomes a
    reimport into the test it created instead of a duplicate test.
    """

    def __init__(self, url: str, api_key: Secret, *, product_name: str, engagement_name: str,
                 auto_create_context: bool = False, product_type_name: str | None = None,
                 tags: Sequence[str] = (), verify_tls: bool = True, ca_bundle: Path | None = None,
                 retry: RetryPolicy | None = None, timeout: tuple[float, float] = (10.0, 300.0),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not isinstance(api_key, Secret) or not api_key:
            raise ConfigError("no DefectDojo API key", path=f"{CONFIG_PATH}.apiKey", fix=KEY_FIX)
        for key, value in (("productName", product_name), ("engagementName", engagement_name)):
            if not value or not value.strip():
                raise ConfigError("must not be empty", path=f"{CONFIG_PATH}.{key}",
                                  fix="Name the DefectDojo product and engagement the scans go to.")
        self.base_url = _base_url(url)
        self._auth = _TokenAuth(api_key)
        self.product_name = product_name.strip()
        self.engagement_name = engagement_name.strip()
        self.auto_create_context = auto_create_context
        self.product_type_name = (product_type_name or "").strip() or None
        self.tags = tuple(_tag(t.strip()) for t in tags if t.strip())
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._verify: bool | str = str(ca_bundle) if (verify_tls and ca_bundle) else verify_tls
        self._sleep = sleep
        self._http = new_session()
        self._engagement: tuple[int, int] | None = None  # (product id, engagement id) once known
        self._context_lock = threading.Lock()  # one import at a time may create the product/engagement

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Uploader({self.base_url!r}, product={self.product_name!r}, engagement={self.engagement_name!r})"

    # -- the public call ------------------------------------------------------------------------

    def upload(self, report: Path | bytes, *, scan_type: str, image: str, version: str | None = None,
               test_title: str | None = None, build_id: str | None = None, commit_hash: str | None = None,
               branch_tag: str | None = None) -> UploadResult:
        """Upload one scanner report of `image` (repo@sha256:…) into the image's own test.

        `scan_type` is "Anchore Grype" (grype JSON) or "Trivy Scan" (trivy JSON); `version` is set on the
        test; `test_title` replaces the default title (the image), and the image is added to it when
        missing, so the title always names repo@digest."""
        content, filename = self._read(report)
        target = self._target(scan_type=scan_type, image=image, version=version, test_title=test_title,
                              extra=(("build_id", build_id), ("commit_hash", commit_hash), ("branch_tag", branch_tag)))
        try:
            return self._retrying(lambda: self._attempt(target, content, filename))
        except _Transient as exc:
            raise ScError(f"DefectDojo upload of {target.image} ({scan_type}) failed", why=clean(str(exc)),
                          fix=self._busy_fix(exc)) from exc
        except requests.exceptions.SSLError as exc:
            raise ScError(f"TLS to DefectDojo at {self.base_url} failed", why=clean(str(exc)),
                          fix="Give the CA that signed DefectDojo's certificate (caBundle, or REQUESTS_CA_BUNDLE); "
                              "verifyTls: false only for a test instance.") from exc
        except requests.Timeout as exc:
            raise ScError(f"DefectDojo at {self.base_url} did not answer in time", why=clean(str(exc)),
                          fix="DefectDojo may be overloaded or the report large: retry later, or raise the "
                              "timeout.") from exc
        except requests.ConnectionError as exc:
            raise ScError(f"DefectDojo at {self.base_url} is unreachable", why=clean(str(exc)),
                          fix="Check the url (scheme, host, port), that the CI runner can reach it (firewall, "
                              "VPN, HTTPS_PROXY/NO_PROXY), and that DefectDojo is up.") from exc

    # -- one attempt ----------------------------------------------------------------------------

    def _attempt(self, target: _Target, content: bytes, filename: str) -> UploadResult:
        context = self._find_engagement()
        test_id = self._find_test(context[1], target) if context else None
        if test_id is not None:
            return self._reimport(target, content, filename, test_id)
        if context is not None:
            return self._import(target, content, filename, context)
        with self._context_lock:  # the engagement may not exist yet: DefectDojo resolves (or creates) it
            context = self._engagement  # another thread may have created it meanwhile
            if context is not None:
                test_id = self._find_test(context[1], target)
                if test_id is not None:
                    return self._reimport(target, content, filename, test_id)
            return self._import(target, content, filename, context)

    def _import(self, target: _Target, content: bytes, filename: str,
                context: tuple[int, int] | None) -> UploadResult:
        fields: list[tuple[str, str]] = [("scan_type", target.scan_type)]
        if context is not None:
            fields.append(("engagement", str(context[1])))
        else:
            fields += [("product_name", self.product_name), ("engagement_name", self.engagement_name),
                       ("auto_create_context", "true" if self.auto_create_context else "false")]
            if self.product_type_name:
                fields.append(("product_type_name", self.product_type_name))
        # Explicit: import's close_old_findings would close findings of *other* tests of this scan type in
        # the whole engagement — other images' findings. It is false by default; say so anyway.
        fields += [("test_title", target.title), ("close_old_findings", "false"),
                   ("close_old_findings_product_scope", "false")]
        fields += self._common(target)
        log.info("DefectDojo: importing %s (%s) as a new test %r", target.image, target.scan_type, target.title)
        body = self._post("import-scan", fields, content, filename, target)
        result = self._result(UploadAction.IMPORT, target, body)
        if result.engagement_id is not None and result.product_id is not None:
            self._engagement = (result.product_id, result.engagement_id)
        return result

    def _reimport(self, target: _Target, content: bytes, filename: str, test_id: int) -> UploadResult:
        # close_old_findings=true (DefectDojo's reimport default, sent explicitly): findings of this test
        # that are no longer in the report are closed. Reimport's scope is this one test only.
        fields = [("scan_type", target.scan_type), ("test", str(test_id)), ("close_old_findings", "true"),
                  *self._common(target)]
        log.info("DefectDojo: reimporting %s (%s) into test %d", target.image, target.scan_type, test_id)
        body = self._post("reimport-scan", fields, content, filename, target)
        return self._result(UploadAction.REIMPORT, target, body, test_id=test_id)

    def _common(self, target: _Target) -> list[tuple[str, str]]:
        fields = [("version", target.version)] if target.version else []
        fields += list(target.extra)
        fields += [("tags", t) for t in target.tags]
        return fields

    def _result(self, action: UploadAction, target: _Target, body: Any, *, test_id: int | None = None) -> UploadResult:
        body = body if isinstance(body, Mapping) else {}
        found = _int(body.get("test_id")) or _int(body.get("test")) or test_id
        if found is None:
            raise ScError(f"DefectDojo accepted the {action} of {target.image} but named no test",
                          why=clean(f"response: {body}"[:MESSAGE_MAX]),
                          fix="Check that the url points at DefectDojo itself, not a proxy answering for it.")
        counts = _counts(body.get("statistics"))
        result = UploadResult(action=action, test_id=found, test_title=target.title, scan_type=target.scan_type,
                              image=target.image, url=f"{self.base_url}/test/{found}",
                              engagement_id=_int(body.get("engagement_id")), product_id=_int(body.get("product_id")),
                              counts=counts)
        log.info("DefectDojo: %s of %s done: test %d%s", action, target.image, found,
                 f", {counts.total} active findings" if counts else "")
        return result

    # -- lookups --------------------------------------------------------------------------------

    def _find_engagement(self) -> tuple[int, int] | None:
        """(product id, engagement id) of productName/engagementName, or None when either does not exist yet.
        DefectDojo itself takes the last (highest id) engagement of that name in the product."""
        if self._engagement is not None:
            return self._engagement
        products = self._list("products", {"name_exact": self.product_name})
        product_id = max((i for p in products if p.get("name") == self.product_name
                          and (i := _int(p.get("id"))) is not None), default=None)
        if product_id is None:
            return None
        engagements = self._list("engagements", {"product": str(product_id), "name": self.engagement_name})
        engagement_id = max((i for e in engagements if e.get("name") == self.engagement_name
                             and (i := _int(e.get("id"))) is not None), default=None)
        if engagement_id is None:
            return None
        self._engagement = (product_id, engagement_id)
        return self._engagement

    def _find_test(self, engagement_id: int, target: _Target) -> int | None:
        """The image's test: title and scan type equal; the last one, as DefectDojo's own reimport picks it."""
        tests = self._list("tests", {"engagement": str(engagement_id), "title": target.title,
                                     "scan_type": target.scan_type, "o": "-created"})
        return max((i for t in tests if t.get("title") == target.title
                    and t.get("scan_type") in (None, target.scan_type)
                    and (i := _int(t.get("id"))) is not None), default=None)

    def _list(self, resource: str, params: Mapping[str, str]) -> list[Mapping[str, Any]]:
        response = self._send("GET", f"{self.base_url}{API}/{resource}/", params={**params, "limit": "100"})
        if response.status_code != 200:
            raise self._failure(response, f"look up {resource}", None)
        body = _json(response)
        if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
            raise ScError(f"DefectDojo's {resource} list is not what API v2 answers",
                          why=clean(f"HTTP {response.status_code}, {response.headers.get('Content-Type', '?')}: "
                                    f"{response.text[:200]}"),
                          fix="Set url to DefectDojo's root (https://host[/prefix]); an SSO or proxy login page "
                              "answering instead of the API also does this.")
        return [r for r in body["results"] if isinstance(r, Mapping)]

    # -- HTTP -----------------------------------------------------------------------------------

    def _post(self, endpoint: str, fields: list[tuple[str, str]], content: bytes, filename: str,
              target: _Target) -> Any:
        response = self._send("POST", f"{self.base_url}{API}/{endpoint}/", data=fields,
                              files={"file": (filename, content, "application/json")})
        if response.status_code in (200, 201):
            return _json(response)
        if response.status_code == 409 and endpoint == "import-scan":
            # a concurrent import created the product/engagement first (unique name); the next attempt finds it
            raise _Transient(f"HTTP 409 from {endpoint}: {describe_errors(_json(response))}", status=409)
        raise self._failure(response, f"{endpoint.replace('-scan', '')} of {target.image} ({target.scan_type})",
                            target)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request, redirects handled here: followed only within the configured origin (so the key never
        goes to another host), and 307/308 only for a POST (whose body a 301/302/303 would drop)."""
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._http.request(method, url, auth=self._auth, timeout=self.timeout, verify=self._verify,
                                          allow_redirects=False, **kwargs)
            if response.status_code in _TRANSIENT_STATUS:
                retry_after = _retry_after(response)
                detail = describe_errors(_json(response)) or response.reason or ""
                raise _Transient(f"HTTP {response.status_code} from {urlsplit(url).path}: {detail}".strip(": "),
                                 status=response.status_code, retry_after=retry_after)
            if not response.is_redirect:
                return response
            location = urljoin(url, response.headers.get("Location", ""))
            response.close()
            same_origin = _origin(location) == _origin(self.base_url)
            keeps_body = response.status_code in (307, 308) or method == "GET"
            if not (same_origin and keeps_body):
                raise ScError(f"DefectDojo at {self.base_url} redirected to {clean(location, 200)}; not followed",
                              why=("the API key is sent to the configured host only" if not same_origin else
                                   f"a {response.status_code} redirect would turn the upload into a GET"),
                              fix="Set url to DefectDojo's final address (scheme, host and path prefix "
                                  "included), e.g. https:// instead of http://.")
            url = location
        raise ScError(f"DefectDojo at {self.base_url} redirected more than {_MAX_REDIRECTS} times",
                      fix="Set url to DefectDojo's final address.")

    def _failure(self, response: requests.Response, doing: str, target: _Target | None) -> ScError:
        status = response.status_code
        body = _json(response)
        detail = clean(describe_errors(body) if body is not None else response.text)
        why = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
        if status in (401, 403):
            return ScError(f"DefectDojo refused the API key ({doing})", why=why, fix=KEY_FIX)
        if status == 400:
            return ScError(f"DefectDojo rejected the {doing}", why=why, fix=self._fields_fix(detail))
        if status == 404:
            return ScError(f"DefectDojo has no such endpoint or object ({doing})", why=why,
                           fix="Set url to DefectDojo's root (https://host[/prefix], without /api/v2); the "
                               "product, engagement or test may also have been deleted meanwhile.")
        if status == 413:
            return ScError(f"DefectDojo refused the report as too large ({doing})", why=why,
                           fix="Raise DD_SCAN_FILE_MAX_SIZE on DefectDojo, or the body limit of its proxy.")
        return ScError(f"DefectDojo answered HTTP {status} ({doing})", why=why,
                       fix="See DefectDojo's logs for the request.")

    def _fields_fix(self, detail: str) -> str:
        if "auto_create_context" in detail or "does not exist" in detail:
            if not self.auto_create_context:
                return (f"Create product {self.product_name!r} and engagement {self.engagement_name!r} in "
                        "DefectDojo, or let the upload create them: autoCreateContext: true (with "
                        "productTypeName for a new product).")
            if "product_type_name" in detail:
                return "Set productTypeName: the product type a new product is created in."
        return "Correct the fields DefectDojo names above (settings under security.scan.upload.defectdojo)."

    def _busy_fix(self, exc: _Transient) -> str:
        if exc.status == 429:
            return "DefectDojo is rate limiting this key: upload fewer images at once, or raise its API throttle."
        if exc.status is not None:
            return "DefectDojo kept failing: see its logs (HTTP 500 is also its answer to a report it cannot parse)."
        return "Check that DefectDojo is up and reachable from the CI runner."

    def _retrying(self, fn: Callable[[], UploadResult]) -> UploadResult:
        policy = self.retry
        backoff = wait_random_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Transient) and exc.retry_after is not None:
                return exc.retry_after  # honoured as given; the total time bound still applies
            return float(backoff(state))

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("DefectDojo: transient failure (attempt %d of %d): %s; retrying in %.1fs",
                        state.attempt_number, policy.attempts, clean(str(exc), 300), state.upcoming_sleep)

        retrying = Retrying(retry=retry_if_exception(_is_transient),
                            stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.total_seconds),
                            wait=wait, before_sleep=before_sleep, sleep=self._sleep, reraise=True)
        return retrying(fn)

    # -- inputs ---------------------------------------------------------------------------------

    def _read(self, report: Path | bytes) -> tuple[bytes, str]:
        if isinstance(report, bytes | bytearray):
            return bytes(report), "report.json"
        try:
            content = Path(report).read_bytes()
        except OSError as exc:
            raise ScError(f"cannot read the scan report {report}", why=str(exc)) from exc
        name = Path(report).name
        # DefectDojo checks the extension (DD_FILE_IMPORT_TYPES); grype and trivy reports are JSON
        return content, name if name.lower().endswith(".json") else "report.json"

    def _target(self, *, scan_type: str, image: str, version: str | None, test_title: str | None,
                extra: Sequence[tuple[str, str | None]]) -> _Target:
        if not scan_type or not scan_type.strip():
            raise ScError("no DefectDojo scan type given", fix=f'Use "{GRYPE}" or "{TRIVY}".')
        ref = _pinned(image)
        pinned = f"{ref.name}@{ref.digest}"
        title = title_for(image, test_title)
        if version is not None and len(version) > VERSION_MAX:
            raise ScError(f"version {version[:40]!r}… is longer than DefectDojo's {VERSION_MAX} characters")
        tags = (*self.tags, _tag(f"image:{ref.name}"), _tag(f"digest:{ref.digest}"))
        if version:
            tags += (_tag(f"version:{version}"),)
        return _Target(scan_type=scan_type.strip(), image=pinned, title=title, version=version or None,
                       extra=tuple((k, v) for k, v in extra if v), tags=tuple(dict.fromkeys(tags)))
