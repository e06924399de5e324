"""Benchmark: the full release of nine images (sign, verify, SBOM in two formats attached, provenance attached)
with `release create`, against a plain script making the same tool calls one after another; the engine's own
overhead; the same digests released again; and `sc-ci --help`.

Run: PYTHONPATH=. python benchmarks/release_nine.py [--rounds 3]. Starts its own registry on 127.0.0.1; each
round pushes fresh images (new digests), so no cold run benefits from an earlier one.

Engine overhead = wall time during which no tool process was running (planning, Python between tools,
reporting): the run happens in this process with the runner wrapped to record every tool's interval.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sc_ci import cli, runner
from sc_ci.runner import base_env
from sc_ci.tools import locate
from testbed.images import push_image
from testbed.oci import RegistryClient
from testbed.registry import LocalRegistry

SERVICES = [f"service-{i}" for i in range(1, 10)]
SHA = "9f2c4a1e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
PROVENANCE_FACTS = ["--source-repo", "https://github.com/acme/shop", "--git-sha", SHA, "--workflow-name", "bench"]


def config(root: Path, key: Path) -> Path:
    path = root / "security.yaml"
    path.write_text(
        "security:\n"
        f"  signing:\n    enabled: true\n    privateKey: {key}\n    sigstore:\n      transparencyLog: false\n"
        "  sbom:\n    enabled: true\n    format: cyclonedx-json\n    extraFormats: [spdx-json]\n"
        "  provenance:\n    enabled: true\n    builder:\n      id: https://ci.example.com/bench\n"
        "  policy:\n    failOpen: false\n")
    return path


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[float, float, str]]]:
    """Every tool run's (start, end, name), from any thread."""
    spans: list[tuple[float, float, str]] = []
    lock = threading.Lock()
    real = runner.run

    def wrapped(argv: Any, **kwargs: Any) -> runner.Completed:
        started = time.monotonic()
        try:
            return real(argv, **kwargs)
        finally:
            with lock:
                spans.append((started, time.monotonic(), Path(str(argv[0])).name))

    runner.run = wrapped  # type: ignore[assignment]
    try:
        yield spans
    finally:
        runner.run = real  # type: ignore[assignment]


