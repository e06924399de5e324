"""Wall time of SBOM generation + attach for the nine service images: one at a time vs in parallel.

Runs the real CLI (`sc-ci sbom generate --attach`, key-based, no transparency log) against a registry
it starts on 127.0.0.1, with the pinned syft and cosign. Each round pushes fresh copies of service-1..9
(new digests, so no run reuses another's attestations) and times each worker count once; rounds
alternate the order. Prints one line per run and a summary (median per worker count).

    python benchmarks/sbom_parallel.py [--rounds 3] [--workers 1,4,9]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sc_ci.runner import base_env
from sc_ci.tools.locate import find
from testbed.images import push_image
from testbed.registry import LocalRegistry

SERVICES = [f"service-{i}" for i in range(1, 10)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,4,9", help="comma-separated worker counts (1 = one at a time)")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    cosign, syft = find("cosign"), find("syft")
    if cosign is None or syft is None:
        print("cosign and syft are needed: make tools", file=sys.stderr)
        return 2
    print(f"machine: {os.cpu_count()} cores; syft {syft}; cosign {cosign}")
    times: dict[int, list[float]] = {w: [] for w in counts}
    with tempfile.TemporaryDirectory(prefix="sc-ci-bench-") as tmp, LocalRegistry() as registry:
        password = secrets.token_hex(8)
        env = {**os.environ, "COSIGN_PASSWORD": password}
        subprocess.run([str(cosign), "generate-key-pair"], cwd=tmp, env={**base_env(), "COSIGN_PASSWORD": password},
                       check=True, capture_output=True, timeout=60)
        for round_no in range(args.rounds):
            order = counts if round_no % 2 == 0 else list(reversed(counts))
            for workers in order:
                tag = secrets.token_hex(4)
                images = [push_image(registry.host, name, repository=f"bench/{name}-{tag}") for name in SERVICES]
                refs = [a for image in images for a in ("-i", image.ref)]
                out = Path(tmp) / f"out-{tag}"
                started = time.monotonic()
                done = subprocess.run(
                    [sys.executable, "-m", "sc_ci", "sbom", "generate", *refs, "--attach", "--key",
                     str(Path(tmp) / "cosign.key"), "--no-tlog", "--output", f"{out}/", "--workers", str(workers),
                     "-q"], env=env, capture_output=True, text=True, check=False, timeout=900)
                seconds = time.monotonic() - started
                if done.returncode != 0:
                    print(done.stdout, done.stderr, file=sys.stderr)
                    return 1
                attached = done.stdout.count("ok   sbom-attach")
                assert attached == len(SERVICES), done.stdout
                times[workers].append(seconds)
                print(f"round {round_no + 1}: workers={workers}: {seconds:6.2f} s for {len(SERVICES)} images "
                      f"(generate + validate + attach)")
    print("\nmedian wall time, 9 images:")
    base = statistics.median(times[counts[0]])
    for workers in counts:
        median = statistics.median(times[workers])
        print(f"  workers={workers}: {median:6.2f} s  ({base / median:.2f}x vs workers={counts[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
