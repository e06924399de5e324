"""Planted secrets never come out: a full release (GitHub Actions surfaces) on an htpasswd registry with a
password-protected cosign key, a DefectDojo API key and an OIDC-token-like JWT in the environment, and a
keyless GitLab run handed that JWT as SIGSTORE_ID_TOKEN (it fails: no Fulcio). Every planted value, and its
base64 forms, is searched for in stdout, stderr, GITHUB_OUTPUT, the step summary, the GitLab dotenv, every
file under the output and work directories and TMPDIR (reports, SBOMs, release.json), and the attestations
pushed to the registry (provenance statements, SBOMs). Target: 0 hits in every location."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sc_ci.runner import base_env
from testbed.defectdojo import FakeDefectDojo
from testbed.images import push_image
from testbed.keys import KeyPair, generate_keypair
from testbed.registry import LocalRegistry

if TYPE_CHECKING:
    from testbed.vulndb.serve import ServedDbs

pytest_plugins = ["testbed.vulndb.fixtures"]
REPORT = Path(os.environ.get("SC_CI_LEAK_REPORT", "")) if os.environ.get("SC_CI_LEAK_REPORT") else None


def b64(data: bytes) -> set[bytes]:
    """The base64 forms a value may take on the way out: standard, URL-safe, unpadded; at every 3-byte
    offset (base64 of a longer string holding the value, e.g. a Docker `auth` of user:password)."""
    forms: set[bytes] = set()
    for offset in range(3):
        prefix = b"\0" * offset
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(prefix + data)
            start = (offset * 4 + 2) // 3 + (1 if offset else 0)  # skip characters mixed with the prefix
            inner = text[start:].rstrip(b"=")[:-2]  # and the last ones, mixed with what follows
            if len(inner) >= 12:
                forms.add(inner)
    return forms


def jwt_like() -> str:
    def part(obj: Mapping[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"iss": "https://token.actions.githubusercontent.com", "aud": "sigstore", "sub": "repo:acme/shop",
              "email": "leak@example.com", "nonce": secrets.token_hex(16)}
    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.{secrets.token_urlsafe(64)}"


class Planted:
    """Every secret of the run, with the byte patterns each may be found as."""

    def __init__(self, keys: KeyPair, registry_password: str, dojo_key: str, token: str) -> None:
        pem = keys.private.read_text()
        body = max((line for line in pem.splitlines() if "-----" not in line), key=len)
        self.values = {
            "key PEM": body,
            "key password": keys.password,
            "registry password": registry_password,
            "DefectDojo key": dojo_key,
            "OIDC token": token,
            "OIDC token signature": token.rsplit(".", 1)[1],
        }

    def patterns(self) -> Iterator[tuple[str, bytes]]:
        for name, value in self.values.items():
            raw = value.encode()
            yield name, raw
            for form in b64(raw):
                yield f"{name} (base64)", form

    def hits(self, data: bytes) -> Counter[str]:
        found: Counter[str] = Counter()
        for name, pattern in self.patterns():
            count = data.count(pattern)
            if count:
                found[name] += count
        return found


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.exists():
            yield from (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def sc_ci(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    drop = ("SC_CI_", "INPUT_", "GITHUB_", "GITLAB_", "CI_", "ACTIONS_", "SIGSTORE_", "BUILDKITE", "CIRCLE")
    full = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    full.pop("CI", None)
    full.pop("COSIGN_PASSWORD", None)
    full.update(env)
    return subprocess.run([sys.executable, "-m", "sc_ci", *args], cwd=cwd, env=full, text=True,
                          capture_output=True, timeout=170, check=False)


@pytest.fixture
def dojo() -> Iterator[FakeDefectDojo]:
    with FakeDefectDojo("dojo-" + secrets.token_hex(20)) as fake:
        yield fake


def test_planted_secrets_appear_nowhere(auth_registry: LocalRegistry, cosign: Path, vulndbs: ServedDbs,
                                        dojo: FakeDefectDojo, tmp_path: Path) -> None:
    keys = generate_keypair(cosign, tmp_path / "keys", password="kp-" + secrets.token_urlsafe(18))
    user, password = auth_registry.auth or ("", "")
    token = jwt_like()
    planted = Planted(keys, password, dojo.api_key, token)
    image = push_image(auth_registry.host, "alpine-app", repository=f"leaks-{secrets.token_hex(4)}/api",
                       tag="1.0.0", auth=auth_registry.auth)
    workspace, tmp, out = tmp_path / "workspace", tmp_path / "tmp", tmp_path / "out"
    for d in (workspace, tmp, out):
        d.mkdir()
    config = workspace / "security.yaml"
    config.write_text(
        "security:\n"
        "  scan:\n    enabled: true\n    tools: [grype]\n"
        f"    db:\n      cacheDir: {tmp_path / 'vulndb'}\n      grypeUpdateUrl: {vulndbs.grype_update_url}\n"
        f"    upload:\n      defectdojo:\n        enabled: true\n        url: {dojo.url}\n"
        "        apiKey: ${env:LEAK_DOJO_KEY}\n        productTypeName: leaks\n        autoCreateContext: true\n"
        "        failOnError: true\n"
        f"  signing:\n    enabled: true\n    privateKey: {keys.private}\n    storage: legacy\n"
        "    sigstore:\n      transparencyLog: false\n"
        "  sbom:\n    enabled: true\n    format: cyclonedx-json\n    extraFormats: [spdx-json]\n"
        f"    output:\n      local: {out / 'sbom'}\n"
        "  provenance:\n    enabled: true\n    builder:\n      id: https://ci.example.com/release\n"
        "    metadata:\n      includeEnv: true\n"
        "  policy:\n    failOpen: false\n")
    registry_env = {"SC_CI_REGISTRY_HOST": auth_registry.host, "SC_CI_REGISTRY_USERNAME": user,
                    "SC_CI_REGISTRY_PASSWORD": password, "TMPDIR": str(tmp), "NO_PROXY": "127.0.0.1,localhost"}
    github = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/shop",
              "GITHUB_SHA": "a" * 40, "GITHUB_REF": "refs/heads/main", "GITHUB_WORKFLOW": "release",
              "GITHUB_WORKFLOW_REF": "acme/shop/.github/workflows/release.yml@refs/heads/main",
              "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_EVENT_NAME": "push",
              "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(workspace / "output.txt"),
              "GITHUB_STEP_SUMMARY": str(workspace / "summary.md"), "RUNNER_TEMP": str(tmp)}
    full = sc_ci("release", "create", "--config", str(config), "--image", image.ref, "--version", "1.0.0",
                 "--no-tag", "--output", str(out), cwd=workspace,
                 env={**registry_env, **github, "COSIGN_PASSWORD": keys.password, "LEAK_DOJO_KEY": dojo.api_key,
                      "SIGSTORE_ID_TOKEN": token, "SECRET_LOOKALIKE": password})
    assert full.returncode == 0, full.stdout[-4000:] + full.stderr[-4000:]
    assert len(dojo.tests) >= 1  # the key really was used

    # keyless on GitLab with the JWT as the job's id token: Fulcio is not there, the run fails
    gitlab_dir = tmp_path / "gitlab"
    gitlab_dir.mkdir()
    keyless = gitlab_dir / "keyless.yaml"
    keyless.write_text("security:\n  signing:\n    enabled: true\n    keyless: true\n    sigstore:\n"
                       "      fulcioUrl: http://127.0.0.1:9\n      transparencyLog: false\n"
                       "  policy:\n    failOpen: false\n")
    gitlab = {"GITLAB_CI": "true", "CI": "true", "CI_PROJECT_DIR": str(gitlab_dir), "CI_SERVER_URL": "https://gitlab.com",
              "CI_PROJECT_PATH": "acme/shop", "CI_PROJECT_URL": "https://gitlab.com/acme/shop",
              "CI_COMMIT_SHA": "b" * 40, "CI_COMMIT_REF_NAME": "main", "CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/7",
              "CI_PIPELINE_ID": "7", "CI_JOB_ID": "7", "SIGSTORE_ID_TOKEN": token, "SC_CI_RETRY_BUDGET": "2"}
    failing = sc_ci("image", "sign", "--config", str(keyless), "--image", image.ref, cwd=gitlab_dir,
                    env={**registry_env, **gitlab})
    assert failing.returncode != 0, failing.stdout + failing.stderr

    # the registry side: every attestation pushed (provenance statements, SBOMs)
    docker = tmp_path / "docker"
    auth_registry.write_docker_config(docker)
    pulled = subprocess.run([str(cosign), "download", "attestation", image.by_digest], capture_output=True,
                            env={**base_env(), "DOCKER_CONFIG": str(docker)}, check=False, timeout=60)
    assert pulled.returncode == 0, pulled.stderr
    statements = b"\n".join(base64.b64decode(json.loads(line)["payload"]) for line in pulled.stdout.splitlines())

    locations: dict[str, bytes] = {
        "stdout (release)": full.stdout.encode(), "stderr (release)": full.stderr.encode(),
        "stdout (keyless, GitLab)": failing.stdout.encode(), "stderr (keyless, GitLab)": failing.stderr.encode(),
        "registry attestations (envelopes)": pulled.stdout, "registry attestations (statements)": statements,
    }
    for label, root in (("workspace", workspace), ("output dir", out), ("TMPDIR", tmp), ("GitLab dir", gitlab_dir)):
        for path in files_under(root):
            locations[f"{label}: {path.relative_to(root)}"] = path.read_bytes()
    assert (workspace / "output.txt").is_file()
    assert (workspace / "summary.md").is_file()
    assert (gitlab_dir / "sc-ci.env").is_file(), sorted(p.name for p in gitlab_dir.iterdir())
    assert (out / "release.json").is_file()

    # the detector finds what it looks for: the key file, a Docker `auth` (base64 of user:password), the token
    controls = {"key PEM": keys.private.read_bytes(),
                "registry password (base64)": base64.b64encode(f"{user}:{password}".encode()),
                "OIDC token": f"Authorization: Bearer {token}".encode(),
                "DefectDojo key (base64)": base64.b64encode(b"Token " + dojo.api_key.encode())}
    for name, data in controls.items():
        assert planted.hits(data)[name] >= 1, name
    assert "Fulcio" in failing.stderr or "fulcio" in failing.stderr.lower(), failing.stderr[-2000:]

    hits = {where: planted.hits(data) for where, data in locations.items()}
    table = "\n".join(f"  {sum(h.values()):3d}  {where}" + (f"  {dict(h)}" if h else "")
                      for where, h in sorted(hits.items()))
    print(f"planted-secret hits per location ({len(locations)} locations, {len(planted.values)} secrets):\n{table}")
    if REPORT is not None:
        REPORT.write_text(json.dumps({w: dict(h) for w, h in hits.items()}, indent=1))
    assert all(not h for h in hits.values()), table
