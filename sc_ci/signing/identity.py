"""Which identity and issuer a keyless signature's certificate must carry: given, configured, or derived from the CI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sc_ci.ci._common import join_url
from sc_ci.ci.github import DEFAULT_SERVER
from sc_ci.ci.interface import CIContext, Platform
from sc_ci.config.model import VerifyConfig
from sc_ci.errors import ConfigError
from sc_ci.signing.signers import CertificateIdentity

CIRCLECI_API = "https://circleci.com/api/v2"  # Fulcio's default `api_url` for CircleCI identities

FIX = """\
Name the signer you trust, on the command line:
  sc-ci image verify --image IMAGE \\
    --certificate-identity https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main \\
    --certificate-oidc-issuer https://token.actions.githubusercontent.com
(or --certificate-identity-regexp / --certificate-oidc-issuer-regexp), or in the policy:

security:
  signing:
    verify:
      identityRegexp: ^https://github.com/OWNER/REPO/
      oidcIssuer: https://token.actions.githubusercontent.com

or verify with a public key (--key cosign.pub)."""


@dataclass(frozen=True)
class Given:
    """Identity and issuer given on the command line (None: not given)."""

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.identity, self.identity_regexp, self.issuer, self.issuer_regexp))


def expected(ci: CIContext, verify: VerifyConfig, *, given: Given | None = None,
             claims: Mapping[str, object] | None = None) -> CertificateIdentity:
    """The identity to verify against, each half from the first that has it: the command line, the policy
    (`verify.identityRegexp` / `verify.oidcIssuer`), the token this run signed with (what Fulcio certifies
    exactly, e.g. a reusable workflow's job_workflow_ref), then the CI context (GitHub workflow ref and
    token.actions issuer, GitLab `//` config ref and server URL, Buildkite pipeline)."""
    given = given or Given()
    claims = claims or {}
    if given.identity is not None or given.identity_regexp is not None:
        identity, identity_regexp = given.identity, given.identity_regexp
    elif verify.identity_regexp is not None:
        identity, identity_regexp = None, verify.identity_regexp
    else:
        identity, identity_regexp = from_claims(ci, claims) or ci.signer_identity, None
    if given.issuer is not None or given.issuer_regexp is not None:
        issuer, issuer_regexp = given.issuer, given.issuer_regexp
    elif verify.oidc_issuer is not None:
        issuer, issuer_regexp = verify.oidc_issuer, None
    else:
        iss = claims.get("iss")
        issuer, issuer_regexp = (iss if isinstance(iss, str) and iss else ci.signer_issuer), None
    halves = (("identity", identity, identity_regexp), ("OIDC issuer", issuer, issuer_regexp))
    missing = [name for name, exact, pattern in halves if exact is None and pattern is None]
    if missing:
        raise ConfigError(f"no certificate {' or '.join(missing)} to verify keyless signatures against",
                          why=f"{_platform(ci)} does not tell which {' and '.join(missing)} the signer had, and "
                              "none was given",
                          fix=FIX)
    return CertificateIdentity(identity, identity_regexp, issuer, issuer_regexp)


def from_claims(ci: CIContext, claims: Mapping[str, object]) -> str | None:
    """The subject Fulcio's templates put in the certificate for this token, when its claims say it."""
    def text(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) and value else None

    job_workflow_ref, config_ref = text("job_workflow_ref"), text("ci_config_ref_uri")
    if job_workflow_ref and ci.platform is Platform.GITHUB:
        return join_url(ci.server_url or DEFAULT_SERVER, job_workflow_ref)
    if config_ref and ci.platform is Platform.GITLAB:
        return f"https://{config_ref}"
    project, definition = text("oidc.circleci.com/project-id"), text("oidc.circleci.com/pipeline-definition-id")
    if project and definition:
        return f"{CIRCLECI_API}/projects/{project}/pipeline-definitions/{definition}"
    if text("email") and claims.get("email_verified") is True:
        return text("email")
    return None


def _platform(ci: CIContext) -> str:
    return "this run (not in a CI)" if ci.platform is Platform.LOCAL else f"the {ci.platform.value} context"
