"""DefectDojo uploader: URL and input checks, test titles, tags, error text and counts (no network)."""

from __future__ import annotations

import pytest

from sc_ci.errors import ConfigError, ScError, UsageError
from sc_ci.secrets import Secret
from sc_ci.services import defectdojo as dd

DIGEST = "sha256:" + "ab" * 32
KEY = "dd-unit-key-7f3c9a1e5b"


def uploader(url: str = "https://dojo.example.com", **kwargs: object) -> dd.Uploader:
    options: dict[str, object] = {"product_name": "shop", "engagement_name": "ci", **kwargs}
    return dd.Uploader(url, Secret(KEY, "DefectDojo API key"), **options)  # type: ignore[arg-type]


def test_scan_types_are_defectdojos_names() -> None:
    assert dd.scan_type_for("grype") == "Anchore Grype"
    assert dd.scan_type_for("Trivy") == "Trivy Scan"
    with pytest.raises(ScError, match="no DefectDojo scan type"):
        dd.scan_type_for("snyk")


@pytest.mark.parametrize(("url", "base"), [
    ("https://dojo.example.com", "https://dojo.example.com"),
    ("https://dojo.example.com/", "https://dojo.example.com"),
    ("https://dojo.example.com/defectdojo/api/v2/", "https://dojo.example.com/defectdojo"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://localhost:8080/", "http://localhost:8080"),
    ("http://[::1]:8080", "http://[::1]:8080"),
])
def test_accepted_urls(url: str, base: str) -> None:
    assert uploader(url).base_url == base


@pytest.mark.parametrize(("url", "why"), [
    ("http://dojo.example.com", "https"),
    ("http://10.0.0.5:8080", "https"),
    ("ftp://dojo.example.com", "not an http"),
    ("dojo.example.com", "not an http"),
    ("https://user:pw@dojo.example.com", "credentials"),
    ("https://dojo.example.com/?x=1", "query"),
])
def test_refused_urls(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as caught:
        uploader(url)
    assert caught.value.path == "security.scan.upload.defectdojo.url"


def test_the_key_must_be_a_secret_and_names_must_be_given() -> None:
    with pytest.raises(ConfigError, match="apiKey"):
        dd.Uploader("https://dojo.example.com", KEY, product_name="p", engagement_name="e")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="apiKey"):
        dd.Uploader("https://dojo.example.com", Secret(""), product_name="p", engagement_name="e")
    with pytest.raises(ConfigError, match="engagementName"):
        uploader(engagement_name=" ")
    with pytest.raises(ConfigError, match="productName"):
        uploader(product_name="")


def test_repr_never_shows_the_key() -> None:
    up = uploader()
    assert KEY not in repr(up)
    assert KEY not in repr(up._auth)
    assert KEY not in str(vars(up))


def test_title_names_repository_and_digest() -> None:
    assert dd.title_for(f"reg.example.com/team/app@{DIGEST}") == f"reg.example.com/team/app@{DIGEST}"
    # a tag is not part of the identity: the same digest under another tag is the same test
    assert dd.title_for(f"reg.example.com/team/app:1.2@{DIGEST}") == f"reg.example.com/team/app@{DIGEST}"
    assert dd.title_for(f"alpine@{DIGEST}") == f"docker.io/library/alpine@{DIGEST}"


def test_custom_title_still_names_the_image() -> None:
    image = f"reg.example.com/app@{DIGEST}"
    assert dd.title_for(image, "nightly  grype\nscan") == f"nightly grype scan (reg.example.com/app@{DIGEST})"
    assert dd.title_for(image, f"app {DIGEST}") == f"app {DIGEST}"


def test_long_titles_keep_the_digest() -> None:
    repo = "reg.example.com/" + "/".join(["segment-name"] * 18)
    title = dd.title_for(f"{repo}@{DIGEST}")
    assert len(title) == dd.TITLE_MAX
    assert title.endswith(DIGEST)
    assert title.startswith("…")


def test_title_needs_a_digest() -> None:
    with pytest.raises(ScError, match="digest"):
        dd.title_for("reg.example.com/app:1.0")
    with pytest.raises(UsageError):
        dd.title_for("not a ref")


def test_tags_are_made_valid_for_defectdojo() -> None:
    up = uploader(tags=["team x", "a,b", " ", "q'uote"])
    assert up.tags == ("team_x", "a_b", "q_uote")
    target = up._target(scan_type="Anchore Grype", image=f"reg.example.com/app:1@{DIGEST}", version="1.0 rc",
                        test_title=None, extra=())
    assert target.tags == ("team_x", "a_b", "q_uote", "image:reg.example.com/app", f"digest:{DIGEST}",
                           "version:1.0_rc")


def test_version_longer_than_defectdojo_allows() -> None:
    with pytest.raises(ScError, match="longer"):
        uploader()._target(scan_type="Trivy Scan", image=f"r.example.com/a@{DIGEST}", version="v" * 101,
                           test_title=None, extra=())


def test_clean_makes_untrusted_text_one_safe_line() -> None:
    Secret("s3cr3t-value-xyz")
    text = "bad\nfield\r\n::error title=x::pwned s3cr3t-value-xyz \x1b[31m"
    out = dd.clean(text)
    assert "\n" not in out
    assert "\r" not in out
    assert "\x1b" not in out
    assert "::" not in out
    assert "s3cr3t-value-xyz" not in out
    assert len(dd.clean("x" * 5000)) == dd.MESSAGE_MAX


def test_describe_errors_shapes() -> None:
    body = {"scan_type": ['"Grype" is not a valid choice.'], "tags": ["Invalid tag: 'a b'."],
            "message": "{'scan_type': [ErrorDetail(...)]}"}
    assert dd.describe_errors(body) == "scan_type: \"Grype\" is not a valid choice.; tags: Invalid tag: 'a b'."
    assert dd.describe_errors(['Product "shop" does not exist']) == 'Product "shop" does not exist'
    assert dd.describe_errors({"detail": "Invalid token."}) == "Invalid token."
    assert dd.describe_errors({"message": "Internal server error"}) == "Internal server error"
    assert dd.describe_errors({"non_field_errors": ["Uploading a Report File is required"]}) == \
        "non_field_errors: Uploading a Report File is required"


def _stats(**active: int) -> dict[str, dict[str, int]]:
    return {s: {"active": active.get(s, 0), "total": active.get(s, 0)} for s in (*dd.SEVERITIES, "total")}


def test_counts_from_import_statistics() -> None:
    counts = dd._counts({"after": _stats(critical=1, high=2, total=3)})
    assert counts == dd.FindingCounts(critical=1, high=2, medium=0, low=0, info=0, total=3)
    assert dd._counts(None) is None
    assert dd._counts({"before": {}}) is None


def test_counts_from_reimport_delta() -> None:
    delta = {a: {"total": {"total": n}} for a, n in (("created", 2), ("closed", 1), ("reactivated", 0),
                                                      ("untouched", 4))}
    counts = dd._counts({"after": _stats(low=6, total=6), "delta": delta})
    assert counts is not None
    assert (counts.total, counts.created, counts.closed, counts.reactivated, counts.untouched) == (6, 2, 1, 0, 4)
