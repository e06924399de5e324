"""Keyless Sigstore on loopback (three OIDC issuers, one Fulcio, trust files) and the CI envs using it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.fulcio import Issuer, LocalFulcio, Trust
from testbed.oidc_issuer import OIDCIssuer

REPO = "acme/app"
WORKFLOW_REF = f"{REPO}/.github/workflows/release.yml@refs/heads/main"
GITLAB_PROJECT = "acme/app"
SHA = "3b9f1a7c" * 5


@dataclass(frozen=True)
class KeylessBed:
    """The running issuers, the Fulcio that trusts them, and trust files made for it."""

    github: OIDCIssuer  # issuer http://127.0.0.1:P/_services/token, like GitHub Enterprise Server's
    gitlab: OIDCIssuer  # issuer http://127.0.0.1:Q (a GitLab's issuer is its server URL)
    email: OIDCIssuer  # a plain email issuer (tokens a user brings in SIGSTORE_ID_TOKEN)
    fulcio: LocalFulcio
    trust: Trust

    @property
    def github_identity(self) -> str:
        """The SAN Fulcio certifies for the GitHub-like token: SERVER/job_workflow_ref."""
        return f"{self.github.origin}/{WORKFLOW_REF}"

    @property
    def gitlab_config_ref(self) -> str:
        """GitLab's `ci_config_ref_uri` claim (host/project//config@ref); the SAN is https:// + it."""
        return f"127.0.0.1:{self.gitlab.port}/{GITLAB_PROJECT}//.gitlab-ci.yml@refs/heads/main"

    def github_claims(self) -> dict[str, Any]:
        """Claims of an Actions token for a push to main of acme/app (no `email`, as on GitHub)."""
        return {"sub": f"repo:{REPO}:ref:refs/heads/main", "repository": REPO, "repository_owner": "acme",
                "ref": "refs/heads/main", "sha": SHA, "workflow": "release", "event_name": "push",
                "workflow_ref": WORKFLOW_REF, "job_workflow_ref": WORKFLOW_REF, "run_id": "42",
                "run_attempt": "1", "runner_environment": "github-hosted"}

    def gitlab_claims(self) -> dict[str, Any]:
        return {"sub": f"project_path:{GITLAB_PROJECT}:ref_type:branch:ref:main", "project_path": GITLAB_PROJECT,
                "namespace_path": "acme", "ref": "main", "ref_type": "branch", "sha": SHA,
                "ci_config_ref_uri": self.gitlab_config_ref, "pipeline_source": "push"}

    def sigstore_env(self) -> dict[str, str]:
        """The private-Sigstore policy: this Fulcio's signing config and trusted root, no Rekor, no CT log."""
        prefix = "SC_CI_SECURITY__SIGNING__SIGSTORE__"
        return {f"{prefix}SIGNINGCONFIG": str(self.trust.signing_config),
                f"{prefix}TRUSTEDROOT": str(self.trust.trusted_root),
                f"{prefix}TRANSPARENCYLOG": "false", f"{prefix}CERTIFICATETRANSPARENCY": "false"}

    def github_env(self, request_token: str) -> dict[str, str]:
        """What an Actions runner gives a job with `permissions: id-token: write` (GHES-like server URL);
        serve the token exchange first with `github.github_exchange(request_token, github_claims())`."""
        return {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": self.github.origin, "GITHUB_REPOSITORY": REPO,
                "GITHUB_WORKFLOW_REF": WORKFLOW_REF, "GITHUB_WORKFLOW": "release", "GITHUB_SHA": SHA,
                "GITHUB_REF": "refs/heads/main", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1",
                "GITHUB_EVENT_NAME": "push", "ACTIONS_ID_TOKEN_REQUEST_URL": self.github.exchange_url,
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token, **self.sigstore_env()}

    def gitlab_env(self, token: str) -> dict[str, str]:
        """A GitLab job whose .gitlab-ci.yml has `id_tokens: {SIGSTORE_ID_TOKEN: {aud: sigstore}}`."""
        return {"GITLAB_CI": "true", "CI_SERVER_URL": self.gitlab.origin, "CI_PROJECT_PATH": GITLAB_PROJECT,
                "CI_COMMIT_REF_NAME": "main", "CI_COMMIT_SHA": SHA, "CI_CONFIG_PATH": ".gitlab-ci.yml",
                "CI_PIPELINE_SOURCE": "push", "SIGSTORE_ID_TOKEN": token, **self.sigstore_env()}


@contextlib.contextmanager
def keyless_bed(*, fulcio: str | Path | None, cosign: str | Path, directory: Path) -> Iterator[KeylessBed]:
    """Start the three issuers and a Fulcio (`serve --ca=ephemeralca --ct-log-url=`) trusting them, write the
    trust files with `cosign` (v3: it has `signing-config create`) into `directory`; stop everything after."""
    with OIDCIssuer(path="/_services/token") as github, OIDCIssuer() as gitlab, OIDCIssuer() as email:
        issuers = [Issuer(github.url, "github-workflow", github.origin),
                   Issuer(gitlab.url, "gitlab-pipeline", gitlab.origin), Issuer(email.url, "email")]
        with LocalFulcio(issuers, binary=fulcio) as local_fulcio:
            yield KeylessBed(github, gitlab, email, local_fulcio, local_fulcio.trust(cosign, directory))
