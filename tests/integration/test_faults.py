"""A nine-image release through a fault-injecting proxy: random 503 / 429 (Retry-After) / connection resets
on 5 % of the requests and a 3 s outage every 10 s. The release still completes, everything it made verifies
with plain cosign, and retries wrote no duplicate signature or attestation."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sc_ci.runner import base_env
from testbed.demo import offline_release_config
from testbed.faultproxy import FaultProxy, Outage
from testbed.images import PushedImage, push_image
from testbed.keys import KeyPair
from testbed.registry import LocalRegistry

IMAGES = 9
ERROR_RATE = float(os.environ.get("SC_CI_FAULT_RATE", "0.05"))  # 503, 429 and resets, a third each
OUTAGE = Outage(length=3.0, period=10.0, phase=2.0)
SEED = int(os.environ.get("SC_CI_FAULT_SEED", "20260"))
SOURCE = "https://github.com/acme/shop"
SHA = "0123456789abcdef0123456789abcdef01234567"
BASES = ("alpine-app", "service-1", "service-2")
ATTESTATIONS = ("cyclonedx", "spdxjson", "slsaprovenance1")


def sc_ci(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    drop = ("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_", "ACTIONS_", "SIGSTORE_", "BUILDKITE", "CIRCLE")
    full = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    full.pop("CI", None)
    full.update(env)
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], cwd=cwd, env=full, text=True,
                          capture_output=True, timeout=170, check=False)



@pytest.fixture
def nine(registry: LocalRegistry) -> list[PushedImage]:
    """Nine fresh images pushed straight to the registry (no proxy)."""
    run = uuid.uuid4().hex[:8]

    def push(i: int) -> PushedImage:
        return push_image(registry.host, BASES[i % len(BASES)], repository=f"faults-{run}/svc-{i}", tag="1.0.0",
                          extra_files={"etc/sc-ci-fresh-id": f"{run}-{i}\n"})

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(push, range(IMAGES)))


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host, error_rate=ERROR_RATE, retry_after=1, outage=OUTAGE, seed=SEED,
                    lifetime=240.0) as started:
        yield started


# Concurrent `.att` writers of one digest (sbom-attach and provenance) would lose a layer, and a retried
# `cosign attach attestation` whose first response was lost would append the same envelope twice: the
# per-digest writer lock (cosign._writer) and the attach-once check prevent both, so this passes every time.
def test_nine_image_release_survives_random_faults_and_outages(
        nine: list[PushedImage], proxy: FaultProxy, registry: LocalRegistry, keys: KeyPair, cosign: Path,
        tmp_path: Path) -> None:
    (tmp_path / "security.yaml").write_text(offline_release_config(keys.private))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    images = [a for image in nine for a in ("--image", f"{proxy.host}/{image.repository}:1.0.0")]
    done = sc_ci("release", "create", "--config", str(tmp_path / "security.yaml"), *images, "--version", "1.0.0",
                 "--no-tag", "--output", str(tmp_path / "out"), "--source-repo", SOURCE, "--git-sha", SHA,
                 "--workflow-name", "release", cwd=tmp_path,
                 env={"COSIGN_PASSWORD": keys.password, "TMPDIR": str(tmp), "NO_PROXY": "127.0.0.1,localhost"})
    stats = proxy.stats
    print(f"fault proxy: {stats.summary()} in {proxy.elapsed:.0f}s "
          f"(rate {ERROR_RATE:.0%}, outage {OUTAGE.length:g}s every {OUTAGE.period:g}s, seed {SEED})")
    retried = done.stderr.count("transient failure (attempt")
    print(f"sc-ci retries logged: {retried}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    assert stats.injected > 0, stats.summary()  # the faults really happened
    assert stats.outages >= 1, stats.summary()
    assert list(tmp.iterdir()) == [], "sc-ci left files in TMPDIR"

    # everything verifies with plain cosign, straight from the registry (not through the proxy)
    env = base_env()
    for image in nine:
        ref = f"{registry.host}/{image.repository}@{image.digest}"
        checks = [["verify", "--key", str(keys.public), "--insecure-ignore-tlog=true", ref]]
        checks += [["verify-attestation", "--type", kind, "--key", str(keys.public), "--insecure-ignore-tlog=true",
                    ref] for kind in ATTESTATIONS]
        for argv in checks:
            ok = subprocess.run([str(cosign), *argv], env=env, capture_output=True, text=True, check=False,
                                timeout=60)
            assert ok.returncode == 0, f"{' '.join(argv)}\n{ok.stderr}"
        # retries wrote nothing twice: one signature, one attestation per document
        assert registry.legacy_layers(image, "sig") == 1, ref
        assert registry.legacy_layers(image, "att") == len(ATTESTATIONS), ref
