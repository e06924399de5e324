"""Benchmark: `release verify` of a nine-image release (signature + CycloneDX + SPDX + provenance + vuln
attestation per image) against a plain script making the same cosign calls one after another.

Run: PYTHONPATH=. python benchmarks/verify_nine.py [--rounds 3]. Starts its own registry on 127.0.0.1 and an
air-gapped grype DB listing; releases nine fresh images once (key-signed, no transparency log), then times
each way `--rounds` times. `release verify` runs in this process with the runner wrapped to count the tool
processes it starts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from release_nine import recording  # this folder is on sys.path when a benchmark runs as a script

from sc_ci import cli
from sc_ci.runner import base_env
from sc_ci.tools import locate
from testbed.images import push_image
from testbed.registry import LocalRegistry
from testbed.vulndb import grype_db
from testbed.vulndb.serve import GrypeListingServer

SERVICES = [f"service-{i}" for i in range(1, 10)]
SHA = "9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
TYPES = ("cyclonedx", "spdxjson", "slsaprovenance1", "vuln")


def config(root: Path, key: Path, grype_url: str) -> Path:
    path = root / "security.yaml"
    path.write_text(
        "security:\n"
        f"  scan:\n    enabled: true\n    tools: [grype]\n    attest: true\n"
        f"    db:\n      cacheDir: {root / 'vulndb'}\n      grypeUpdateUrl: {grype_url}\n"
        f"  signing:\n    enabled: true\n    privateKey: {key}\n    sigstore:\n      transparencyLog: false\n"
        "  sbom:\n    enabled: true\n    format: cyclonedx-json\n    extraFormats: [spdx-json]\n"
        "  provenance:\n    enabled: true\n    builder:\n      id: https://ci.example.com/bench\n"
        "  policy:\n    failOpen: false\n")
    return path


def in_process(argv: list[str], env: dict[str, str]) -> tuple[float, int, Counter[str], str]:
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with recording() as spans, contextlib.redirect_stdout(io.StringIO()) as out, \
                contextlib.redirect_stderr(io.StringIO()):
            started = time.monotonic()
            code = cli.main(argv, env)
            wall = time.monotonic() - started
        counts = Counter(name for _, _, name in spans)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return wall, code, counts, out.getvalue()


def plain_script(refs: list[str], pub: Path, env: dict[str, str]) -> float:
    """What a release script does to verify: one cosign call per image and artifact kind, one after another."""
    cosign = str(locate.find("cosign"))
    tenv = base_env(env)
    started = time.monotonic()
    for ref in refs:
        calls = [[cosign, "verify", "--key", str(pub), "--insecure-ignore-tlog=true", ref]]
        calls += [[cosign, "verify-attestation", "--type", kind, "--key", str(pub), "--insecure-ignore-tlog=true",
                   ref] for kind in TYPES]
        for argv in calls:
            subprocess.run(argv, env=tenv, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    cosign = locate.find("cosign")
    if cosign is None or locate.find("syft") is None or locate.find("grype") is None:
        raise SystemExit("run `make tools` first")
    with tempfile.TemporaryDirectory() as tmpdir, LocalRegistry() as registry:
        tmp = Path(tmpdir)
        password = secrets.token_hex(8)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "GITHUB_", "CI"))},
               "COSIGN_PASSWORD": password}
        subprocess.run([str(cosign), "generate-key-pair"], cwd=tmp, env={**base_env(), "COSIGN_PASSWORD": password},
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        db = grype_db.build(tmp / "mirror")
        with GrypeListingServer(db) as listing:
            cfg = config(tmp, tmp / "cosign.key", listing.update_url)
            refs = [push_image(registry.host, s, repository=f"bench/{s}", tag="1.0").by_digest for s in SERVICES]
            out = tmp / "out"
            wall, code, _, text = in_process(
                ["release", "create", "--config", str(cfg), *[a for r in refs for a in ("-i", r)], "--no-tag",
                 "--output", str(out), "--source-repo", "https://github.com/acme/shop", "--git-sha", SHA,
                 "--workflow-name", "bench", "--workers", "9"], env)
            if code != 0:
                raise SystemExit(f"release failed ({code}):\n{text}")
            verify = ["release", "verify", "--manifest", str(out / "release.json"), "--key", str(tmp / "cosign.pub"),
                      "--no-tlog", "--workers", "9"]
            _, code, processes, text = in_process(verify, env)  # the tool processes it starts
            if code != 0:
                raise SystemExit(f"release verify failed ({code}):\n{text}")
            engine, inside, plain = [], [], []
            for _ in range(rounds):  # timed as a CI step runs it: a fresh Python process, start-up included
                inside.append(in_process(verify, env)[0])
                started = time.monotonic()
                where = os.environ.get("BENCH_PROFILE")  # a file: profile the command there (cProfile)
                profile = ["-m", "cProfile", "-o", where] if where else []
                subprocess.run([sys.executable, *profile, "-m", "sc_ci", *verify], env=env, check=True,
                               capture_output=True)
                engine.append(time.monotonic() - started)
                plain.append(plain_script(refs, tmp / "cosign.pub", env))
    med = statistics.median
    per_image = {tool: round(n / len(refs), 2) for tool, n in processes.items()}
    print(f"9 images (signature + CycloneDX + SPDX + provenance + vuln each), key-signed, {rounds} rounds, "
          f"{os.cpu_count()} cores; release created in {wall:.1f}s")
    print(f"  release verify (own process):           median {med(engine):.2f}s  {[round(x, 2) for x in engine]}")
    print(f"  release verify (in this process):       median {med(inside):.2f}s  {[round(x, 2) for x in inside]}"
          f" = {med(inside) / med(plain):.2f}x the script (no Python start-up, modules already imported)")
    print(f"  plain script, 5 cosign calls per image: median {med(plain):.2f}s  {[round(x, 2) for x in plain]}")
    print(f"  ratio release verify / script:          {med(engine) / med(plain):.2f}x")
    print(f"  tool processes of release verify: {sum(processes.values())} ({dict(processes)}); "
          f"per image {per_image}; the script: {len(TYPES) + 1} cosign per image")


if __name__ == "__main__":
    sys.exit(main())
