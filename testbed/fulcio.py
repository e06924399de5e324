"""A throwaway Fulcio (ephemeral CA, no CT log) on 127.0.0.1, and the trust files cosign needs to use it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import requests

from sc_ci import processes, runner
from sc_ci.errors import ScError
from testbed.registry import free_port

_DIR_PREFIX = "sc-ci-fulcio-"
_LIVE = processes.Tracker()
IssuerType = Literal["email", "github-workflow", "gitlab-pipeline"]
VALID_FROM = "2024-01-01T00:00:00Z"  # start-time of the Fulcio service in signing configs / trusted roots


class FulcioStartError(ScError):
    """The local Fulcio could not be started, or its trust material could not be made."""


@dataclass(frozen=True)
class Issuer:
    """An OIDC issuer Fulcio trusts. `server` fills `{{ .url }}` in the CI identity templates."""

    url: str
    kind: IssuerType = "email"
    server: str = "https://github.com"


@dataclass(frozen=True)
class Trust:
    """What cosign needs to sign with and verify against this Fulcio."""

    fulcio_url: str
    root_pem: Path  # the ephemeral CA's root certificate (PEM)
    trusted_root: Path  # `cosign trusted-root create` output (Fulcio only: no Rekor, CT log or TSA)
    signing_config: Path  # `cosign signing-config create` output (Fulcio only)


# Fulcio's own templates (config/identity/config.yaml, ci-issuer-metadata), narrowed to the identity.
_CI_METADATA: dict[str, dict[str, Any]] = {
    "github-workflow": {
        "ExtensionTemplates": {"BuildSignerURI": "{{ .url }}/{{ .job_workflow_ref }}",
                               "SourceRepositoryURI": "{{ .url }}/{{ .repository }}",
                               "SourceRepositoryDigest": "sha", "SourceRepositoryRef": "ref",
                               "BuildConfigURI": "{{ .url }}/{{ .workflow_ref }}",
                               "GithubWorkflowRef": "ref", "GithubWorkflowSHA": "sha",
                               # as Fulcio's own config/identity/config.yaml for GitHub Actions
                               "RunnerEnvironment": "runner_environment", "BuildTrigger": "event_name",
                               "SourceRepositoryOwnerURI": "{{ .url }}/{{ .repository_owner }}",
                               "RunInvocationURI": "{{ .url }}/{{ .repository }}/actions/runs/{{ .run_id }}"
                                                   "/attempts/{{ .run_attempt }}"},
        "SubjectAlternativeNameTemplate": "{{ .url }}/{{ .job_workflow_ref }}",
    },
    "gitlab-pipeline": {
        "ExtensionTemplates": {"BuildSignerURI": "https://{{ .ci_config_ref_uri }}",
                               "SourceRepositoryURI": "{{ .url }}/{{ .project_path }}",
                               "SourceRepositoryDigest": "sha",
                               "BuildConfigURI": "https://{{ .ci_config_ref_uri }}"},
        "SubjectAlternativeNameTemplate": "https://{{ .ci_config_ref_uri }}",
    },
}


def fulcio_config(issuers: list[Issuer]) -> dict[str, Any]:
    """Fulcio's JSON config: every issuer with client id `sigstore`; CI issuers map claims to identities."""
    oidc: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for issuer in issuers:
        entry: dict[str, Any] = {"IssuerURL": issuer.url, "ClientID": "sigstore"}
        if issuer.kind == "email":
            entry["Type"] = "email"
        else:
            # one ci-provider name per issuer, so each can carry its own server URL default
            provider = f"{issuer.kind}-{len(metadata)}"
            entry.update({"Type": "ci-provider", "CIProvider": provider})
            metadata[provider] = {**_CI_METADATA[issuer.kind], "DefaultTemplateValues": {"url": issuer.server}}
        oidc[issuer.url] = entry
    config: dict[str, Any] = {"OIDCIssuers": oidc}
    if metadata:
        config["CIIssuerMetadata"] = metadata
    return config


def find_binary(env: Mapping[str, str] | None = None) -> Path | None:
    """The pinned fulcio (SC_CI_FULCIO_PATH, then the tools cache, then PATH)."""
    from sc_ci.tools import locate

    return locate.find("fulcio", env=env)


