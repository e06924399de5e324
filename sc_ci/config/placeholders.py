"""Expands Simple Container `${kind:path[:default]}` placeholders and compose `${VAR}`, never into secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sc_ci.config.paths import GitInfo, shown
from sc_ci.errors import ConfigError
from sc_ci.secrets import mask

# A name that looks like it holds a credential is never read for an image reference or a path.
_SECRET_NAME = re.compile(
    r"TOKEN|PASSWORD|PASSWD|PASSPHRASE|SECRET|KEY|CREDENTIAL|AUTH|JWT|PRIVATE|COOKIE|SESSION", re.IGNORECASE
)
_SC_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
_COMPOSE_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_MAX_MESSAGE = 120


def secret_looking(name: str) -> bool:
    """Whether a variable name suggests a credential (TOKEN, PASSWORD, SECRET, KEY, AUTH, …)."""
    return _SECRET_NAME.search(name) is not None


def holds_secret(value: str) -> bool:
    """Whether `value` contains a value registered as secret (it would be masked in any output)."""
    return bool(value) and mask(value) != value


def allowed(name: str, env: Mapping[str, str], *, syntax: str, where: str, key: str) -> str | None:
    """`env[name]` if this engine may put it into an image reference or a path; ConfigError if not.

    Refused: a name that looks secret, or a value that is a registered secret. The value is never shown.
    """
    if secret_looking(name):
        raise ConfigError(
            f"{syntax} names a variable that looks like a credential",
            path=key,
            why=f"in {where}; variables whose names contain TOKEN, PASSWORD, SECRET, KEY, CREDENTIAL, AUTH "
            "(or JWT, PRIVATE, SESSION, COOKIE) are never read into image references or paths, so a "
            "repository cannot copy a secret into a registry name, a tag, a log line or an output",
            fix="use a variable with a plain name (e.g. IMAGE_TAG), or write the value into the file",
        )
    value = env.get(name)
    if value is not None and holds_secret(value):
        raise ConfigError(
            f"{syntax} holds a secret value",
            path=key,
            why=f"in {where}; the variable's value is registered as a secret, and an image reference or a "
            "path is printed, pushed and attested in the clear (the value is not shown here)",
            fix="use a variable that does not carry a secret",
        )
    return value


@dataclass(frozen=True)
class Context:
    """What Simple Container placeholders resolve from: the environment, git, the project and the stack."""

    env: Mapping[str, str]
    git: GitInfo
    project_root: Path
    stack: str | None = None


def expand(text: str, ctx: Context, *, where: str, key: str) -> str:
    """Simple Container placeholders in a value this engine uses (a path or an image name).

    `${env:NAME}`, `${env:NAME:default}` (the default when unset or empty, as upstream), `${git:root}`,
    `${git:commit.short|commit.full|branch|branch.raw|branch.clean}`, `${project:root}`, `${stack:name}`.
    Any other kind (`${secret:…}`, `${resource:…}`, …) cannot be part of such a value: ConfigError.
    """

    def substitute(match: re.Match[str]) -> str:
        tag = match.group(1)
        kind, _, rest = tag.partition(":")
        path, has_default, default = rest.partition(":")
        value = _resolve(kind, path, ctx, tag=tag, where=where, key=key)
        if kind == "env" and not value and has_default:
            return default
        if value is None:
            raise _unresolved(tag, kind, where=where, key=key)
        return value

    return _SC_PLACEHOLDER.sub(substitute, text)


def _resolve(kind: str, path: str, ctx: Context, *, tag: str, where: str, key: str) -> str | None:
    git = ctx.git
    if kind == "env":
        return allowed(path, ctx.env, syntax=f"${{{shown(tag)[1:-1]}}}", where=where, key=key)
    if kind == "git":
        branch = git.branch
        return {
            "root": str(git.root),
            "commit.full": git.commit,
            "commit.short": git.commit[:7] if git.commit else None,
            "branch": branch.replace("/", "-") if branch else None,
            "branch.clean": branch.replace("/", "-") if branch else None,
            "branch.raw": branch,
        }.get(path)
    if kind == "project" and path == "root":
        return str(git.root)  # upstream: the git work tree, else the working directory
    if kind == "stack" and path == "name":
        return ctx.stack
    return None


def _unresolved(tag: str, kind: str, *, where: str, key: str) -> ConfigError:
    placeholder = f"${{{shown(tag)[1:-1]}}}"
    if kind == "env":
        return ConfigError(
            f"{placeholder} is not set",
            path=key,
            why=f"in {where}; Simple Container would substitute an empty string, which would silently "
            "point this value somewhere else",
            fix="set the variable in the job's environment, or give a default: ${env:NAME:default}",
        )
    if kind == "git":
        return ConfigError(
            f"{placeholder} cannot be resolved here",
            path=key,
            why=f"in {where}; HEAD's commit or branch is not known (no .git above the project, a detached "
            "HEAD no single branch points at, or an unknown git value)",
            fix="check out the repository with its .git directory (actions/checkout does), or use "
            "${git:root} / ${git:commit.short} / ${git:commit.full} / ${git:branch}",
        )
    return ConfigError(
        f"placeholder {placeholder} is not expanded here",
        path=key,
        why=f"in {where}; paths and image names may use ${{env:…}}, ${{git:…}}, ${{project:root}} and "
        "${stack:name}; secrets, resources and other values only exist at deploy time",
        fix="write the path or image name without it (or pass the image explicitly: `images` input / SC_CI_IMAGES)",
    )


def interpolate(text: str, env: Mapping[str, str], *, where: str, key: str = "image") -> str:
    """Compose-style `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?msg}`, `${VAR:+alt}`, `$$`.

    Variables come from `env` through `allowed` (no credential-looking names, no secret values).
    Unlike compose, an unset variable without a default is an error (the image ref would be broken).
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op") or "", match.group("arg") or ""
        value = allowed(name, env, syntax=f"${{{name}}}", where=where, key=key)
        is_set = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("-"):
            return value if is_set and value is not None else arg
        if op.endswith("+"):
            return arg if is_set else ""
        if value is None or (op.endswith("?") and not is_set):
            message = shown(arg, _MAX_MESSAGE) if arg else ""
            raise ConfigError(
                f"${{{name}}} is not set" + (f": {message}" if message else ""),
                path=key,
                why=f"the value at {where} uses it",
                fix=f"set {name} in the job's environment, or write `${{{name}:-default}}`",
            )
        return value

    return _COMPOSE_VAR.sub(substitute, text)
