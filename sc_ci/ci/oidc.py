"""Where a keyless-signing token can come from: the generic sources, and each platform's fix text."""

from __future__ import annotations

from collections.abc import Mapping

from sc_ci.ci._common import get
from sc_ci.ci.interface import OIDCKind, OIDCSource

ENV_TOKEN_VAR = "SIGSTORE_ID_TOKEN"  # noqa: S105 (a name, not a value)
TOKEN_FILE_VAR = "SC_CI_OIDC_TOKEN_FILE"  # noqa: S105

_GENERIC_HINT = f"""\
Or provide a token with audience `sigstore` yourself: set {ENV_TOKEN_VAR} to it, or write it
to a 0600 file and set {TOKEN_FILE_VAR} to that file's path."""

_KEY_SIGNING = """\
security:
  signing:
    enabled: true
    keyless: false
    privateKey: ${secret:cosign-private-key}"""

GITHUB_FIX = f"""\
Keyless signing needs an OIDC token, and this job was not given one. Grant it in the workflow
(at the top level, or under the job that runs this action):

permissions:
  id-token: write
  contents: read

Pull requests from forks never get a token (GitHub does not grant id-token: write to pull_request
runs from forked repositories), whatever the workflow says: sign on push, tag or release events
instead, or use key-based signing.
{_GENERIC_HINT}"""

GITLAB_FIX = """\
Keyless signing needs an OIDC ID token, and this job has none. Add to the job that runs sc-ci:

id_tokens:
  SIGSTORE_ID_TOKEN:
    aud: sigstore

It must be in the project's own .gitlab-ci.yml job, not in an included file or CI/CD component:
when the job comes from a component, redefine the job by its name in .gitlab-ci.yml and add the
id_tokens block there. Fulcio then certifies
https://<gitlab host>/<project path>//<CI config path>@<ref>, with the GitLab URL as issuer.
The public Fulcio trusts gitlab.com (and a few listed instances) only: a self-managed GitLab needs
its own Fulcio that trusts it, or key-based signing."""

JENKINS_FIX = f"""\
Jenkins has no public Fulcio issuer, so keyless signing cannot work here. Use key-based signing:

{_KEY_SIGNING}

with the key in a Jenkins credential exposed to the step (e.g. withCredentials) and its password
in COSIGN_PASSWORD, or a KMS key reference (the key never leaves the KMS):
  awskms://[ENDPOINT]/[ID/ALIAS/ARN]
  gcpkms://projects/[PROJECT]/locations/[LOCATION]/keyRings/[KEYRING]/cryptoKeys/[KEY]
  azurekms://[VAULT_NAME][VAULT_URI]/[KEY]
  hashivault://[KEY]
If your own Fulcio trusts an issuer Jenkins can get tokens from, set {ENV_TOKEN_VAR} (or
{TOKEN_FILE_VAR}) to such a token."""

CIRCLECI_FIX = f"""\
CircleCI's built-in CIRCLE_OIDC_TOKEN has the wrong audience for Sigstore. Mint one with audience
`sigstore` in a step before sc-ci (the project must have OIDC tokens enabled, i.e. the job gets
CIRCLE_OIDC_TOKEN) and pass it as {ENV_TOKEN_VAR}:

- run:
    name: Mint a Sigstore OIDC token
    command: |
      echo "export {ENV_TOKEN_VAR}=$(circleci run oidc get --claims '{{"aud":"sigstore"}}')" >> "$BASH_ENV"

When sc-ci runs in its own container, pass {ENV_TOKEN_VAR} into it."""

BUILDKITE_FIX = f"""\
The Buildkite agent mints the token: `buildkite-agent oidc request-token --audience sigstore`.
It needs buildkite-agent on PATH and BUILDKITE_AGENT_ACCESS_TOKEN in the step's environment; in a
container (docker plugin) set `mount-buildkite-agent: true` and `propagate-environment: true`.
Or mint it before sc-ci and pass it in:

export {ENV_TOKEN_VAR}="$(buildkite-agent oidc request-token --audience sigstore)\""""

LOCAL_FIX = f"""\
No OIDC token source here (not in a CI with OIDC). Either:
  - run in CI with OIDC: GitHub Actions (permissions: id-token: write), GitLab (id_tokens with
    aud: sigstore), Buildkite (buildkite-agent), CircleCI (circleci run oidc get);
  - set {ENV_TOKEN_VAR} to a token with audience `sigstore` (or {TOKEN_FILE_VAR} to a file
    holding one);
  - or use key-based signing:

{_KEY_SIGNING}"""


# CI token issuers the public Fulcio (sigstore/fulcio config/identity/config.yaml) accepts.
_PUBLIC_FULCIO_ISSUERS = (
    "https://token.actions.githubusercontent.com",
    "https://gitlab.com",
    "https://agent.buildkite.com",
)
_PUBLIC_FULCIO_PREFIXES = ("https://token.actions.githubusercontent.com/", "https://oidc.circleci.com/org/")


def public_fulcio_note(issuer: str | None) -> str:
    """A caveat to append to a source's detail when its issuer is not one the public Fulcio trusts."""
    if issuer is None or issuer in _PUBLIC_FULCIO_ISSUERS or issuer.startswith(_PUBLIC_FULCIO_PREFIXES):
        return ""
    return f"; note: the public Fulcio does not trust issuer {issuer}: use a Fulcio that does, or a key"


def generic(env: Mapping[str, str]) -> OIDCSource | None:
    """SIGSTORE_ID_TOKEN (any platform), then the file named by SC_CI_OIDC_TOKEN_FILE; else None.

    Only names are kept. The file is not opened here (detection is pure); the signer reads it.
    """
    if get(env, ENV_TOKEN_VAR) is not None:
        return OIDCSource(
            kind=OIDCKind.ENV_TOKEN,
            available=True,
            detail=f"token in {ENV_TOKEN_VAR}",
            env_var=ENV_TOKEN_VAR,
        )
    path = get(env, TOKEN_FILE_VAR)
    if path is not None:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
            from sc_ci import sanitize
            from sc_ci.errors import UsageError

            raise UsageError(f"{TOKEN_FILE_VAR} is not a usable path: {sanitize.one_line(path, 120)}",
                             why="it holds a line break or another control character",
                             fix=f"Set {TOKEN_FILE_VAR} to the path of the file holding the OIDC token (one line).")
        return OIDCSource(
            kind=OIDCKind.TOKEN_FILE,
            available=True,
            detail=f"token file {path} (from {TOKEN_FILE_VAR})",
            env_var=TOKEN_FILE_VAR,
            path=path,
        )
    return None


def unavailable(detail: str, fix: str) -> OIDCSource:
    return OIDCSource(kind=OIDCKind.NONE, available=False, detail=detail, fix=fix)


def resolve(env: Mapping[str, str], native: OIDCSource | None, *, missing: str, fix: str) -> OIDCSource:
    """The platform's own source if it has one, else a generic one, else NONE with the fix."""
    return native or generic(env) or unavailable(missing, fix)
