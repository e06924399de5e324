"""The CI context every step reads: which platform, who builds, from what source, and the OIDC source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Platform(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    JENKINS = "jenkins"
    CIRCLECI = "circleci"
    BUILDKITE = "buildkite"
    LOCAL = "local"


class OIDCKind(StrEnum):
    """Where a keyless-signing identity token (audience `sigstore`) can come from."""

    GITHUB_ACTIONS = "github-actions"  # ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN exchange
    GITLAB_ID_TOKEN = "gitlab-id-token"  # SIGSTORE_ID_TOKEN from the job's id_tokens block
    BUILDKITE_AGENT = "buildkite-agent"  # `buildkite-agent oidc request-token --audience sigstore`
    CIRCLECI_CLI = "circleci-cli"  # `circleci run oidc get --claims '{"aud":"sigstore"}'`
    ENV_TOKEN = "env-token"  # SIGSTORE_ID_TOKEN set anywhere
    TOKEN_FILE = "token-file"  # SC_CI_OIDC_TOKEN_FILE / cosign's token file
    NONE = "none"


@dataclass(frozen=True)
class OIDCSource:
    """An identity-token source. Never holds the token itself, only where to get it."""

    kind: OIDCKind
    available: bool
    detail: str  # human readable: where the token comes from (no secret values)
    fix: str = ""  # when not available: the exact fix for this platform (YAML where relevant)
    env_var: str | None = None  # variable holding the token, or the request URL for GitHub
    path: str | None = None  # token file path, when kind is TOKEN_FILE


@dataclass(frozen=True)
class CIContext:
    """Facts about the running build, detected from the environment mapping alone."""

    platform: Platform
    oidc: OIDCSource
    builder_id: str | None = None  # URI identifying the build platform / workflow
    server_url: str | None = None  # https://github.com, https://gitlab.example.com, Jenkins URL
    repository: str | None = None  # owner/repo or group/project
    repo_url: str | None = None  # https://github.com/owner/repo
    commit: str | None = None  # full git SHA
    ref: str | None = None  # refs/heads/main, refs/tags/v1 (git ref form where the CI gives it)
    workflow: str | None = None  # workflow / pipeline / job name
    workflow_ref: str | None = None  # GitHub: owner/repo/.github/workflows/x.yml@refs/heads/main
    run_id: str | None = None
    run_attempt: str | None = None
    run_url: str | None = None  # URL of the run / job / build
    job_url: str | None = None
    # Keyless identity this platform's token produces in a Fulcio certificate (for verification).
    signer_identity: str | None = None
    signer_issuer: str | None = None
    # Where the platform wants outputs and summaries (files), if anywhere.
    output_file: str | None = None  # GITHUB_OUTPUT
    summary_file: str | None = None  # GITHUB_STEP_SUMMARY
    workspace: str | None = None  # GITHUB_WORKSPACE / CI_PROJECT_DIR / WORKSPACE
    # Platform-specific facts used by provenance (event name, ids, runner environment, …).
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_ci(self) -> bool:
        return self.platform is not Platform.LOCAL
