"""A fake DefectDojo API v2 on 127.0.0.1: import-scan, reimport-scan and the product/engagement/test lists, as
DefectDojo validates and answers them, recording every request and failing on demand."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

# What DefectDojo answers, word for word (DRF, dojo/api_v2/exception_handler.py, dojo/authorization/api_permissions.py).
NO_CREDENTIALS = "Authentication credentials were not provided."
INVALID_TOKEN = "Invalid token."  # noqa: S105 (DRF's message, not a value)
NO_PERMISSION = "You do not have permission to perform this action."
REQUIRED = "This field is required."
NOT_BOOLEAN = "Must be a valid boolean."
SCAN_TYPES = frozenset({"Anchore Grype", "Trivy Scan", "Generic Findings Import", "SARIF"})
FILE_TYPES = (".xml", ".csv", ".nessus", ".json", ".jsonl", ".html", ".js", ".zip", ".xlsx", ".txt", ".sarif")
_TRUE = frozenset({"true", "True", "TRUE", "1", "yes", "Yes", "on", "On", "t", "T", "y", "Y"})
_FALSE = frozenset({"false", "False", "FALSE", "0", "no", "No", "off", "Off", "f", "F", "n", "N"})
_TAG_BAD = re.compile(r"[ ,'\"]")
SEVERITIES = ("Critical", "High", "Medium", "Low", "Info")
STATS_FIELDS = ("active", "verified", "duplicate", "false_p", "out_of_scope", "is_mitigated", "risk_accepted", "total")
PAGE_SIZE = 25


class BadRequest(Exception):
    """An answer other than success; `body` is DefectDojo's JSON for it."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (every field and file of a multipart body, every header)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    fields: dict[str, list[str]]
    files: dict[str, tuple[str, bytes]]  # field → (filename, content)

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class Failure:
    """A scripted answer: `status` with `body`/`headers`, or a dropped connection when status is None."""

    status: int | None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None  # only requests whose path contains this (e.g. "import-scan")
    process: bool = False  # serve the request first, then fail (a proxy timing out after DefectDojo imported)


@dataclass
class Finding:
    key: tuple[str, str, str]  # (vulnerability id, package, version)
    severity: str
    active: bool = True
    is_mitigated: bool = False


@dataclass
class FakeTest:
    id: int
    engagement: int
    title: str | None
    scan_type: str
    version: str | None
    tags: list[str]
    findings: list[Finding] = field(default_factory=list)
    created: str = ""
    imports: int = 1  # import + reimports

    def active(self) -> set[tuple[str, str, str]]:
        return {f.key for f in self.findings if f.active}


def parse_report(scan_type: str, content: bytes) -> list[Finding]:
    """Findings of a grype or trivy JSON report (DefectDojo's parsers raise on what is not their JSON: a 500)."""
    data = json.loads(content.decode("utf-8"))  # ValueError → the 500 DefectDojo answers
    found: dict[tuple[str, str, str], Finding] = {}
    if scan_type == "Anchore Grype":
        for match in data.get("matches") or []:
            vuln, artifact = match["vulnerability"], match["artifact"]
            key = (vuln["id"], artifact["name"], artifact.get("version", ""))
            found[key] = Finding(key, _severity(vuln.get("severity", "")))
    elif scan_type == "Trivy Scan":
        for result in data.get("Results") or []:
            for vuln in result.get("Vulnerabilities") or []:
                key = (vuln["VulnerabilityID"], vuln["PkgName"], vuln.get("InstalledVersion", ""))
                found[key] = Finding(key, _severity(vuln.get("Severity", "")))
    return list(found.values())


def _severity(value: str) -> str:
    value = value.capitalize()
    return value if value in SEVERITIES else "Info"  # Negligible, Unknown → Info


def _statistics(findings: list[Finding]) -> dict[str, dict[str, int]]:
    """SeverityStatusStatisticsSerializer: {severity: {active, …, total}, "total": {…}}."""
    stats: dict[str, dict[str, int]] = {s.lower(): dict.fromkeys(STATS_FIELDS, 0) for s in (*SEVERITIES, "total")}
    for f in findings:
        for bucket in (stats[f.severity.lower()], stats["total"]):
            bucket["total"] += 1
            bucket["active"] += int(f.active)
            bucket["is_mitigated"] += int(f.is_mitigated)
    return stats


