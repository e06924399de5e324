"""Benchmark: grype and trivy in parallel on one image versus the slower scanner alone, and the number of DB
loads for nine images in one run.

Run: PYTHONPATH=. python benchmarks/scan_parallel.py [--rounds 3]. Starts its own registry on 127.0.0.1 and
serves the test bed's vulnerability DBs from loopback mirrors (as an air-gapped user would); each scan
round uses a fresh cache of scan results (none), so every scan really runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testbed.images import push_image
from testbed.registry import LocalRegistry
from testbed.vulndb import grype_db, trivy_db
from testbed.vulndb.serve import GrypeListingServer, push_trivy_db


def config(path: Path, tools: str, cache: Path, grype_url: str, trivy_repo: str) -> Path:
    path.write_text(f"security:\n  scan:\n    enabled: true\n    tools: [{tools}]\n    db:\n      cacheDir: {cache}\n"
                    f"      grypeUpdateUrl: {grype_url}\n      trivyRepository: {trivy_repo}\n")
    return path


def scan(refs: list[str], cfg: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "sc_ci", "image", "scan", "--config", str(cfg),
                           *[a for r in refs for a in ("-i", r)], "--workers", "9"], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"scan failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "GITHUB_"))}
    results: dict[str, list[float]] = {"grype": [], "trivy": [], "both": []}
    with tempfile.TemporaryDirectory() as tmpdir, LocalRegistry() as registry:
        tmp = Path(tmpdir)
        grype = grype_db.build(tmp / "mirror" / "grype")
        trivy = trivy_db.build(tmp / "mirror" / "trivy")
        with GrypeListingServer(grype) as listing:
            trivy_repo = push_trivy_db(trivy, registry.host)
            cache = tmp / "vulndb"  # DBs downloaded once here; scan results are not cached (no --cache-dir)
            image = push_image(registry.host, "alpine-app").by_digest
            for name in ("grype", "trivy", "grype, trivy"):  # warm the DB cache first
                scan([image], config(tmp / "warm.yaml", name, cache, listing.update_url, trivy_repo), env)
            for _ in range(rounds):
                for key, tools in (("grype", "grype"), ("trivy", "trivy"), ("both", "grype, trivy")):
                    cfg = config(tmp / f"{key}.yaml", tools, cache, listing.update_url, trivy_repo)
                    results[key].append(scan([image], cfg, env))
            nine = [push_image(registry.host, f"service-{i}").by_digest for i in range(1, 10)]
            fresh = tmp / "vulndb-nine"
            before = (listing.listing_fetches, listing.archive_fetches)
            wall = scan(nine, config(tmp / "nine.yaml", "grype, trivy", fresh, listing.update_url, trivy_repo), env)
            loads = (listing.listing_fetches - before[0], listing.archive_fetches - before[1])
    med = {k: statistics.median(v) for k, v in results.items()}
    slower = max(med["grype"], med["trivy"])
    print(f"alpine-app, {rounds} rounds, {os.cpu_count()} cores (wall of `sc-ci image scan`, process start included)")
    for key in ("grype", "trivy", "both"):
        print(f"  {key:<6} median {med[key]:.2f}s  {[round(x, 2) for x in results[key]]}")
    print(f"  both in parallel / slower alone: {med['both'] / slower:.2f}x")
    print(f"  nine images, both scanners, empty DB cache: {wall:.2f}s; grype DB listing fetched {loads[0]}x, "
          f"archive {loads[1]}x (one load per scanner per run)")


if __name__ == "__main__":
    main()
