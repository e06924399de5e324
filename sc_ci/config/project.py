"""Reads a Simple Container project in place: the stack's client.yaml security blocks and its images."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sc_ci.config.compose import reference, repository, services
from sc_ci.config.diagnose import Loc, dotted, suggest
from sc_ci.config.paths import check_name, confine, git_info, shown
from sc_ci.config.placeholders import Context, expand, interpolate
from sc_ci.config.yamlio import YamlDoc, load_yaml
from sc_ci.errors import ConfigError

__all__ = [
    "ImageNaming",
    "ProjectConfig",
    "ProjectImage",
    "SecurityBlock",
    "interpolate",
    "is_client_yaml",
    "read_bare",
    "read_client",
    "read_file",
    "read_stack",
    "stack_file",
]

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_REGISTRY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*(?:/[A-Za-z0-9._-]+)*")


@dataclass(frozen=True)
class SecurityBlock:
    """A `security:` mapping found at `at` inside `doc`."""

    doc: YamlDoc
    at: Loc
    data: Mapping[str, object]


@dataclass(frozen=True)
class ProjectImage:
    """One image of a stack: `built` and pushed by Simple Container, or an upstream image it only pulls.

    Upstream images (a compose service with `image:` and no `build:`, a prebuilt `config.image.name`) are
    not Simple Container's to sign or attest; they are still scanned.
    """

    ref: str
    service: str  # the compose service, or the stack name for a single-image stack
    built: bool
    dockerfile: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class ProjectConfig:
    """What a YAML source contributes: security blocks (lowest precedence first) and the stack's images.

    `images` is every image's reference (built and upstream, in order); `project_images` says which is which.
    """

    blocks: tuple[SecurityBlock, ...] = ()
    images: tuple[str, ...] = ()
    project_images: tuple[ProjectImage, ...] = ()

    @classmethod
    def of(cls, blocks: tuple[SecurityBlock, ...], images: tuple[ProjectImage, ...] = ()) -> ProjectConfig:
        return cls(blocks, tuple(i.ref for i in images), images)


@dataclass(frozen=True)
class ImageNaming:
    """How built images are named: `<registry>/<name>:<version>` (version default `latest`, as upstream).

    `env` feeds `${env:…}` and compose `${VAR}`; `wanted` is False when images were given explicitly.
    """

    registry: str | None
    version: str | None
    env: Mapping[str, str]
    wanted: bool = True

    def built(self, name: str, *, what: str, where: str) -> str:
        if not self.registry:
            raise ConfigError(
                f"cannot name the image of {what}: no registry",
                path="registry",
                why=f"{what} ({where}) is built by Simple Container and pushed as <registry>/{name}:<version> "
                "to the parent stack's registry, which this engine cannot read",
                fix="pass it: `with: {registry: ghcr.io/myorg, version: 1.2.3}` (action inputs),\n"
                "SC_CI_REGISTRY / SC_CI_VERSION, or --registry / --version;\n"
                "or give the images explicitly (`images` input / SC_CI_IMAGES)",
            )
        registry = self.registry.strip().rstrip("/")
        if not _REGISTRY.fullmatch(registry):
            raise ConfigError(
                f"registry {shown(registry)} is not a registry prefix",
                path="registry",
                why="it is the part of an image reference before the image name",
                fix="registry: ghcr.io/myorg (no scheme, no tag)",
            )
        version = (self.version or "").strip() or "latest"
        if not _TAG.fullmatch(version):
            raise ConfigError(
                f"version {shown(version)} is not a valid image tag",
                path="version",
                why="it tags every built image; a tag is letters, digits, '_', '.', '-' (at most 128)",
                fix="version: 1.2.3",
            )
        return f"{registry}/{name}:{version}"


def stack_file(root: Path, stack: str) -> Path:
    return root / ".sc" / "stacks" / stack / "client.yaml"


def is_client_yaml(data: object) -> bool:
    """A Simple Container client.yaml (has `stacks:` or `schemaVersion:`) rather than a bare security file."""
    return isinstance(data, dict) and ("stacks" in data or "schemaVersion" in data)


def read_stack(root: Path, stack: str, environment: str | None, naming: ImageNaming) -> ProjectConfig:
    """`.sc/stacks/<stack>/client.yaml` under `root`, for `environment` (None: top-level security only)."""
    check_name(stack, what="stack", path="stack")
    if environment is not None:
        check_name(environment, what="environment", path="environment")
    path = stack_file(root, stack)
    real = confine(path, root, what="client.yaml", key="stack", where=f"stack {stack!r}")
    if not real.is_file():
        stacks_dir = root / ".sc" / "stacks"
        known = (
            sorted(p.parent.name for p in stacks_dir.glob("*/client.yaml") if _plain(p.parent.name))
            if stacks_dir.is_dir()
            else []
        )
        guess = suggest(stack, known)
        raise ConfigError(
            f"stack {stack!r} not found",
            path="stack",
            why=f"looked for {path}" + (f"; stacks here: {', '.join(known)}" if known else ""),
            fix=(f"did you mean {guess!r}?\n" if guess else "")
            + "run from the project root (or set the project root), and pass an existing stack name",
        )
    doc = load_yaml(real, purpose="client.yaml")
    return read_client(doc, stack=stack, environment=environment, naming=naming, root=root, stack_dir=path.parent)


def _plain(name: str) -> bool:
    try:
        check_name(name, what="stack", path="stack")
    except ConfigError:
        return False
    return True


def read_file(
    path: Path, *, root: Path, stack: str | None, environment: str | None, naming: ImageNaming
) -> ProjectConfig:
    """A YAML file given explicitly: either a client.yaml (detected) or a bare `security:` document.

    A file the operator names outside the project is read as given; one inside it must stay inside
    (a symlink in the repository cannot lead out).
    """
    if stack is not None:
        check_name(stack, what="stack", path="stack")
    if environment is not None:
        check_name(environment, what="environment", path="environment")
    lexical = Path(os.path.abspath(path))
    if lexical.is_relative_to(os.path.abspath(root)):
        lexical = confine(lexical, root, what="configuration file", key="config", where=str(path))
    doc = load_yaml(lexical, purpose="configuration file")
    if is_client_yaml(doc.data):
        inferred = path.parent.name if path.parent.parent.name == "stacks" else None
        if stack is None and inferred is not None:
            stack = check_name(inferred, what="stack", path="stack")
        return read_client(doc, stack=stack, environment=environment, naming=naming, root=root, stack_dir=path.parent)
    return read_bare(doc)


def read_bare(doc: YamlDoc) -> ProjectConfig:
    for key in _mapping(doc, (), "the document"):
        if key != "security":
            nested = key in ("signing", "sbom", "provenance", "scan", "policy")
            raise ConfigError(
                f"unexpected top-level key {shown(key)}",
                path=_key(key),
                why=f"in {doc.where((str(key),))}; a security file holds one `security:` mapping",
                fix=f"security:\n  {_key(key)}:\n    ..." if nested else f"did you mean 'security'? {_or_remove(key)}",
            )
    return ProjectConfig.of(_block(doc, ("security",)))


def _key(key: object) -> str:
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text) else shown(text, 40)


def _or_remove(key: object) -> str:
    return "" if suggest(str(key), ["security"]) else "(remove the key)"


def read_client(
    doc: YamlDoc,
    *,
    stack: str | None,
    environment: str | None,
    naming: ImageNaming,
    root: Path,
    stack_dir: Path | None = None,
) -> ProjectConfig:
    """Top-level `security:`, then `stacks.<env>.config.security` over it; images of `stacks.<env>`."""
    top = _block(doc, ("security",))
    if environment is None:
        return ProjectConfig.of(top)
    check_name(environment, what="environment", path="environment")
    stacks = _mapping(doc, ("stacks",), "stacks")
    if environment not in stacks:
        names = [str(k) for k in stacks]
        guess = suggest(environment, names)
        raise ConfigError(
            f"environment {environment!r} not found",
            path=f"stacks.{environment}",
            why=f"looked in {doc.where(('stacks',))}; environments defined: "
            + (", ".join(_key(n) for n in names[:30]) or "none"),
            fix=f"did you mean {_key(guess)!r}?" if guess else f"add `stacks:\n  {environment}:` to {doc.path}",
        )
    env_loc: Loc = ("stacks", environment)
    _mapping(doc, env_loc, f"stacks.{environment}")
    config = _mapping(doc, (*env_loc, "config"), f"stacks.{environment}.config", optional=True)
    blocks = (*top, *_block(doc, (*env_loc, "config", "security")))
    if not naming.wanted:
        return ProjectConfig.of(blocks)
    ctx = Context(naming.env, git_info(root), root, stack)
    folder = stack_dir if stack_dir is not None else doc.path.parent
    images = _images(doc, env_loc, config, stack=stack, stack_dir=folder, ctx=ctx, naming=naming)
    return ProjectConfig.of(blocks, images)


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
    stack_dir: Path,
    ctx: Context,
    naming: ImageNaming,
) -> tuple[ProjectImage, ...]:
    kind = doc.get((*env_loc, "type"))
    cfg: Loc = (*env_loc, "config")
    if kind == "cloud-compose" or (kind is None and "dockerComposeFile" in config):
        return _compose_images(doc, cfg, config, stack=stack, stack_dir=stack_dir, ctx=ctx, naming=naming)
    if kind == "single-image" or (kind is None and "image" in config):
        return (_single_image(doc, cfg, config, stack=stack, ctx=ctx, naming=naming),)
    return ()  # static sites and other stack types build no images


def _compose_images(
    doc: YamlDoc,
    cfg: Loc,
    config: Mapping[object, object],
    *,
    stack: str | None,
    stack_dir: Path,
    ctx: Context,
    naming: ImageNaming,
) -> tuple[ProjectImage, ...]:
    images = []
    for service in services(doc, cfg, config, stack_dir=stack_dir, ctx=ctx):
        if service.image is not None:
            images.append(ProjectImage(service.image, service.name, built=False))
            continue
        what = f"compose service {service.name!r}"
        name = repository(f"{_known(stack, service.where)}--{service.name}", where=what, key="stack")
        ref = naming.built(name, what=what, where=service.where)
        images.append(ProjectImage(ref, service.name, True, service.dockerfile, service.context))
    return tuple(images)


def _known(stack: str | None, where: str) -> str:
    if stack is None:
        raise ConfigError(
            "cannot name the stack's images: the stack name is unknown",
            path="stack",
            why=f"the image at {where} is built; Simple Container names it after the stack",
            fix="pass the stack name (`stack` input / SC_CI_STACK / --stack)",
        )
    return stack


def _single_image(
    doc: YamlDoc,
    cfg: Loc,
    config: Mapping[object, object],
    *,
    stack: str | None,
    ctx: Context,
    naming: ImageNaming,
) -> ProjectImage:
    image = config.get("image")
    loc: Loc = (*cfg, "image")
    where, key = doc.where(loc), dotted(loc, root="")
    service = stack or ""
    if isinstance(image, str) and image.strip():
        ref = expand(image.strip(), ctx, where=where, key=key)
        return ProjectImage(reference(ref, where=where, key=key), service, built=False)
    if isinstance(image, dict):
        name, dockerfile, context = (
            _text(doc, (*loc, k), image.get(k), ctx) for k in ("name", "dockerfile", "context")
        )
        if name and not dockerfile and not context:
            # a prebuilt image, used as is (as Simple Container does)
            return ProjectImage(reference(name, where=where, key=f"{key}.name"), service, built=False)
        base = _rooted(context or ".", ctx.project_root)
        file = _rooted(dockerfile or "Dockerfile", Path(base))
        for what, value, part in (("build context", base, "context"), ("Dockerfile", file, "dockerfile")):
            confine(Path(value), ctx.project_root, what=f"the {what}", key=f"{key}.{part}", where=where, regular=False)
        stack_name = repository(_known(stack, where), where=f"stack {stack!r}", key="stack")
        ref = naming.built(stack_name, what=f"stack {stack!r}", where=where)
        return ProjectImage(ref, service, True, file, base)
    raise ConfigError(
        "a single-image stack needs config.image",
        path=key,
        why=f"in {doc.where(cfg)}",
        fix="config:\n  image:\n    dockerfile: ${git:root}/Dockerfile\n    context: ${git:root}",
    )


def _text(doc: YamlDoc, loc: Loc, value: object, ctx: Context) -> str | None:
    if value is None or value == "":
        return None
    key = dotted(loc, root="")
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string", path=key, why=f"in {doc.where(loc)}")
    return expand(value.strip(), ctx, where=doc.where(loc), key=key) or None


def _rooted(value: str, base: Path) -> str:
    return posixpath.normpath(value if Path(value).is_absolute() else str(base / value))
