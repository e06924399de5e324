"""Reads a Simple Container project in place: the stack's client.yaml security blocks and its image refs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sc_ci.config.diagnose import Loc, dotted, suggest
from sc_ci.config.yamlio import YamlDoc, load_yaml
from sc_ci.errors import ConfigError

_ROOT_PLACEHOLDERS = ("${git:root}", "${project:root}")
_COMPOSE_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class SecurityBlock:
    """A `security:` mapping found at `at` inside `doc`."""

    doc: YamlDoc
    at: Loc
    data: Mapping[str, object]


@dataclass(frozen=True)
class ProjectConfig:
    """What a YAML source contributes: security blocks (lowest precedence first) and image refs."""

    blocks: tuple[SecurityBlock, ...] = ()
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageNaming:
    """How to name images the project builds: `<registry>/<name>:<version>`; `env` feeds compose `${VAR}`."""

    registry: str | None
    version: str | None
    env: Mapping[str, str]
    wanted: bool = True  # False when images were given explicitly: nothing to derive

    def built(self, name: str, *, what: str, where: str) -> str:
        if not self.registry or not self.version:
            missing = " and ".join(
                k for k, v in (("registry", self.registry), ("version", self.version)) if not v
            )
            raise ConfigError(
                f"cannot name the image of {what}: no {missing}",
                path=missing.split(" ")[0],
                why=f"{what} ({where}) is built by the project: its reference is <registry>/{name}:<version>",
                fix="pass them: `with: {registry: ghcr.io/myorg, version: 1.2.3}` (action inputs),\n"
                "SC_CI_REGISTRY / SC_CI_VERSION, or --registry / --version;\n"
                "or give the image explicitly (`images` input / SC_CI_IMAGES)",
            )
        return f"{self.registry.rstrip('/')}/{name}:{self.version}"


def stack_file(root: Path, stack: str) -> Path:
    return root / ".sc" / "stacks" / stack / "client.yaml"


def is_client_yaml(data: object) -> bool:
    """A Simple Container client.yaml (has `stacks:` or `schemaVersion:`) rather than a bare security file."""
    return isinstance(data, dict) and ("stacks" in data or "schemaVersion" in data)


def read_stack(root: Path, stack: str, environment: str | None, naming: ImageNaming) -> ProjectConfig:
    """`.sc/stacks/<stack>/client.yaml` under `root`, for `environment` (None: top-level security only)."""
    path = stack_file(root, stack)
    if not path.is_file():
        stacks_dir = root / ".sc" / "stacks"
        known = sorted(p.parent.name for p in stacks_dir.glob("*/client.yaml")) if stacks_dir.is_dir() else []
        guess = suggest(stack, known)
        raise ConfigError(
            f"stack {stack!r} not found",
            path="stack",
            why=f"looked for {path}" + (f"; stacks here: {', '.join(known)}" if known else ""),
            fix=(f"did you mean {guess!r}?\n" if guess else "")
            + "run from the project root (or set the project root), and pass an existing stack name",
        )
    return read_client(
        load_yaml(path, purpose="client.yaml"), stack=stack, environment=environment, naming=naming, root=root
    )


def read_file(
    path: Path, *, root: Path, stack: str | None, environment: str | None, naming: ImageNaming
) -> ProjectConfig:
    """A YAML file given explicitly: either a client.yaml (detected) or a bare `security:` document."""
    doc = load_yaml(path, purpose="configuration file")
    if is_client_yaml(doc.data):
        inferred = path.parent.name if path.parent.parent.name == "stacks" else None
        return read_client(doc, stack=stack or inferred, environment=environment, naming=naming, root=root)
    return read_bare(doc)


def read_bare(doc: YamlDoc) -> ProjectConfig:
    for key in _mapping(doc, (), "the document"):
        if key != "security":
            nested = key in ("signing", "sbom", "provenance", "scan", "policy")
            raise ConfigError(
                f"unexpected top-level key {key!r}",
                path=str(key),
                why=f"in {doc.where((str(key),))}; a security file holds one `security:` mapping",
                fix=f"security:\n  {key}:\n    ..."
                if nested
                else f"did you mean 'security'? {_or_remove(key)}",
            )
    return ProjectConfig(_block(doc, ("security",)))


def _or_remove(key: object) -> str:
    return "" if suggest(str(key), ["security"]) else "(remove the key)"


def read_client(
    doc: YamlDoc, *, stack: str | None, environment: str | None, naming: ImageNaming, root: Path
) -> ProjectConfig:
    """Top-level `security:`, then `stacks.<env>.config.security` over it; images of `stacks.<env>`."""
    top = _block(doc, ("security",))
    if environment is None:
        return ProjectConfig(top)
    stacks = _mapping(doc, ("stacks",), "stacks")
    if environment not in stacks:
        guess = suggest(environment, [str(k) for k in stacks])
        raise ConfigError(
            f"environment {environment!r} not found",
            path=f"stacks.{environment}",
            why=f"looked in {doc.where(('stacks',))}; environments defined: {_names(stacks)}",
            fix=f"did you mean {guess!r}?" if guess else f"add `stacks:\n  {environment}:` to {doc.path}",
        )
    env_loc: Loc = ("stacks", environment)
    _mapping(doc, env_loc, f"stacks.{environment}")
    config = _mapping(doc, (*env_loc, "config"), f"stacks.{environment}.config", optional=True)
    blocks = (*top, *_block(doc, (*env_loc, "config", "security")))
    if not naming.wanted:
        return ProjectConfig(blocks)
    images = _images(doc, env_loc, config, stack=stack, root=root, naming=naming)
    return ProjectConfig(blocks, images)


def _names(mapping: Mapping[object, object]) -> str:
    return ", ".join(map(str, mapping)) or "none"


def _mapping(doc: YamlDoc, loc: Loc, what: str, *, optional: bool = False) -> dict[object, object]:
    value = doc.get(loc) if loc else doc.data
    if value is None and (optional or not loc):
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{what} must be a mapping, got {type(value).__name__ if value is not None else 'nothing'}",
            path=dotted(loc, root=""),
            why=f"in {doc.where(loc)}",
            fix=f"write {what} as `key: value` lines indented under it",
        )
    return value


def _block(doc: YamlDoc, loc: Loc) -> tuple[SecurityBlock, ...]:
    data = _mapping(doc, loc, dotted(loc, root=""), optional=True)
    return (SecurityBlock(doc, loc, {str(k): v for k, v in data.items()}),) if data else ()


# ---------------------------------------------------------------------------------------------- images


def _images(
    doc: YamlDoc,
    env_loc: Loc,
    config: Mapping[object, object],
    *,
    stack: str | None,
    root: Path,
    naming: ImageNaming,
) -> tuple[str, ...]:
    kind = doc.get((*env_loc, "type"))
    if kind == "cloud-compose" or (kind is None and "dockerComposeFile" in config):
        return _compose_images(doc, (*env_loc, "config"), config, root=root, naming=naming)
    if kind == "single-image" or (kind is None and "image" in config):
        return (_single_image(doc, (*env_loc, "config"), config, stack=stack, naming=naming),)
    return ()  # static sites and other stack types build no images


def _compose_images(
    doc: YamlDoc, cfg: Loc, config: Mapping[object, object], *, root: Path, naming: ImageNaming
) -> tuple[str, ...]:
    raw = config.get("dockerComposeFile")
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(
            "a cloud-compose stack needs dockerComposeFile",
            path=dotted((*cfg, "dockerComposeFile"), root=""),
            why=f"in {doc.where(cfg)}",
            fix="config:\n  dockerComposeFile: ${git:root}/docker-compose.yaml",
        )
    compose = load_yaml(
        _project_path(raw, root, where=doc.where((*cfg, "dockerComposeFile"))), purpose="docker-compose file"
    )
    services = _mapping(compose, ("services",), "services")
    runs = config.get("runs")
    if runs is None:
        names = [str(n) for n, s in services.items() if isinstance(s, dict) and "build" in s]
    elif isinstance(runs, list) and all(isinstance(r, str) for r in runs):
        names = list(runs)
    else:
        raise ConfigError(
            "runs must be a list of compose service names",
            path=dotted((*cfg, "runs"), root=""),
            why=f"in {doc.where((*cfg, 'runs'))}",
            fix="runs:\n  - api\n  - worker",
        )
    return tuple(_service_image(compose, services, name, doc.where((*cfg, "runs")), naming) for name in names)


def _service_image(
    compose: YamlDoc, services: Mapping[object, object], name: str, runs_at: str, naming: ImageNaming
) -> str:
    service = services.get(name)
    if not isinstance(service, dict):
        guess = suggest(name, [str(s) for s in services])
        raise ConfigError(
            f"service {name!r} (listed in runs) is not in {compose.path}",
            path="runs",
            why=f"runs at {runs_at}; services defined: {_names(services)}",
            fix=f"did you mean {guess!r}?"
            if guess
            else f"add service {name!r} to {compose.path} or drop it from runs",
        )
    image = service.get("image")
    where = compose.where(("services", name))
    if isinstance(image, str) and image.strip():
        return interpolate(image.strip(), naming.env, where=compose.where(("services", name, "image")))
    return naming.built(name, what=f"compose service {name!r}", where=where)


def _single_image(
    doc: YamlDoc, cfg: Loc, config: Mapping[object, object], *, stack: str | None, naming: ImageNaming
) -> str:
    image = config.get("image")
    where = doc.where((*cfg, "image"))
    if isinstance(image, str) and image.strip():
        if "${" in image:
            raise ConfigError(
                f"placeholders in config.image are not expanded here: {image!r}",
                path=dotted((*cfg, "image"), root=""),
                why=f"in {where}",
                fix="pass the image explicitly (`images` input / SC_CI_IMAGES)",
            )
        return image.strip()
    if isinstance(image, dict):
        name = image.get("name")
        if (
            isinstance(name, str)
            and name.strip()
            and not image.get("dockerfile")
            and not image.get("context")
        ):
            return name.strip()  # a prebuilt image, used as is (as Simple Container does)
        if stack is None:
            raise ConfigError(
                "cannot name the stack's image: the stack name is unknown",
                path="stack",
                why=f"config.image at {where} is built",
                fix="pass the stack name (`stack` input)",
            )
        return naming.built(stack, what=f"stack {stack!r}", where=where)
    raise ConfigError(
        "a single-image stack needs config.image",
        path=dotted((*cfg, "image"), root=""),
        why=f"in {doc.where(cfg)}",
        fix="config:\n  image:\n    dockerfile: ${git:root}/Dockerfile\n    context: ${git:root}",
    )


def _project_path(raw: str, root: Path, *, where: str) -> Path:
    text = raw.strip()
    for placeholder in _ROOT_PLACEHOLDERS:
        text = text.replace(placeholder, str(root))
    if "${" in text:
        raise ConfigError(
            f"unsupported placeholder in {raw!r}",
            path="dockerComposeFile",
            why=f"in {where}; only {' and '.join(_ROOT_PLACEHOLDERS)} are expanded here",
            fix="dockerComposeFile: ${git:root}/docker-compose.yaml",
        )
    path = Path(text)
    return path if path.is_absolute() else root / path


def interpolate(text: str, env: Mapping[str, str], *, where: str) -> str:
    """Compose-style `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?msg}`, `${VAR:+alt}`, `$$`.

    Unlike compose, an unset variable without a default is an error (the image ref would be broken).
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op") or "", match.group("arg") or ""
        value = env.get(name)
        is_set = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("-"):
            return value if is_set and value is not None else arg
        if op.endswith("+"):
            return arg if is_set else ""
        if value is None or (op.endswith("?") and not is_set):
            raise ConfigError(
                f"${{{name}}} is not set" + (f": {arg}" if arg else ""),
                path=name,
                why=f"the image reference at {where} uses it",
                fix=f"set {name} in the job's environment, or write `${{{name}:-default}}`",
            )
        return value

    return _COMPOSE_VAR.sub(substitute, text)
