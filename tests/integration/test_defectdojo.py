"""DefectDojo uploads against the fake DefectDojo API on 127.0.0.1: fields, auth, one test per image, retries,
errors, redirects, and the key kept out of logs and errors."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sc_ci.errors import ScError
from sc_ci.secrets import Secret
from sc_ci.services.defectdojo import GRYPE, KEY_FIX, TRIVY, RetryPolicy, UploadAction, Uploader
from testbed.defectdojo import FakeDefectDojo

KEY = "dd-int-key-4b1f0c9e2a7d"
APP = "registry.example.com/shop/app@sha256:" + "1" * 64
API = "registry.example.com/shop/api@sha256:" + "2" * 64
FAST = RetryPolicy(attempts=4, total_seconds=20.0, initial_backoff=0.01, max_backoff=0.05)


def grype(*vulns: tuple[str, str, str, str]) -> bytes:
    """A grype JSON report with (id, package, version, severity) matches."""
    matches = [{"vulnerability": {"id": v, "severity": sev, "namespace": "debian:distro:debian:12"},
                "artifact": {"name": pkg, "version": ver, "type": "deb"}} for v, pkg, ver, sev in vulns]
    return json.dumps({"matches": matches, "source": {"type": "image"}, "descriptor": {"name": "grype"}}).encode()


def trivy(*vulns: tuple[str, str, str, str]) -> bytes:
    found = [{"VulnerabilityID": v, "PkgName": pkg, "InstalledVersion": ver, "Severity": sev.upper()}
             for v, pkg, ver, sev in vulns]
    return json.dumps({"SchemaVersion": 2, "Results": [{"Target": "app", "Vulnerabilities": found}]}).encode()


OPENSSL = ("CVE-2024-0001", "openssl", "3.0.1", "High")
ZLIB = ("CVE-2024-0002", "zlib", "1.2.13", "Critical")
CURL = ("GHSA-xxxx-yyyy-zzzz", "curl", "8.0.0", "Medium")


@pytest.fixture
def dojo() -> Iterator[FakeDefectDojo]:
    with FakeDefectDojo(KEY) as fake:
        yield fake


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(dojo: FakeDefectDojo, *, key: str = KEY, retry: RetryPolicy = FAST, **kwargs: Any) -> Uploader:
    options: dict[str, Any] = {"product_name": "shop", "engagement_name": "release", "auto_create_context": True,
                               "product_type_name": "Web", "tags": ["team:payments"], **kwargs}
    return Uploader(dojo.url, Secret(key, "DefectDojo API key"), retry=retry, **options)


def test_first_upload_imports_with_defectdojos_fields(dojo: FakeDefectDojo) -> None:
    report = grype(OPENSSL, ZLIB)
    with make(dojo) as up:
        result = up.upload(report, scan_type=GRYPE, image=APP, version="1.4.0", commit_hash="abc123")

    assert result.action is UploadAction.IMPORT
    assert result.test_title == APP
    assert result.url == f"{dojo.url}/test/{result.test_id}"
    assert result.counts is not None
    assert (result.counts.critical, result.counts.high, result.counts.total) == (1, 1, 2)
    [post] = dojo.uploads()
    assert post.path == "/api/v2/import-scan/"
    assert post.fields == {
        "scan_type": ["Anchore Grype"], "product_name": ["shop"], "engagement_name": ["release"],
        "auto_create_context": ["true"], "product_type_name": ["Web"], "test_title": [APP],
        "close_old_findings": ["false"], "close_old_findings_product_scope": ["false"], "version": ["1.4.0"],
        "commit_hash": ["abc123"],
        "tags": ["team:payments", "image:registry.example.com/shop/app", "digest:sha256:" + "1" * 64,
                 "version:1.4.0"],
    }
    assert post.files == {"file": ("report.json", report)}
    assert post.header("Authorization") == f"Token {KEY}"
    assert (post.header("Content-Type") or "").startswith("multipart/form-data; boundary=")
    assert (post.header("User-Agent") or "").startswith("sc-security-action/")
    test = dojo.tests[result.test_id]
    assert (test.title, test.scan_type, test.version) == (APP, GRYPE, "1.4.0")
    assert dojo.engagements[test.engagement]["name"] == "release"


def test_every_request_carries_the_token(dojo: FakeDefectDojo) -> None:
    with make(dojo) as up:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    with make(dojo) as up:  # a new uploader (the next CI job) looks product and engagement up again
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert {r.header("Authorization") for r in dojo.requests} == {f"Token {KEY}"}
    assert {r.path for r in dojo.requests} >= {"/api/v2/products/", "/api/v2/engagements/", "/api/v2/tests/"}


def test_report_file_is_sent_byte_for_byte(dojo: FakeDefectDojo, tmp_path: Path) -> None:
    report = tmp_path / "grype-app.json"
    report.write_bytes(grype(OPENSSL).replace(b"{", b"{\r\n", 1) + b"\n")
    with make(dojo) as up:
        up.upload(report, scan_type=GRYPE, image=APP)
        up.upload(tmp_path / "grype-app.json", scan_type=GRYPE, image=APP)
    assert [r.files["file"] for r in dojo.uploads()] == [("grype-app.json", report.read_bytes())] * 2


def test_reimport_of_the_same_image_goes_to_the_same_test(dojo: FakeDefectDojo) -> None:
    with make(dojo) as up:
        first = up.upload(grype(OPENSSL, ZLIB), scan_type=GRYPE, image=APP, version="1.4.0")
        second = up.upload(grype(OPENSSL, CURL), scan_type=GRYPE, image=APP, version="1.4.1")

    assert second.action is UploadAction.REIMPORT
    assert second.test_id == first.test_id
    assert len(dojo.tests) == 1
    reimport = dojo.uploads()[1]
    assert reimport.path == "/api/v2/reimport-scan/"
    assert reimport.field("test") == str(first.test_id)
    assert reimport.field("close_old_findings") == "true"
    assert reimport.field("scan_type") == GRYPE
    assert reimport.field("version") == "1.4.1"
    assert "product_name" not in reimport.fields
    assert "test_title" not in reimport.fields
    assert second.counts is not None
    assert (second.counts.created, second.counts.closed, second.counts.untouched) == (1, 1, 1)
    assert dojo.tests[first.test_id].version == "1.4.1"


def test_two_images_get_two_tests_and_never_close_each_others_findings(dojo: FakeDefectDojo) -> None:
    with make(dojo) as up:
        app = up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
        api = up.upload(grype(ZLIB), scan_type=GRYPE, image=API)  # an import: would close app's on close_old
        api_again = up.upload(grype(CURL), scan_type=GRYPE, image=API)  # a reimport: closes api's ZLIB only

    assert app.test_id != api.test_id == api_again.test_id
    assert {t.title for t in dojo.tests.values()} == {APP, API}
    assert dojo.tests[app.test_id].active() == {OPENSSL[:3]}
    assert dojo.tests[api.test_id].active() == {CURL[:3]}
    assert dojo.uploads()[1].field("close_old_findings") == "false"


def test_grype_and_trivy_of_one_image_are_two_tests(dojo: FakeDefectDojo) -> None:
    with make(dojo) as up:
        g = up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
        t = up.upload(trivy(OPENSSL), scan_type=TRIVY, image=APP)
        t2 = up.upload(trivy(OPENSSL), scan_type=TRIVY, image=APP)
    assert g.test_id != t.test_id == t2.test_id
    assert [x.action for x in (g, t, t2)] == [UploadAction.IMPORT, UploadAction.IMPORT, UploadAction.REIMPORT]
    assert dojo.tests[t.test_id].scan_type == TRIVY


def test_existing_engagement_is_imported_into_by_id(dojo: FakeDefectDojo) -> None:
    dojo.add_product("shop", "Web")
    engagement = dojo.add_engagement("shop", "release")
    with make(dojo, auto_create_context=False, product_type_name=None) as up:
        result = up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    post = dojo.uploads()[0]
    assert post.field("engagement") == str(engagement)
    assert "product_name" not in post.fields
    assert "auto_create_context" not in post.fields
    assert result.engagement_id == engagement


def test_missing_product_without_auto_create_explains(dojo: FakeDefectDojo) -> None:
    with make(dojo, auto_create_context=False, product_type_name=None) as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert caught.value.why == 'HTTP 400: Product "shop" does not exist'
    assert "autoCreateContext: true" in caught.value.fix
    assert len(dojo.uploads()) == 1  # a 400 is not retried


def test_auto_create_of_a_product_needs_a_product_type(dojo: FakeDefectDojo) -> None:
    with make(dojo, product_type_name=None) as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert "no product_type_name provided" in caught.value.why
    assert "productTypeName" in caught.value.fix


def test_503_is_retried(dojo: FakeDefectDojo, caplog: pytest.LogCaptureFixture) -> None:
    dojo.fail(503, times=2, path="import-scan")
    with make(dojo) as up:
        result = up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert result.action is UploadAction.IMPORT
    assert len(dojo.uploads()) == 3
    assert len(dojo.tests) == 1
    assert "transient failure" in caplog.text


def test_429_retry_after_is_honoured(dojo: FakeDefectDojo) -> None:
    dojo.fail(429, headers={"Retry-After": "7"}, path="import-scan")
    sleeps = Sleeps()
    with make(dojo, sleep=sleeps) as up:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert sleeps == [7.0]
    assert len(dojo.uploads()) == 2


def test_retry_after_beyond_the_time_budget_gives_up(dojo: FakeDefectDojo) -> None:
    dojo.fail(429, headers={"Retry-After": "3600"})
    sleeps = Sleeps()
    with make(dojo, sleep=sleeps) as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert sleeps == []
    assert "HTTP 429" in caught.value.why
    assert "rate limiting" in caught.value.fix


def test_dropped_connection_is_retried(dojo: FakeDefectDojo) -> None:
    dojo.drop(path="import-scan")
    with make(dojo) as up:
        result = up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert result.action is UploadAction.IMPORT
    assert len(dojo.uploads()) == 2


def test_an_import_that_got_through_is_not_duplicated_on_retry(dojo: FakeDefectDojo) -> None:
    # DefectDojo imported, then the proxy in front of it answered 502: the retry finds the new test.
    dojo.fail(502, path="import-scan", process=True)
    with make(dojo) as up:
        result = up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert [r.path for r in dojo.uploads()] == ["/api/v2/import-scan/", "/api/v2/reimport-scan/"]
    assert result.action is UploadAction.REIMPORT
    assert len(dojo.tests) == 1


def test_retries_are_bounded(dojo: FakeDefectDojo) -> None:
    dojo.fail(503, times=10)
    with make(dojo, retry=RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.02)) as up, \
            pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert len(dojo.requests) == 3
    assert "HTTP 503" in caught.value.why


def test_401_is_not_retried(dojo: FakeDefectDojo) -> None:
    dojo.fail(401, body={"detail": "Invalid token."})
    with make(dojo) as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert len(dojo.requests) == 1
    assert caught.value.fix == KEY_FIX
    assert "API v2 key" in caught.value.fix


def test_wrong_key_is_refused_without_retry(dojo: FakeDefectDojo) -> None:
    with make(dojo, key="dd-wrong-key-000111222") as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert len(dojo.requests) == 1
    assert "HTTP 403: Invalid token." in caught.value.why  # DefectDojo answers 403 (SessionAuthentication first)
    assert "refused the API key" in caught.value.what


def test_user_without_import_permission(dojo: FakeDefectDojo) -> None:
    dojo.import_permission = False
    with make(dojo) as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert "You do not have permission" in caught.value.why
    assert "Writer, Maintainer or Owner" in caught.value.fix
    assert len(dojo.uploads()) == 1


def test_400_shows_field_errors_sanitized_and_bounded(dojo: FakeDefectDojo) -> None:
    body = {"scan_type": ['"Anchore Grype" is not a valid choice.\n::error title=x::pwned'],
            "tags": ["x" * 2000], "message": "repr of the errors"}
    dojo.fail(400, body=body, path="import-scan")
    with make(dojo) as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    why = caught.value.why
    assert why.startswith('HTTP 400: scan_type: "Anchore Grype" is not a valid choice.')
    assert "tags: xxx" in why
    assert "\n" not in why
    assert "::" not in why
    assert len(why) < 700
    assert len(dojo.uploads()) == 1


def test_invalid_field_values_are_rejected_as_defectdojo_does(dojo: FakeDefectDojo) -> None:
    with make(dojo) as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type="Grype JSON", image=APP)
    assert 'scan_type: "Grype JSON" is not a valid choice.' in caught.value.why


def test_key_never_in_logs_or_errors(dojo: FakeDefectDojo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    dojo.fail(503, path="import-scan")
    dojo.fail(400, body={"file": [f"echo of the header: Token {KEY}"]}, path="reimport-scan")
    errors: list[ScError] = []
    with make(dojo) as up:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
        with pytest.raises(ScError) as caught:
            up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
        errors.append(caught.value)
    with make(dojo, key="dd-wrong-key-000111222") as up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    errors.append(caught.value)
    assert "echo of the header: Token ***" in errors[0].why
    for exc in errors:
        text = f"{exc} {exc.what} {exc.why} {exc.fix} {exc.diagnostics()} {exc!r}"
        assert KEY not in text
        assert "dd-wrong-key-000111222" not in text
    assert caplog.records
    assert KEY not in caplog.text


def test_redirect_to_another_host_is_refused(dojo: FakeDefectDojo) -> None:
    with FakeDefectDojo(KEY) as other:
        dojo.redirect_to = f"http://localhost:{other.port}"
        with make(dojo) as up, pytest.raises(ScError) as caught:
            up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
        assert other.requests == []
    assert "redirected to http://localhost:" in caught.value.what
    assert "configured host only" in caught.value.why
    assert len(dojo.requests) == 1


def test_redirect_to_https_is_refused(dojo: FakeDefectDojo) -> None:
    dojo.redirect_to = f"https://127.0.0.1:{dojo.port}"
    with make(dojo) as up, pytest.raises(ScError, match="not followed"):
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert len(dojo.requests) == 1


def test_same_origin_307_is_followed_with_the_body(dojo: FakeDefectDojo) -> None:
    dojo.fail(307, headers={"Location": "/api/v2/import-scan/"}, body={}, path="import-scan")
    with make(dojo) as up:
        result = up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert result.action is UploadAction.IMPORT
    first, second = dojo.uploads()
    assert first.files == second.files
    assert first.fields == second.fields
    assert second.header("Authorization") == f"Token {KEY}"


def test_a_report_defectdojo_cannot_parse(dojo: FakeDefectDojo) -> None:
    with make(dojo, retry=RetryPolicy(attempts=2, initial_backoff=0.01)) as up, pytest.raises(ScError) as caught:
        up.upload(b"<html>not json</html>", scan_type=GRYPE, image=APP)
    assert "HTTP 500" in caught.value.why
    assert "cannot parse" in caught.value.fix


def test_unreachable_defectdojo(dojo: FakeDefectDojo) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    up = Uploader(f"http://127.0.0.1:{port}", Secret(KEY), product_name="shop", engagement_name="release",
                  retry=RetryPolicy(attempts=2, initial_backoff=0.01))
    with up, pytest.raises(ScError) as caught:
        up.upload(grype(OPENSSL), scan_type=GRYPE, image=APP)
    assert "unreachable" in caught.value.what
    assert "HTTPS_PROXY" in caught.value.fix
    assert KEY not in caught.value.diagnostics()


def test_concurrent_first_uploads_create_one_engagement(dojo: FakeDefectDojo) -> None:
    from concurrent.futures import ThreadPoolExecutor

    images = [f"registry.example.com/shop/svc{i}@sha256:{str(i) * 64}" for i in range(1, 7)]
    with make(dojo) as up, ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda image: up.upload(grype(OPENSSL), scan_type=GRYPE, image=image), images))
    assert len(dojo.engagements) == 1
    assert len(dojo.products) == 1
    assert sorted(t.title or "" for t in dojo.tests.values()) == sorted(images)
    assert {r.action for r in results} == {UploadAction.IMPORT}