def union(spans: list[tuple[float, float, str]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop, _ in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def engine_run(refs: list[str], cfg: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(wall, time no tool was running, tool calls) of one in-process release."""
    argv = ["release", "create", "--config", str(cfg), *[a for r in refs for a in ("-i", r)], "--no-tag",
            "--cache-dir", str(cfg.parent / "cache"),
            *PROVENANCE_FACTS, "--workers", "9"]
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with recording() as spans, contextlib.redirect_stdout(io.StringIO()) as out, \
                contextlib.redirect_stderr(io.StringIO()) as err:
            started = time.monotonic()
            code = cli.main(argv, env)
            wall = time.monotonic() - started
    finally:
        os.environ.clear()
        os.environ.update(old)
    if code != 0:
        raise SystemExit(f"release failed ({code}):\n{out.getvalue()}\n{err.getvalue()}")
    return wall, wall - union(spans), len(spans)


def plain_script(refs: list[str], key: Path, env: dict[str, str], tmp: Path) -> float:
    """The same work as a shell script would do it: each tool call after the other."""
    cosign, syft = str(locate.find("cosign")), str(locate.find("syft"))
    tenv = {**base_env(env), "COSIGN_PASSWORD": env["COSIGN_PASSWORD"], "SYFT_REGISTRY_INSECURE_USE_HTTP": "true",
            "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    predicate = tmp / "provenance.json"
    predicate.write_text(json.dumps({"buildDefinition": {"buildType": "https://example.com/bench",
                                                         "externalParameters": {}},
                                     "runDetails": {"builder": {"id": "https://ci.example.com/bench"}}}))
    pub = key.with_suffix(".pub")
    started = time.monotonic()
    for ref in refs:
        digest_ref = ref
        calls = [
            [cosign, "sign", "--yes", "--key", str(key), "--tlog-upload=false", "--new-bundle-format=false",
             "--use-signing-config=false", digest_ref],
            [cosign, "verify", "--key", str(pub), "--insecure-ignore-tlog=true", digest_ref],
            [syft, "scan", f"registry:{digest_ref}", "--quiet", "-o", f"cyclonedx-json@1.6={tmp}/a.cdx.json",
             "-o", f"spdx-json={tmp}/a.spdx.json"],
        ]
        for path, kind in ((f"{tmp}/a.cdx.json", "cyclonedx"), (f"{tmp}/a.spdx.json", "spdxjson"),
                           (str(predicate), "slsaprovenance1")):
            calls.append([cosign, "attest", "--yes", "--key", str(key), "--predicate", path, "--type", kind,
                          "--tlog-upload=false", "--new-bundle-format=false", "--use-signing-config=false",
                          digest_ref])
        calls.append([cosign, "verify-attestation", "--type", "slsaprovenance1", "--key", str(pub),
                      "--insecure-ignore-tlog=true", digest_ref])
        for argv in calls:
            subprocess.run(argv, env=tenv, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - started


def artifacts(registry: LocalRegistry, refs: list[str]) -> int:
    """Signature and attestation layers stored for these digests (.sig/.att tags)."""
    count = 0
    with RegistryClient(registry.host) as client:
        for ref in refs:
            repo = ref.split("/", 1)[1].split("@")[0]
            digest = ref.split("@")[1].replace(":", "-")
            for kind in ("sig", "att"):
                resp = client.request("GET", f"/v2/{repo}/manifests/{digest}.{kind}",
                                      headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
                count += len(resp.json()["layers"]) if resp.status_code == 200 else 0
    return count


def help_time() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "sc_ci", "--help"], capture_output=True, check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    cosign = locate.find("cosign")
    if cosign is None or locate.find("syft") is None:
        raise SystemExit("run `make tools` first")
    cold, overhead, plain, warm, calls, new_artifacts = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmpdir, LocalRegistry() as registry:
        tmp = Path(tmpdir)
        password = secrets.token_hex(8)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "GITHUB_", "CI"))},
               "COSIGN_PASSWORD": password}
        subprocess.run([str(cosign), "generate-key-pair"], cwd=tmp, env={**base_env(), "COSIGN_PASSWORD": password},
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        cfg = config(tmp, tmp / "cosign.key")
        for n in range(rounds):
            def fresh(mode: str, n: int = n) -> list[str]:
                return [push_image(registry.host, s, repository=f"r{n}-{mode}/{s}", tag="1.0",
                                   extra_files={"etc/round": f"{n}-{mode}\n"}).by_digest for s in SERVICES]
            refs = fresh("engine")
            wall, idle, count = engine_run(refs, cfg, env)
            cold.append(wall)
            overhead.append(idle)
            calls.append(count)
            before = artifacts(registry, refs)
            again, _, _ = engine_run(refs, cfg, env)
            warm.append(again)
            new_artifacts.append(artifacts(registry, refs) - before)
            plain.append(plain_script(fresh("plain"), tmp / "cosign.key", env, tmp))
        helps = [help_time() for _ in range(3)]
    med = statistics.median
    print(f"9 images: sign + verify + SBOM (CycloneDX + SPDX attached) + provenance; {rounds} rounds, "
          f"{os.cpu_count()} cores")
    print(f"  release create (cold):        median {med(cold):.2f}s  {[round(x, 2) for x in cold]}"
          f"  ({med(calls):.0f} tool calls)")
    print(f"  plain script, one call after another: median {med(plain):.2f}s  {[round(x, 2) for x in plain]}")
    print(f"  ratio engine / script:        {med(cold) / med(plain):.2f}x")
    print(f"  engine overhead (no tool running): median {med(overhead):.2f}s = "
          f"{100 * med(overhead) / med(cold):.1f}% of the wall time")
    print(f"  same digests again (warm):    median {med(warm):.2f}s = {100 * med(warm) / med(cold):.1f}% of cold; "
          f"new signatures/attestations: {new_artifacts}")
    print(f"  sc-ci --help:                 median {1000 * med(helps):.0f} ms  {[round(1000 * h) for h in helps]}")


if __name__ == "__main__":
    main()
