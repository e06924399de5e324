"""The demo the `sc-ci demo` command runs: a local registry, demo images, and the release on them."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from sc_ci import cli
from sc_ci.errors import ToolError
from sc_ci.tools import locate
from testbed.images import push_demo_images
from testbed.keys import generate_keypair
from testbed.registry import LocalRegistry

DEMO_IMAGES = ("alpine-app", "debian-app", "multiarch", "service-1", "service-2", "service-3")


DEMO_BUILDER = "https://github.com/simple-container-com/sc-security-action/demo"
DEMO_REPO = "https://github.com/simple-container-com/sc-security-action"


def demo_config(key: Path, sbom_dir: Path) -> str:
    """The release the demo runs: every feature this version has, offline (no transparency log)."""
    return (
        "security:\n"
        "  signing:\n"
        "    enabled: true\n"
        f"    privateKey: {key}\n"
        "    verify:\n"
        "      enabled: true\n"
        "    sigstore:\n"
        "      transparencyLog: false   # offline demo: no Rekor\n"
        "  sbom:\n"
        "    enabled: true\n"
        "    format: cyclonedx-json\n"
        "    extraFormats: [spdx-json]\n"
        "    output:\n"
        f"      local: {sbom_dir}/\n"
        "  provenance:\n"
        "    enabled: true\n"
        "    builder:\n"
        f"      id: {DEMO_BUILDER}\n"
        "  policy:\n"
        "    failOpen: false\n"
    )


def source_commit() -> str:
    """The commit the demo attests as its source: this checkout's HEAD, or a fixed marker outside git."""
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent)
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and len(sha) == 40 else "0" * 40


def run(env: Mapping[str, str], verbose: int = 0) -> int:
    cosign = locate.find("cosign", env=env)
    if cosign is None:
        raise ToolError("the demo needs the pinned tools", fix="make tools   (or: sc-ci tools install)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sc-ci-demo-") as tmp, LocalRegistry() as registry:
        work = Path(tmp)
        os.chmod(work, 0o700)
        print(f"1. registry       docker-registry on {registry.host} (temporary storage)")
        pushed = push_demo_images(registry.host, names=DEMO_IMAGES)
        print(f"2. images         pushed {len(pushed)} demo images:")
        for image in pushed.values():
            kind = f" (index: {', '.join(image.platforms)})" if len(image.platforms) > 1 else ""
            print(f"                    {image.ref}{kind}")
        keys = generate_keypair(cosign, work)
        password = keys.password
        print(f"3. keys           throwaway cosign key pair in {work} (password in COSIGN_PASSWORD only)")
        config = work / "security.yaml"
        config.write_text(demo_config(work / "cosign.key", work / "sbom"))
        sha = source_commit()
        print(f"4. release        sc-ci action --config {config.name}: by digest, sign → SBOM → provenance, "
              "each verified")
        print(f"                  provenance source: {DEMO_REPO}@{sha[:12]} (outside CI the facts are given "
              "explicitly)\n")
        demo_env = {k: v for k, v in env.items()
                    if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_", "JENKINS", "BUILDKITE",
                                         "CIRCLE"))}
        demo_env.pop("CI", None)
        demo_env.update({"COSIGN_PASSWORD": password,
                         "SC_CI_IMAGES": "\n".join(i.ref for i in pushed.values()),
                         "SC_CI_SOURCE_REPO": DEMO_REPO, "SC_CI_GIT_SHA": sha,
                         "SC_CI_WORKFLOW_NAME": "sc-ci demo"})
        argv = ["action", "--config", str(config)] + ["-v"] * verbose
        code = cli.main(argv, demo_env)
        sboms = sorted(p.name for p in (work / "sbom").glob("*.json"))
        print(f"\nSBOM files written ({len(sboms)}): " + ", ".join(sboms[:4]) + (" …" if len(sboms) > 4 else ""))
        print(f"demo finished in {time.monotonic() - started:.1f}s with exit code {code}; "
              "the registry, keys and SBOM files are removed now.")
    return code
