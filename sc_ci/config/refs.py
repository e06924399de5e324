"""Key and secret sources (`${secret:NAME}`, `${env:NAME}`, cosign key URIs, files), resolved only at use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

from sc_ci.config.diagnose import Invalid
from sc_ci.config.yamlio import parse_yaml, read_config_text
from sc_ci.errors import ConfigError
from sc_ci.sanitize import one_line, quoted
from sc_ci.secrets import Secret

RefKind = Literal["secret", "env"]

_REF = re.compile(r"^\$\{(secret|env):([A-Za-z0-9][A-Za-z0-9_.\-/]*)\}$")
_ANY_REF = re.compile(r"\$\{\s*(secret|env)\s*:")
_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=(.*)$")

#: cosign's own key-reference schemes (`cosign sign --key <uri>`); passed to cosign unchanged.
KMS_SCHEMES = ("k8s", "awskms", "gcpkms", "azurekms", "hashivault")
KEY_URI_SCHEMES = ("env", *KMS_SCHEMES)
SECRETS_FILE_VAR = "SC_CI_SECRETS_FILE"
SECRETS_FILE_MAX_BYTES = 1024 * 1024
#: environment variables every process has: their values are never key material
NOT_SECRET_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "PWD",
        "OLDPWD",
        "SHELL",
        "USER",
        "LOGNAME",
        "HOSTNAME",
        "LANG",
        "LANGUAGE",
        "TERM",
        "TMPDIR",
        "TMP",
        "TEMP",
        "TZ",
        "SHLVL",
        "MAIL",
        "EDITOR",
        "PAGER",
        "DISPLAY",
        "PYTHONPATH",
        "LD_LIBRARY_PATH",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
        "CI",
        "GITHUB_ACTIONS",
        "GITHUB_WORKSPACE",
        "GITHUB_REPOSITORY",
        "GITHUB_SHA",
        "GITHUB_REF",
        "GITLAB_CI",
        "RUNNER_OS",
        "RUNNER_TEMP",
        "JENKINS_URL",
        "WORKSPACE",
    }
)


def env_name(name: str) -> str:
    """The environment-variable form of a reference name: `cosign-private-key` → `COSIGN_PRIVATE_KEY`."""
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def contains_ref(text: str) -> bool:
    """Whether `text` holds a `${secret:…}` or `${env:…}` reference anywhere."""
    return _ANY_REF.search(text) is not None


@dataclass(frozen=True)
class SecretRef:
    """An unresolved `${secret:NAME}` / `${env:NAME}`; `resolve()` looks it up at the point of use."""

    kind: RefKind
    name: str

    def __str__(self) -> str:
        return f"${{{self.kind}:{self.name}}}"

    def env_names(self) -> tuple[str, ...]:
        """Environment variables tried, in order: the name as written, then its upper-case `_` form."""
        normalized = env_name(self.name)
        return (self.name,) if normalized == self.name else (self.name, normalized)

    def resolve(self, env: Mapping[str, str], secrets_file: Path | None = None, *, path: str = "") -> Secret:
        """The value as a masked `Secret`; ConfigError naming every place looked at when it is missing.

        `${env:NAME}` reads only the environment; `${secret:NAME}` also reads the secrets file.
        An empty value counts as missing (CI systems pass unset secrets as empty strings).
        """
        names = self.env_names()
        self._check_source(path)
        for name in names:
            if env.get(name):
                return self._secret(env[name], f"environment variable {name}", path)
        file_values: Mapping[str, str] = {}
        if self.kind == "secret" and secrets_file is not None:
            file_values = read_secrets_file(secrets_file)
            for name in names:
                if file_values.get(name):
                    return self._secret(file_values[name], f"key {name} of the secrets file", path)
        raise self._unresolved(env, secrets_file, path)

    def _check_source(self, path: str) -> None:
        """`${env:PATH}` and the like name a variable every process has: never key material."""
        plain = [n for n in self.env_names() if n.upper() in NOT_SECRET_ENV or n.upper().startswith("LC_")]
        if plain:
            raise ConfigError(
                f"{self} names the environment variable {plain[0]}, which is not a secret",
                path=path,
                why="its value is ordinary process state; it would be handed to a tool as key material "
                "and masked in every log line",
                fix=f"use a variable that holds the key, e.g. ${{{self.kind}:cosign-private-key}}",
            )

    def _secret(self, value: str, source: str, path: str) -> Secret:
        """The value as a Secret, unless it is itself a reference (references are not followed)."""
        if contains_ref(value):
            raise ConfigError(
                f"{self} resolves to another reference, not to a value",
                path=path,
                why=f"{source} holds a ${{secret:…}} / ${{env:…}} reference; references are not followed",
                fix=f"put the key itself in {source}, or point the configuration at the right name",
            )
        return Secret(value, name=str(self))

    def _unresolved(self, env: Mapping[str, str], secrets_file: Path | None, path: str) -> ConfigError:
        names = self.env_names()
        tried = ", ".join(f"{n} (set but empty)" if n in env else n for n in names)
        why = [f"looked for environment variable(s) {tried}"]
        if self.kind == "secret":
            if secrets_file is None:
                why.append(f"no secrets file ({SECRETS_FILE_VAR} is not set)")
            else:
                why.append(f"looked for key(s) {', '.join(names)} in secrets file {secrets_file}")
        var = names[-1]
        fix = f"export {var}=...   (or, in GitHub Actions, on the step:\n  env:\n    {var}: ${{{{ secrets.{var} }}}})"
        if self.kind == "secret":
            fix += f"\nor add `{var}: ...` to the file named by {SECRETS_FILE_VAR}"
        return ConfigError(f"cannot resolve {self}", path=path, why="; ".join(why), fix=fix)


@dataclass(frozen=True)
class KeyUri:
    """A cosign key URI (`env://VAR`, `k8s://ns/name`, `awskms://…`, …) or an https URL of a public key."""

    uri: str

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0].lower()

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class KeyFile:
    """A path to a key (or API-key) file, read at use time; relative to the project root."""

    path: str

    def __str__(self) -> str:
        return self.path


KeySpec = SecretRef | KeyUri | KeyFile


def parse_ref(text: str) -> SecretRef | None:
    """`${secret:NAME}` / `${env:NAME}` as a SecretRef; None when `text` holds no reference at all."""
    match = _REF.match(text.strip())
    if match:
        kind: RefKind = "secret" if match.group(1) == "secret" else "env"
        return SecretRef(kind, match.group(2))
    if contains_ref(text):
        raise Invalid(
            f"{quoted(text)} mixes a reference with other text; references are not interpolated",
            fix="make the whole value one reference, e.g. `${secret:cosign-private-key}`",
        )
    return None


def parse_key_spec(value: object, *, field: str, kms: bool = True, url: bool = False) -> KeySpec:
    """Parse a key field's value; raises Invalid (with the fix) for anything that is not a key source."""
    if isinstance(value, SecretRef | KeyUri | KeyFile):
        return value
    if not isinstance(value, str) or not value.strip():
        raise Invalid(
            f"expected a file path, key URI or ${{secret:NAME}} reference, got {type(value).__name__}",
            fix=f"{field}: ${{secret:{_example(field)}}}",
        )
    text = value.strip()
    if "\n" in text or "-----BEGIN" in text:
        raise Invalid(
            "holds key material; the YAML never carries secret values",
            fix=f"{field}: ${{secret:{_example(field)}}}   # value from the environment or secrets file",
        )
    ref = parse_ref(text)
    if ref is not None:
        return ref
    if "://" in text:
        return _parse_uri(text, field=field, kms=kms, url=url)
    return KeyFile(text)