class LocalFulcio:
    """`fulcio serve --ca=ephemeralca --ct-log-url=` on free 127.0.0.1 ports; a new root on every start.

    Use as a context manager. `.url` is the HTTP API; `.root_pem` the CA certificate fetched from
    `/api/v1/rootCert` after start; `trust(cosign, dir)` writes the trusted root and signing config.
    The process runs in its own process group, dies with its parent thread (setpriv), and is stopped
    at exit.
    """

    def __init__(self, issuers: list[Issuer], *, binary: str | Path | None = None,
                 startup_timeout: float = 30.0) -> None:
        self.issuers = list(issuers)
        self._binary = Path(binary) if binary else None
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._port: int | None = None
        self.root_pem: str = ""

    def __enter__(self) -> LocalFulcio:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> LocalFulcio:
        if self._proc is not None:
            return self
        binary = self._binary or find_binary()
        if binary is None or not os.access(binary, os.X_OK):
            raise FulcioStartError("fulcio binary not found",
                                   why="looked for SC_CI_FULCIO_PATH, the tools cache and PATH",
                                   fix="python -m sc_ci.tools.installer --with-optional (builds the pinned "
                                       "fulcio from the Go module proxy)")
        self._tmp = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
        (self._tmp / "config.json").write_text(json.dumps(fulcio_config(self.issuers), indent=2))
        try:
            last = ""
            for _attempt in range(3):
                port = free_port()
                self._launch(binary, port)
                status = self._wait_ready(port)
                if status == "ready":
                    self._port = port
                    return self
                last = self.log_tail()
                self._terminate()
                if status != "port-taken":
                    break
            raise FulcioStartError("the local Fulcio did not start", why=last or "no output from fulcio",
                                   fix=f"Run {binary} serve --ca=ephemeralca --ct-log-url= by hand to see why.")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._terminate()
        _LIVE.discard(self)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._port = None

    def _launch(self, binary: Path, port: int) -> None:
        assert self._tmp is not None
        argv = [str(binary), "serve", "--ca=ephemeralca", "--ct-log-url=",
                f"--config-path={self._tmp / 'config.json'}", "--host=127.0.0.1", f"--port={port}",
                "--grpc-host=127.0.0.1", f"--grpc-port={free_port()}", f"--metrics-port={free_port()}",
                f"--legacy-unix-domain-socket=@fulcio-{uuid.uuid4()}", "--log_type=prod"]
        argv = processes.die_with_parent(argv)
        env = runner.base_env()
        env["HOME"] = str(self._tmp)
        with open(self._tmp / "fulcio.log", "wb") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          env=env, cwd=self._tmp, start_new_session=True)
        _LIVE.add(self)

    def _wait_ready(self, port: int) -> processes.Readiness:
        assert self._proc is not None
        with requests.Session() as probe:
            probe.trust_env = False

            def ready() -> bool:
                try:
                    resp = probe.get(f"http://127.0.0.1:{port}/api/v1/rootCert", timeout=1.0)
                except requests.RequestException:
                    return False
                if resp.status_code == 200 and "BEGIN CERTIFICATE" in resp.text:
                    self.root_pem = resp.text
                    return True
                return False

            return processes.wait_ready(self._proc, ready, self._startup_timeout, self.log_tail, interval=0.1)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            processes.stop_group(proc)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("fulcio is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        if self._tmp is None:
            return ""
        try:
            text = (self._tmp / "fulcio.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def trust(self, cosign: str | Path, directory: str | Path) -> Trust:
        """Write root.pem, trusted_root.json and signing_config.json for this instance into `directory`
        with `cosign trusted-root create` / `cosign signing-config create` (needs a cosign that has them)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        root = out / "fulcio-root.pem"
        root.write_text(self.root_pem)
        trusted_root, signing_config = out / "trusted_root.json", out / "signing_config.json"
        steps = [
            [str(cosign), "trusted-root", "create", f"--fulcio=url={self.url},certificate-chain={root}",
             "--out", str(trusted_root)],
            [str(cosign), "signing-config", "create",
             f"--fulcio=url={self.url},api-version=1,start-time={VALID_FROM},operator=local", "--out",
             str(signing_config)],
        ]
        for argv in steps:
            result = runner.run(argv, env=runner.base_env(), timeout=60)
            if not result.ok:
                raise FulcioStartError(f"could not write Fulcio trust material ({argv[1]} {argv[2]})",
                                       why=result.tail(), fix="Use cosign v3 (or v2.6+) for these commands.")
        return Trust(self.url, root, trusted_root, signing_config)

    def __repr__(self) -> str:
        where = self.url if self._port else "stopped"
        return f"LocalFulcio({where}, issuers={[i.url for i in self.issuers]})"


