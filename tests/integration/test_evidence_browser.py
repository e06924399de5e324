"""evidence.html in a real headless Chromium (Debian's package): it renders with one table row per image, a
script planted in registry or manifest values never runs (shown by a control page where the same script,
unescaped, does run), and it prints to PDF."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sc_ci.report import evidence, evidence_html
from testbed.evidence import expectations, release

PLANT = "<script>document.body.setAttribute('data-pwned','yes')</script><img src=x onerror=\"document.title='PWNED'\">"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: apt-get install chromium (make system-deps does)")
    return found


def dump_dom(page: Path, *extra: str) -> str:
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--no-first-run", "--user-data-dir=" + str(page.parent / "profile"),
            "--virtual-time-budget=2000", "--dump-dom", *extra, page.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_evidence_page_renders_and_planted_scripts_never_run(tmp_path: Path) -> None:
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{PLANT}</body></html>")
    assert 'data-pwned="yes"' in dump_dom(control)  # the plant does run when not escaped: the check can fail

    data = evidence.build(release(summary=PLANT, failed=True), expectations())
    data["images"][0]["image"] = PLANT  # as a hostile manifest would record it
    page = tmp_path / "evidence.html"
    page.write_text(evidence_html.render(data))
    dom = dump_dom(page)
    assert 'data-pwned="yes"' not in dom  # the attribute the script would set; as text it is escaped
    assert "PWNED" not in dom.split("<body")[0]  # the title was not changed by the onerror handler
    assert "<img" not in dom
    assert dom.count('<tr class="image">') == len(data["images"]) == 2
    assert "&lt;script&gt;" in dom  # shown as text


def test_the_evidence_page_prints(tmp_path: Path) -> None:
    page = tmp_path / "evidence.html"
    page.write_text(evidence_html.render(evidence.build(release(), expectations())))
    pdf = tmp_path / "evidence.pdf"
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=" + str(tmp_path / "profile"), "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
            page.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert pdf.stat().st_size > 5000
