"""The demo `sc-ci demo` runs: a local registry, demo images pushed the way Simple Container names them, an
air-gapped vulnerability DB mirror, a DefectDojo stand-in, and `sc-ci release create` on a demo Simple
Container project (a real git repository) with every feature on — the summary printed."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sc_ci import cli
from sc_ci.errors import ToolError
from sc_ci.runner import base_env
from sc_ci.tools import locate
from testbed.defectdojo import FakeDefectDojo
from testbed.images import PushedImage, push_image
from testbed.keys import generate_keypair
from testbed.registry import LocalRegistry
from testbed.vulndb import grype_db, trivy_db
from testbed.vulndb.serve import GrypeListingServer, push_trivy_db

VERSION = "1.0.0"
STACK, ENVIRONMENT = "shop", "production"
#: compose service → the demo image it is built as (the upstream `db` is pulled, not built)
SERVICES = {"api": "alpine-app", "worker": "service-1", "web": "multiarch"}
UPSTREAM = "debian-app"
DEMO_BUILDER = "https://github.com/simple-container-com/sc-security-action/demo"
DEMO_REPO = "https://github.com/simple-container-com/sc-security-action"


def offline_release_config(key: Path) -> str:
    """A security YAML for releases on loopback: key signing (legacy storage, no transparency log), SBOMs in
    two formats, provenance, fail-closed. Used by the fault, cancellation and memory runs."""
    return ("security:\n"
            f"  signing:\n    enabled: true\n    privateKey: {key}\n    storage: legacy\n"
            "    sigstore:\n      transparencyLog: false\n"
            "  sbom:\n    enabled: true\n    format: cyclonedx-json\n    extraFormats: [spdx-json]\n"
            "  provenance:\n    enabled: true\n    builder:\n      id: https://ci.example.com/release\n"
            "  policy:\n    failOpen: false\n")


def client_yaml(key: Path, dbs: tuple[str, str], defectdojo: str, cache: Path) -> str:
    """The demo stack: the whole `security:` block, offline (no Rekor, mirrors on loopback)."""
    grype_url, trivy_repo = dbs
    return f"""schemaVersion: 1.0
security:
  scan:
    enabled: true
    tools:
      - name: grype
        required: true
      - name: trivy
    failOn: critical           # the demo images have high findings, none critical: the gate passes
    attest: true               # the merged result as a signed vuln attestation
    db:
      cacheDir: {cache}
      grypeUpdateUrl: {grype_url}
      trivyRepository: {trivy_repo}
    upload:
      defectdojo:
        enabled: true
        url: {defectdojo}
        apiKey: ${{env:DEMO_DEFECTDOJO_KEY}}
        productTypeName: demo
        autoCreateContext: true
  signing:
    enabled: true
    privateKey: {key}
    sigstore:
      transparencyLog: false   # offline demo: no Rekor
  sbom:
    enabled: true
    format: cyclonedx-json
    extraFormats: [spdx-json]
    output:
      local: sbom/
  provenance:
    enabled: true
    builder:
      id: {DEMO_BUILDER}
  policy:
    failOpen: false
stacks:
  {ENVIRONMENT}:
    type: cloud-compose
    parent: demo/infrastructure
    config:
      dockerComposeFile: ${{git:root}}/docker-compose.yaml
      runs: [api, worker, web, db]
