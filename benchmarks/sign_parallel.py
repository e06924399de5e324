"""Benchmark: sign + verify 9 images with `stack sign` (parallel) versus one `image sign` per image.

Run: python benchmarks/sign_parallel.py [--rounds 3]. Starts its own registry on 127.0.0.1; prints wall
times. Each round pushes fresh images (new digests), so no run benefits from an earlier signature.
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
from sc_ci.tools import locate
from testbed.images import push_image
from testbed.registry import LocalRegistry

SERVICES = [f"service-{i}" for i in range(1, 10)]


def project(root: Path, key: Path) -> None:
    stack = root / ".sc" / "stacks" / "bench"
    stack.mkdir(parents=True)
    (stack / "client.yaml").write_text(
        "schemaVersion: 1.0\nsecurity:\n  signing:\n    enabled: true\n"
        f"    privateKey: {key}\n    sigstore:\n      transparencyLog: false\n"
        "stacks:\n  prod:\n    type: cloud-compose\n    config:\n"
        "      dockerComposeFile: ${git:root}/docker-compose.yaml\n"
        f"      runs: [{', '.join(SERVICES)}]\n")
    (root / "docker-compose.yaml").write_text(
        "services:\n" + "".join(f"  {s}:\n    build: ./{s}\n" for s in SERVICES))


def sc_ci(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "sc_ci", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"sc-ci {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    cosign = locate.find("cosign")
    if cosign is None:
        raise SystemExit("run `make tools` first")
    parallel, serial = [], []
    with tempfile.TemporaryDirectory() as tmp, LocalRegistry() as registry:
        root = Path(tmp)
        password = secrets.token_hex(8)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SC_CI_")}, "COSIGN_PASSWORD": password}
        subprocess.run([str(cosign), "generate-key-pair"], cwd=root, env={**base_env(), "COSIGN_PASSWORD": password},
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        project(root, root / "cosign.key")
        for n in range(rounds):
            for mode, times in (("parallel", parallel), ("serial", serial)):
                prefix = f"r{n}-{mode}"
                refs = [push_image(registry.host, s, repository=f"{prefix}/bench--{s}", tag="1.0",
                                   extra_files={"etc/round": f"{prefix}\n"}).ref for s in SERVICES]
                if mode == "parallel":
                    times.append(sc_ci(["stack", "sign", "-s", "bench", "-e", "prod", "--workers", "9",
                                        "--registry", f"{registry.host}/{prefix}", "--version", "1.0"], root, env))
                else:
                    times.append(sum(sc_ci(["image", "sign", "-i", ref, "--key", str(root / "cosign.key"),
                                            "--no-tlog"], root, env) for ref in refs))
    print(f"9 images, sign + verify, {rounds} rounds, {os.cpu_count()} cores")
    print(f"  stack sign (9 workers, one process):  median {statistics.median(parallel):.2f}s  {parallel}")
    print(f"  image sign one at a time (9 runs):     median {statistics.median(serial):.2f}s  {serial}")


if __name__ == "__main__":
    main()
