"""Peak memory of one `sc-ci release create` over fifty images (sign, SBOM in two formats attached,
provenance, verify): the sc-ci process's VmHWM polled from /proc, and the largest tool it ran.

    .venv/bin/python benchmarks/memory_fifty.py [--images 50] [--json out.json]

Starts its own registry on 127.0.0.1, pushes the images (small, each with a unique layer), generates a
throwaway key, and prints one JSON object: images, seconds, exit code, peak RSS of the sc-ci process (MiB),
peak RSS of the largest child tool (MiB, from getrusage), samples taken."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sc_ci.tools.locate import find  # noqa: E402
from testbed.demo import offline_release_config  # noqa: E402
from testbed.images import push_image  # noqa: E402
from testbed.keys import generate_keypair  # noqa: E402
from testbed.registry import LocalRegistry  # noqa: E402

BASES = ("alpine-app", "service-1", "service-2")


def vm_hwm_kib(pid: int) -> int | None:
    """The process's peak resident set (VmHWM), KiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    cosign = find("cosign")
    if cosign is None:
        print("cosign is not installed: make tools", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp_name, LocalRegistry() as registry:
        tmp = Path(tmp_name)
        keys = generate_keypair(cosign, tmp / "keys")
        run = uuid.uuid4().hex[:8]

        def push(i: int) -> str:
            image = push_image(registry.host, BASES[i % len(BASES)], repository=f"mem-{run}/svc-{i}", tag="1.0.0",
                               extra_files={"etc/sc-ci-fresh-id": f"{run}-{i}\n"})
            return image.ref

        with ThreadPoolExecutor(8) as pool:
            refs = list(pool.map(push, range(args.images)))
        (tmp / "security.yaml").write_text(offline_release_config(keys.private))
        work_tmp = tmp / "tmp"
        work_tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SC_CI_", "GITHUB_", "GITLAB_", "CI"))}
        env.update({"COSIGN_PASSWORD": keys.password, "TMPDIR": str(work_tmp), "NO_PROXY": "127.0.0.1,localhost"})
        argv = [sys.executable, "-m", "sc_ci", "release", "create", "--config", str(tmp / "security.yaml"),
                *(a for ref in refs for a in ("--image", ref)), "--version", "1.0.0", "--no-tag",
                "--output", str(tmp / "out"), "--source-repo", "https://github.com/acme/shop",
                "--git-sha", "0" * 40, "--workflow-name", "release", "-q"]
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = {"kib": 0, "samples": 0}

        def poll() -> None:
            while proc.poll() is None:
                value = vm_hwm_kib(proc.pid)
                if value is not None:
                    peak["kib"] = max(peak["kib"], value)
                    peak["samples"] += 1
                time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        out, err = proc.communicate()
        poller.join()
        seconds = time.monotonic() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux: the largest
        result = {
            "images": args.images,
            "exit_code": proc.returncode,
            "seconds": round(seconds, 1),
            "sc_ci_peak_rss_mib": round(peak["kib"] / 1024, 1),
            "largest_process_peak_rss_mib": round(children / 1024, 1),
            "samples": peak["samples"],
            "cores": os.cpu_count(),
        }
        print(json.dumps(result))
        if proc.returncode != 0:
            print(out[-3000:], err[-3000:], file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
        return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
