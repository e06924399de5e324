"""Evidence documents made from result values, for the evidence reporter tests (unit and headless browser):
a two-image release (one built, one upstream) whose registry and manifest values are hostile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sc_ci.errors import VerificationFailed
from sc_ci.imageref import parse
from sc_ci.results.run import PlannedImage, PolicyFacts, Release, Verdict
from sc_ci.results.step import Outcome, StepResult
from sc_ci.results.verify import ArtifactFound, CheckEvidence, Level, SignerFound
from sc_ci.verify.expect import Expectations, Pin, Signer

HOSTILE = '<script>alert(1)</script>"onload=x \n::error::pwned\n##[warning]x | `code` [link](http://evil)'
D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def release(summary: str = "verified 1 signature(s)", failed: bool = False) -> Release:
    images = (PlannedImage(parse(f"reg.example.com/shop/api@{D1}"), "reg.example.com/shop/api:" + "1.0"),
              PlannedImage(parse(f"reg.example.com/lib/db@{D2}"), "reg.example.com/lib/db:16", built=False))
    api = images[0].name
    artifact = ArtifactFound("signature", "bundle", D2, D1, signer=SignerFound(
        "keyless", HOSTILE, "https://token.actions.githubusercontent.com", {"buildSignerURI": HOSTILE}),
        rekor_log_index=42)
    error = VerificationFailed(f"{api}: {HOSTILE}", why=HOSTILE, fix="re-sign") if failed else None
    results = (
        StepResult("verify", api, Outcome.FAILED if failed else Outcome.OK, summary, 0.1, error,
                   payload=CheckEvidence("signature", api, {"signer": HOSTILE}, {"identity": HOSTILE}, (artifact,))),
        StepResult("verify-provenance", api, Outcome.OK, "verified", 0.1,
                   payload=CheckEvidence("provenance", api, level=Level(2, "signed keyless by a hosted platform"))),
        StepResult("verify-vuln", images[1].name, Outcome.SKIPPED, "upstream image"),
    )
    now = datetime.now(UTC)
    verdict = Verdict(1 if failed else 0, results[:1] if failed else (), ())
    return Release(images, ("verify", "verify-provenance", "verify-vuln"), PolicyFacts({}, False, "direct command"),
                   results, verdict, now - timedelta(seconds=2), now, 2.0, False, None, {"cosign": "3.1.2"})


def expectations() -> Expectations:
    signer = Signer("keyless", "--certificate-identity", identity=Pin(HOSTILE, "--certificate-identity"),
                    issuer=Pin("https://token.actions.githubusercontent.com", "release.json (untrusted)"))
    return Expectations(signer, release={"version": HOSTILE, "stack": "shop"})