def _delta_bucket(findings: list[Finding]) -> dict[str, dict[str, int]]:
    return _statistics([Finding(f.key, f.severity, active=True) for f in findings])


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]]:
    """A multipart/form-data body as fields and files (exactly the bytes sent). Raises ValueError if malformed."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/form-data") or not match:
        raise ValueError("not multipart/form-data")
    delimiter = b"--" + match.group(1).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("no closing boundary")
    fields: dict[str, list[str]] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ValueError("a part is not framed by CRLF")
        head, sep, content = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no header block")
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head.decode("utf-8").split("\r\n"))}
        disposition = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        if not name:
            raise ValueError("a part has no name")
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if filename:
            files[name.group(1)] = (filename.group(1), content)
        else:
            fields.setdefault(name.group(1), []).append(content.decode("utf-8"))
    return fields, files


class FakeDefectDojo:
    """DefectDojo API v2 at http://127.0.0.1:PORT (`url`), holding product types, products, engagements and
    tests in memory. Auth is `Authorization: Token <api_key>`; `requests` records everything received.

    Failures: `fail(503, times=2)`, `fail(429, headers={"Retry-After": "1"})`, `fail(400, body={...})`,
    `drop(times=1)` (close the connection without answering); `redirect_to = "http://other:1"` answers every
    request with a 302 there; `import_permission = False` makes the key's user a reader (403 on uploads).
    """

    def __init__(self, api_key: str, *, import_permission: bool = True) -> None:
        self.api_key = api_key
        self.import_permission = import_permission
        self.redirect_to: str | None = None
        self.redirect_status = 302
        self.requests: list[RecordedRequest] = []
        self.failures: list[Failure] = []
        self.product_types: dict[int, str] = {}
        self.products: dict[int, dict[str, Any]] = {}  # id → {name, prod_type}
        self.engagements: dict[int, dict[str, Any]] = {}  # id → {name, product}
        self.tests: dict[int, FakeTest] = {}
        self._ids = 0
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> FakeDefectDojo:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> FakeDefectDojo:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            self._server.daemon_threads = True
            server = self._server
            self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                                            name="fake-defectdojo", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake DefectDojo is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting ----------------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, body: Any = None, headers: Mapping[str, str] | None = None,
             path: str | None = None, process: bool = False) -> None:
        """Answer the next `times` requests (matching `path`) with `status` instead of serving them (or after
        serving them, with `process`)."""
        default = ({"message": "Internal server error, check logs for details"} if status == 500 else
                   {"detail": "Request was throttled. Expected available in 1 second."} if status == 429 else
                   {"message": f"scripted failure {status}"})
        with self._lock:
            self.failures += [Failure(status, default if body is None else body, dict(headers or {}), path,
                                      process)] * times

    def drop(self, *, times: int = 1, path: str | None = None, process: bool = False) -> None:
        """Close the next `times` connections (matching `path`) after reading the request, without answering."""
        with self._lock:
            self.failures += [Failure(None, path=path, process=process)] * times

    def add_product(self, name: str, product_type: str = "Research and Development") -> int:
        with self._lock:
            return self._product(name, self._product_type(product_type))

    def add_engagement(self, product: str, name: str) -> int:
        with self._lock:
            product_id = next(i for i, p in self.products.items() if p["name"] == product)
            return self._engagement(product_id, name)

    def uploads(self) -> list[RecordedRequest]:
        """The import-scan and reimport-scan requests received, in order."""
        return [r for r in self.requests
                if r.method == "POST" and r.path.endswith(("/import-scan/", "/reimport-scan/"))]

    def tests_titled(self, title: str) -> list[FakeTest]:
        return [t for t in self.tests.values() if t.title == title]

    # -- serving ------------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> tuple[int, Any, dict[str, str]] | None:
        """The answer to one request (status, JSON body, extra headers), or None to drop the connection."""
        with self._lock:
            self.requests.append(request)
            failure = next((f for f in self.failures if f.path is None or f.path in request.path), None)
            if failure is not None:
                self.failures.remove(failure)
                if failure.process:
                    with contextlib.suppress(BadRequest):
                        self._route(request)
                if failure.status is None:
                    return None
                return failure.status, failure.body, dict(failure.headers)
            if self.redirect_to is not None:
                return self.redirect_status, {}, {"Location": self.redirect_to.rstrip("/") + request.path}
            try:
                return self._route(request)
            except BadRequest as exc:
                return exc.status, exc.body, {}

    def _route(self, request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        routes = {("POST", "/api/v2/import-scan/"): self._import_scan,
                  ("POST", "/api/v2/reimport-scan/"): self._reimport_scan,
                  ("GET", "/api/v2/products/"): self._list_products,
                  ("GET", "/api/v2/engagements/"): self._list_engagements,
                  ("GET", "/api/v2/tests/"): self._list_tests}
        handler = routes.get((request.method, request.path))
        if handler is None:
            if any(path == request.path for _, path in routes):
                raise BadRequest(405, {"detail": f'Method "{request.method}" not allowed.'})
            raise BadRequest(404, {"detail": "Not found."})
        self._authenticate(request)
        if request.method == "POST":
            content_type = request.header("Content-Type") or ""
            if not content_type.lower().startswith("multipart/form-data"):
                raise BadRequest(415, {"detail": f'Unsupported media type "{content_type}" in request.'})
            if not self.import_permission:
                raise BadRequest(403, {"detail": NO_PERMISSION})
        status, body = handler(request)
        return status, body, {}

    def _authenticate(self, request: RecordedRequest) -> None:
        # DRF's TokenAuthentication. DefectDojo lists SessionAuthentication first, which has no
        # WWW-Authenticate header, so DRF answers 403 (not 401) for missing or wrong credentials.
        auth = (request.header("Authorization") or "").split()
        if not auth or auth[0].lower() != "token":
            raise BadRequest(403, {"detail": NO_CREDENTIALS})
        if len(auth) == 1:
            raise BadRequest(403, {"detail": "Invalid token header. No credentials provided."})
        if len(auth) > 2:
            raise BadRequest(403, {"detail": "Invalid token header. Token string should not contain spaces."})
        if auth[1] != self.api_key:
            raise BadRequest(403, {"detail": INVALID_TOKEN})

    # -- lists (LimitOffsetPagination) ---------------------------------------------------------

    def _page(self, request: RecordedRequest, rows: list[dict[str, Any]]) -> tuple[int, Any]:
        q = {k: v[-1] for k, v in request.query.items()}
        limit = int(q.get("limit", PAGE_SIZE))
        offset = int(q.get("offset", 0))
        return 200, {"count": len(rows), "next": None if offset + limit >= len(rows) else "(next page)",
                     "previous": None, "results": rows[offset:offset + limit]}

    def _list_products(self, request: RecordedRequest) -> tuple[int, Any]:
        q = {k: v[-1] for k, v in request.query.items()}
        rows = [{"id": i, "name": p["name"], "prod_type": p["prod_type"]} for i, p in sorted(self.products.items())
                if ("name_exact" not in q or p["name"].lower() == q["name_exact"].lower())
                and ("name" not in q or q["name"].lower() in p["name"].lower())]
        return self._page(request, rows)

    def _list_engagements(self, request: RecordedRequest) -> tuple[int, Any]:
        q = {k: v[-1] for k, v in request.query.items()}
        rows = [{"id": i, "name": e["name"], "product": e["product"], "engagement_type": "CI/CD",
                 "status": "In Progress"} for i, e in sorted(self.engagements.items())
                if ("product" not in q or str(e["product"]) == q["product"])
                and ("name" not in q or e["name"] == q["name"])]
        return self._page(request, rows)

    def _list_tests(self, request: RecordedRequest) -> tuple[int, Any]:
        q = {k: v[-1] for k, v in request.query.items()}
        tests = [t for t in self.tests.values()
                 if ("engagement" not in q or str(t.engagement) == q["engagement"])
                 and ("title" not in q or t.title == q["title"])
                 and ("scan_type" not in q or t.scan_type == q["scan_type"])]
        tests.sort(key=lambda t: t.id, reverse=q.get("o") == "-created")
        rows = [{"id": t.id, "title": t.title, "scan_type": t.scan_type, "engagement": t.engagement,
                 "version": t.version, "tags": list(t.tags), "test_type": 1, "created": t.created} for t in tests]
        return self._page(request, rows)

    # -- import-scan / reimport-scan -------------------------------------------------------------

    def _import_scan(self, request: RecordedRequest) -> tuple[int, Any]:
        data = self._resolve(request)
        engagement = data["engagement"]
        if engagement is None:  # dojo/authorization/api_permissions.py UserHasImportPermission
            if not data["auto_create_context"]:
                self._no_auto_create(data, None)
            self._check_auto_create(data)
        values = self._validate(request, close_old_default=False)
        if engagement is None:
            engagement = self._create_context(data)
        test = self._new_test(engagement, values)
        closed = self._close_old_in_engagement(test) if values["close_old_findings"] else []
        return 201, self._response(values, test, before=None, delta=None, closed=closed)

    def _reimport_scan(self, request: RecordedRequest) -> tuple[int, Any]:
        data = self._resolve(request, reimport=True)
        test: FakeTest | None = data["test"]
        if test is None:  # UserHasReimportPermission
            if data["test_id"] is not None:
                raise BadRequest(400, [f'Test "{data["test_id"]}" does not exist'])
            if not data["auto_create_context"]:
                self._no_auto_create(data, data.get("test_title") or "")
            self._check_auto_create(data)
        values = self._validate(request, close_old_default=True)
        if test is None:
            # ReImportScanSerializer.process_scan: no test yet → import a new one, close_old_findings forced off
            engagement = data["engagement"] or self._create_context(data)
            return 201, self._response(values, self._new_test(engagement, values), before=None, delta=None)
        before = _statistics(test.findings)
        report = {f.key: f for f in values["findings"]}
        created = [f for k, f in report.items() if k not in {x.key for x in test.findings}]
        untouched, reactivated, closed = [], [], []
        for old in test.findings:
            if old.key in report:
                if old.active:
                    untouched.append(old)
                elif not values["do_not_reactivate"]:
                    old.active, old.is_mitigated = True, False
                    reactivated.append(old)
            elif old.active and values["close_old_findings"]:
                old.active, old.is_mitigated = False, True
                closed.append(old)
        test.findings += created
        test.imports += 1
        if values["version"]:
            test.version = values["version"]
        if values["tags"]:
            test.tags = values["tags"]  # "Existing test tags will be overwritten"
        delta = {"created": _delta_bucket(created), "closed": _delta_bucket(closed),
                 "reactivated": _delta_bucket(reactivated), "untouched": _delta_bucket(untouched)}
        return 201, self._response(values, test, before=before, delta=delta)

    def _resolve(self, request: RecordedRequest, *, reimport: bool = False) -> dict[str, Any]:
        """AutoCreateContextManager's lookups: product type, product (by exact name), the last engagement of
        that name in it (or the id given), and for a reimport the test (by id, or last by title + scan type)."""
        f = {k: v[0] for k, v in request.fields.items() if v and v[0]}
        data: dict[str, Any] = {k: f.get(k) for k in ("product_type_name", "product_name", "engagement_name",
                                                       "test_title", "scan_type")}
        data["auto_create_context"] = f.get("auto_create_context") in _TRUE
        data["product_type"] = next((i for i, n in self.product_types.items() if n == data["product_type_name"]), None)
        product = next((i for i, p in self.products.items() if p["name"] == data["product_name"]), None)
        if product is not None and data["product_type_name"] and \
                self.product_types[self.products[product]["prod_type"]] != data["product_type_name"]:
            raise BadRequest(400, ["The fetched product has a conflict with the supplied product type name: existing "
                                   f"product type name - {self.product_types[self.products[product]['prod_type']]} vs "
                                   f"supplied product type name - {data['product_type_name']}"])
        data["product"] = product
        engagement_id = None if reimport else self._id_field(f, "engagement")
        if engagement_id is not None:
            if engagement_id not in self.engagements:
                raise BadRequest(400, [f'Engagement "{engagement_id}" does not exist'])
            data["engagement"] = engagement_id
        else:
            data["engagement"] = max((i for i, e in self.engagements.items() if product is not None
                                      and e["product"] == product and e["name"] == data["engagement_name"]),
                                     default=None)
        data["test_id"] = self._id_field(f, "test") if reimport else None
        data["test"] = None
        if reimport:
            if data["test_id"] is not None:
                data["test"] = self.tests.get(data["test_id"])
            elif data["engagement"] is not None:
                candidates = [t for t in self.tests.values() if t.engagement == data["engagement"]
                              and t.scan_type == data["scan_type"]
                              and (not data["test_title"] or t.title == data["test_title"])]
                data["test"] = max(candidates, key=lambda t: t.id, default=None)
        return data

    @staticmethod
    def _id_field(fields: Mapping[str, str], name: str) -> int | None:
        value = fields.get(name)
        if value is None:
            return None
        if not value.isdigit():
            raise BadRequest(400, [f"{name} must be an integer"])
        return int(value)

    def _no_auto_create(self, data: Mapping[str, Any], test_title: str | None) -> None:
        """raise_no_auto_create_import_validation_error (api_permissions.py), in its order."""
        if not data["product_name"]:
            raise BadRequest(400, ["product_name parameter missing"])
        if not data["engagement_name"]:
            raise BadRequest(400, ["engagement_name parameter missing"])
        if data["product_type_name"] and data["product_type"] is None:
            raise BadRequest(400, [f'Product Type "{data["product_type_name"]}" does not exist'])
        if data["product"] is None:
            if data["product_type_name"]:
                raise BadRequest(400, [f'Product "{data["product_name"]}" does not exist in Product_Type '
                                       f'"{data["product_type_name"]}"'])
            raise BadRequest(400, [f'Product "{data["product_name"]}" does not exist'])
        if data["engagement"] is None:
            raise BadRequest(400, [f'Engagement "{data["engagement_name"]}" does not exist in Product '
                                   f'"{data["product_name"]}"'])
        if test_title:
            raise BadRequest(400, [f'Test "{test_title}" with scan_type "{data["scan_type"]}" does not exist in '
                                   f'Engagement "{data["engagement_name"]}"'])
        if test_title is not None and data["scan_type"]:
            raise BadRequest(400, [f'Test with scan_type "{data["scan_type"]}" does not exist in Engagement '
                                   f'"{data["engagement_name"]}"'])
        raise BadRequest(400, ["Need engagement_id or product_name + engagement_name to perform import"])

    def _check_auto_create(self, data: Mapping[str, Any]) -> None:
        """check_auto_create_permission (api_permissions.py): names present; a new product needs a type."""
        if not data["product_name"]:
            raise BadRequest(400, ["product_name parameter missing"])
        if not data["engagement_name"]:
            raise BadRequest(400, ["engagement_name parameter missing"])
        if data["product"] is None and not data["product_type_name"]:
            raise BadRequest(400, [f'Product "{data["product_name"]}" does not exist and no product_type_name '
                                   "provided to create the new product in"])

    def _validate(self, request: RecordedRequest, *, close_old_default: bool) -> dict[str, Any]:
        """The serializer's field validation: {"field": ["message"]} for each bad field, then validate()."""
        fields = {k: v for k, v in request.fields.items() if v}
        errors: dict[str, list[str]] = {}
        scan_type = (fields.get("scan_type") or [""])[0]
        if not scan_type:
            errors["scan_type"] = [REQUIRED]
        elif scan_type not in SCAN_TYPES:
            errors["scan_type"] = [f'"{scan_type}" is not a valid choice.']
        booleans: dict[str, bool] = {}
        for name, default in (("close_old_findings", close_old_default), ("close_old_findings_product_scope", False),
                              ("auto_create_context", False), ("do_not_reactivate", False)):
            raw = (fields.get(name) or [""])[0]
            if raw and raw not in _TRUE | _FALSE:
                errors[name] = [NOT_BOOLEAN]
            booleans[name] = raw in _TRUE if raw else default
        tags: list[str] = []
        for value in fields.get("tags", []):
            for sub in re.findall(r'(?:"[^"]*"|[^",]+)', value):
                if _TAG_BAD.search(sub):
                    errors.setdefault("tags", []).append(
                        f"Invalid tag: '{sub}'. Tags should not contain spaces, commas, or quotes.")
                tags.append(sub)
        upload = request.files.get("file")
        if upload is not None and not upload[0].lower().endswith(FILE_TYPES):
            ext = upload[0].rpartition(".")[2] if "." in upload[0] else ""
            errors["file"] = [f"File extension “{ext}” is not allowed. Allowed extensions are: "
                              f"{', '.join(e.lstrip('.') for e in FILE_TYPES)}."]
        if errors:
            raise BadRequest(400, {**errors, "message": f"{errors}"})
        if upload is None:
            raise BadRequest(400, {"non_field_errors": [f"Uploading a Report File is required for {scan_type}"]})
        try:
            findings = parse_report(scan_type, upload[1])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadRequest(500, {"message": "Internal server error, check logs for details"}) from None
        one = {k: v[0] for k, v in fields.items()}
        return {**booleans, "scan_type": scan_type, "tags": tags, "findings": findings,
                "version": one.get("version"), "test_title": one.get("test_title"), "fields": one}

    def _create_context(self, data: Mapping[str, Any]) -> int:
        """AutoCreateContextManager.get_or_create_engagement: product type, product, engagement ("CI/CD")."""
        product = data["product"]
        if product is None:
            product = self._product(data["product_name"], self._product_type(data["product_type_name"]))
        return self._engagement(product, data["engagement_name"])

    def _new_test(self, engagement: int, values: Mapping[str, Any]) -> FakeTest:
        test = FakeTest(id=self._next_id(), engagement=engagement, title=values["test_title"],
                        scan_type=values["scan_type"], version=values["version"], tags=list(values["tags"]),
                        findings=list(values["findings"]), created=datetime.now(UTC).isoformat())
        self.tests[test.id] = test
        return test

    def _close_old_in_engagement(self, test: FakeTest) -> list[Finding]:
        """Import's close_old_findings: active findings of *other* tests of the same scan type in the engagement
        (default_importer.get_close_old_findings_queryset) not in this report are mitigated."""
        keep = {f.key for f in test.findings}
        closed = []
        for other in self.tests.values():
            if other.id != test.id and other.engagement == test.engagement and other.scan_type == test.scan_type:
                for f in other.findings:
                    if f.active and f.key not in keep:
                        f.active, f.is_mitigated = False, True
                        closed.append(f)
        return closed

    def _response(self, values: Mapping[str, Any], test: FakeTest, *, before: Any, delta: Any,
                  closed: list[Finding] | None = None) -> dict[str, Any]:
        engagement = self.engagements[test.engagement]
        product = self.products[engagement["product"]]
        statistics: dict[str, Any] = {}
        if before is not None:
            statistics["before"] = before
        if delta is not None:
            statistics["delta"] = delta
        statistics["after"] = _statistics(test.findings)
        echo = {k: v for k, v in values["fields"].items() if k not in ("file",)}
        return {**echo, "scan_type": test.scan_type, "close_old_findings": values["close_old_findings"],
                "tags": list(test.tags), "test": test.id, "test_id": test.id, "engagement_id": test.engagement,
                "product_id": engagement["product"], "product_type_id": product["prod_type"],
                "statistics": statistics, "pro": [], "deduplication_complete": False}

    # -- object creation ----------------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _product_type(self, name: str) -> int:
        found = next((i for i, n in self.product_types.items() if n == name), None)
        if found is None:
            found = self._next_id()
            self.product_types[found] = name
        return found

    def _product(self, name: str, product_type: int) -> int:
        found = next((i for i, p in self.products.items() if p["name"] == name), None)
        if found is None:
            found = self._next_id()
            self.products[found] = {"name": name, "prod_type": product_type}
        return found

    def _engagement(self, product: int, name: str) -> int:
        found = max((i for i, e in self.engagements.items() if e["product"] == product and e["name"] == name),
                    default=None)
        if found is None:
            found = self._next_id()
            self.engagements[found] = {"name": name, "product": product}
        return found


def _handler(dojo: FakeDefectDojo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "fake-defectdojo/1"
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            headers = {k: v for k, v in self.headers.items()}
            fields: dict[str, list[str]] = {}
            files: dict[str, tuple[str, bytes]] = {}
            content_type = self.headers.get("Content-Type", "")
            if body and content_type.lower().startswith("multipart/form-data"):
                try:
                    fields, files = parse_multipart(content_type, body)
                except (ValueError, UnicodeDecodeError) as exc:
                    self._send(400, {"detail": f"Multipart form parse error - {exc}"}, {})
                    return
            request = RecordedRequest(self.command, parts.path, parse_qs(parts.query), headers, fields, files)
            answer = dojo.handle(request)
            if answer is None:
                self.close_connection = True
                return
            self._send(*answer)

        def _send(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Allow", "POST, OPTIONS" if "scan" in self.path else "GET, POST, HEAD, OPTIONS")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