"""


def compose_yaml(upstream: PushedImage) -> str:
    services = "".join(f"  {name}:\n    build: ./{name}\n" for name in SERVICES)
    return f"services:\n{services}  db:\n    image: {upstream.ref}\n"


def git(repo: Path, *args: str) -> str:
    """git in a test repository: a fixed identity, any owner trusted (checkouts handed to a CI user's uid)."""
    env = {**base_env(), "GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
           "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@example.com"}
    done = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), *args], env=env, text=True,
                          capture_output=True, check=True)
    return done.stdout.strip()


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run(env: Mapping[str, str], verbose: int = 0) -> int:
    cosign = locate.find("cosign", env=env)
    if cosign is None:
        raise ToolError("the demo needs the pinned tools", fix="make tools   (or: sc-ci tools install)")
    started = time.monotonic()
    with (tempfile.TemporaryDirectory(prefix="sc-ci-demo-") as tmp, LocalRegistry() as registry,
          FakeDefectDojo(secrets.token_hex(16)) as dojo):
        work = Path(tmp)
        os.chmod(work, 0o700)
        print(f"1. registry       docker-registry on {registry.host} (temporary storage)")
        prefix = f"{registry.host}/demo"
        pushed = {svc: push_image(registry.host, base, repository=f"demo/{STACK}--{svc}", tag=VERSION)
                  for svc, base in SERVICES.items()}
        upstream = push_image(registry.host, UPSTREAM, repository="library/postgres", tag="16")
        print("2. images         as Simple Container pushes them (<registry>/<stack>--<service>:<version>):")
        for image in pushed.values():
            kind = f" (index: {', '.join(image.platforms)})" if len(image.platforms) > 1 else ""
            print(f"                    {image.ref}{kind}")
        print(f"                    {upstream.ref} (upstream: scanned, never signed)")
        grype = grype_db.build(work / "mirror" / "grype")
        trivy = trivy_db.build(work / "mirror" / "trivy")
        with GrypeListingServer(grype) as listing:
            trivy_repo = push_trivy_db(trivy, registry.host)
            print(f"3. vuln DBs       air-gapped mirrors: grype listing {listing.update_url}, trivy DB {trivy_repo}")
            keys = generate_keypair(cosign, work / "keys")
            print(f"4. keys           throwaway cosign key pair (password in COSIGN_PASSWORD only); "
                  f"DefectDojo stand-in on {dojo.url}")
            project = work / "shop"
            stack_dir = project / ".sc" / "stacks" / STACK
            stack_dir.mkdir(parents=True)
            (project / "docker-compose.yaml").write_text(compose_yaml(upstream))
            (stack_dir / "client.yaml").write_text(client_yaml(keys.private, (listing.update_url, trivy_repo),
                                                               dojo.url, work / "vulndb"))
            git(work, "init", "-q", "-b", "main", str(project))
            git(project, "add", "-A")
            git(project, "commit", "-q", "-m", "demo shop")
            sha = git(project, "rev-parse", "HEAD")
            argv = ["release", "create", "-s", STACK, "-e", ENVIRONMENT, "--version", VERSION,
                    "--registry", prefix, "--output", str(work / "out"), "--source-repo", DEMO_REPO,
                    "--git-sha", sha, "--workflow-name", "sc-ci demo"] + ["-v"] * verbose
            print(f"5. release        (in {project}, a git repository)\n"
                  f"                  sc-ci {' '.join(argv[:10])} …\n")
            demo_env = {k: v for k, v in env.items()
                        if not k.startswith(("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_", "JENKINS",
                                             "BUILDKITE", "CIRCLE"))}
            demo_env.pop("CI", None)
            demo_env.update({"COSIGN_PASSWORD": keys.password, "DEMO_DEFECTDOJO_KEY": dojo.api_key})
            with _cwd(project):
                code = cli.main(argv, demo_env)
            if code == 0:
                verify = ["release", "verify", "--manifest", str(work / "out" / "release.json"), "--key",
                          str(keys.public), "--no-tlog", "--evidence", str(work / "out" / "evidence")]
                print("\n6. verify         what a deployer runs before promoting the release (evidence for auditors)\n"
                      "                  sc-ci release verify --manifest out/release.json --key cosign.pub "
                      "--no-tlog --evidence out/evidence\n")
                with _cwd(project):
                    code = cli.main(verify + ["-v"] * verbose, demo_env)
        outputs = sorted(p.name for p in (work / "out").glob("*") if p.is_file())
        outputs += sorted(f"evidence/{p.name}" for p in (work / "out" / "evidence").glob("*"))
        sboms = sorted(p.name for p in (project / "sbom").glob("*.json"))
        tag = git(project, "tag", "-l")
        print(f"\nfiles written: {', '.join(outputs)}; {len(sboms)} SBOM files in sbom/")
        print(f"git tag: {tag or 'none'}; DefectDojo received {len(dojo.tests)} test(s) "
              f"({len(dojo.requests)} requests)")
        print(f"demo finished in {time.monotonic() - started:.1f}s with exit code {code}; "
              "the registry, keys, mirrors and files are removed now.")
    return code