def _parse_uri(text: str, *, field: str, kms: bool, url: bool) -> KeyUri:
    key = KeyUri(text)
    allowed = ["env", *(KMS_SCHEMES if kms else ()), *(("https",) if url else ())]
    if key.scheme in allowed and text.split("://", 1)[1]:
        return key
    _raise_uri(key, field, allowed)


def _raise_uri(key: KeyUri, field: str, allowed: list[str]) -> NoReturn:
    schemes = ", ".join(f"{s}://" for s in allowed)
    raise Invalid(
        f"unsupported key URI scheme {key.scheme + '://'!r} (supported here: {schemes})",
        fix=f"{field}: env://{env_name(_example(field))}   # or a file path or ${{secret:{_example(field)}}}",
    )


def _example(field: str) -> str:
    return {"privateKey": "cosign-private-key", "publicKey": "cosign-public-key"}.get(field, "defectdojo-api-key")


def read_secrets_file(path: Path) -> dict[str, str]:
    """Read the secrets file: a YAML/JSON mapping, or KEY=VALUE lines (`export`, quotes, # comments ok).
    A regular UTF-8 file of at most 1 MiB; anything else is a ConfigError that never shows a value."""
    text = read_config_text(path, purpose="secrets file", limit=SECRETS_FILE_MAX_BYTES, key=SECRETS_FILE_VAR)
    if path.suffix.lower() not in (".yaml", ".yml", ".json") and _looks_like_dotenv(text):
        return _parse_dotenv(text)
    return _parse_mapping(text, path)


def _looks_like_dotenv(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return bool(lines) and all(_DOTENV_LINE.match(ln) for ln in lines)


def _parse_dotenv(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _DOTENV_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = _unquote(match.group(2).strip())
    return values


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace("\\n", "\n").replace('\\"', '"')
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    return raw.split(" #", 1)[0].rstrip()


def _parse_mapping(text: str, path: Path) -> dict[str, str]:
    try:
        data = parse_yaml(text, path).data
    except ConfigError as exc:
        raise ConfigError(
            f"secrets file {one_line(str(path), 300)} is neither a YAML/JSON mapping nor KEY=VALUE lines",
            path=SECRETS_FILE_VAR,
            why=exc.what,
            fix="write one `NAME: value` per line (YAML) or `NAME=value` per line",
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or any(isinstance(v, dict | list) for v in data.values()):
        raise ConfigError(
            f"secrets file {one_line(str(path), 300)} must be a flat mapping of names to strings",
            path=SECRETS_FILE_VAR,
            fix="COSIGN_PRIVATE_KEY: |\n  -----BEGIN " + "ENCRYPTED SIGSTORE PRIVATE KEY-----\n  ...",
        )
    return {str(k): "" if v is None else str(v) for k, v in data.items()}
