"""The images of a cloud-compose stack, as Simple Container derives them from the services in `runs`."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sc_ci.config.diagnose import Loc, dotted, suggest
from sc_ci.config.paths import confine, shown
from sc_ci.config.placeholders import Context, expand, interpolate
from sc_ci.config.yamlio import YamlDoc, load_yaml
from sc_ci.errors import ConfigError

# Docker reference grammar, loosely: what may appear in an image reference at all (no spaces, no controls).
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,511}")
# A path component of a repository name (distribution spec); `<stack>--<service>` must be one.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True)
class Service:
    """A compose service named in `runs`: built (`build:`) or an upstream `image:` used as is."""

    name: str
    image: str | None  # the interpolated `image:` (upstream images only)
    dockerfile: str | None
    context: str | None
    where: str


def compose_path(raw: str, *, stack_dir: Path, ctx: Context, where: str, key: str) -> tuple[Path, Path]:
    """`dockerComposeFile` resolved as upstream does: placeholders, then relative to `.sc/stacks/<stack>/`.

    Returns the file (symlinks resolved, confined to the project root) and the compose working directory
    (the stack directory for a relative path, the file's own directory for an absolute one).
    """
    text = expand(raw.strip(), ctx, where=where, key=key)
    if Path(text).is_absolute():
        path = Path(posixpath.normpath(text))
        workdir = path.parent
    else:
        path = Path(posixpath.normpath(str(stack_dir / text)))
        workdir = stack_dir
    fix = (
        "keep the compose file inside the repository and write it as ${git:root}/<path> or relative to "
        ".sc/stacks/<stack>/; if the project is a subdirectory of a larger checkout, run from the work-tree root"
    )
    real = confine(path, ctx.project_root, what="docker-compose file", key=key, where=where, fix=fix)
    return real, workdir


def services(
    doc: YamlDoc,
    cfg: Loc,
    config: Mapping[object, object],
    *,
    stack_dir: Path,
    ctx: Context,
) -> list[Service]:
    """The services of `runs` in `dockerComposeFile` (pkg/clouds/k8s/types.go ConvertComposeToContainers)."""
    key = dotted((*cfg, "dockerComposeFile"), root="")
    raw = config.get("dockerComposeFile")
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(
            "a cloud-compose stack needs dockerComposeFile",
            path=key,
            why=f"in {doc.where(cfg)}; Simple Container reads the services listed in runs from it",
            fix="config:\n  dockerComposeFile: ${git:root}/docker-compose.yaml",
        )
    runs = _runs(doc, cfg, config)
    path, workdir = compose_path(
        raw, stack_dir=stack_dir, ctx=ctx, where=doc.where((*cfg, "dockerComposeFile")), key=key
    )
    if not path.is_file():
        raise ConfigError(
            f"docker-compose file not found: {shown(str(path), 160)}",
            path=key,
            why=f"dockerComposeFile at {doc.where((*cfg, 'dockerComposeFile'))} is {shown(raw, 160)}; "
            f"a relative path is relative to the stack directory {stack_dir} (as Simple Container reads it)",
            fix="write it as ${git:root}/docker-compose.yaml, or relative to .sc/stacks/<stack>/ "
            "(e.g. ../../../docker-compose.yaml for a file at the project root)",
        )
    compose = load_yaml(path, purpose="docker-compose file")
    defined = compose.get(("services",))
    if not isinstance(defined, dict):
        raise ConfigError(
            "services must be a mapping",
            path="services",
            why=f"in {compose.where(('services',))}",
            fix="services:\n  api:\n    build: .",
        )
    return [
        _service(compose, defined, name, runs_at=doc.where((*cfg, "runs")), workdir=workdir, ctx=ctx) for name in runs
    ]


def _runs(doc: YamlDoc, cfg: Loc, config: Mapping[object, object]) -> list[str]:
    runs = config.get("runs")
    key = dotted((*cfg, "runs"), root="")
    if runs is None or runs == []:
        raise ConfigError(
            "a cloud-compose stack needs runs",
            path=key,
            why=f"in {doc.where(cfg)}; Simple Container deploys (and builds) only the compose services listed "
            "in runs, so without it there is no image",
            fix="runs:\n  - api\n  - worker",
        )
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise ConfigError(
            "runs must be a list of compose service names",
            path=key,
            why=f"in {doc.where((*cfg, 'runs'))}",
            fix="runs:\n  - api\n  - worker",
        )
    for index, name in enumerate(runs):
        if not _SERVICE.fullmatch(name):
            raise ConfigError(
                f"runs lists {shown(name)}, which is not a compose service name",
                path=f"{key}[{index}]",
                why=f"in {doc.where((*cfg, 'runs', index))}; service names are letters, digits, '.', '_', '-'",
                fix="list the services by their names in the compose file",
            )
    return list(dict.fromkeys(runs))


def _service(
    compose: YamlDoc, defined: Mapping[object, object], name: str, *, runs_at: str, workdir: Path, ctx: Context
) -> Service:
    service = defined.get(name)
    if not isinstance(service, dict):
        names = [str(s) for s in defined]
        guess = suggest(name, names)
        listed = ", ".join(shown(n, 40) for n in names[:20]) or "none"
        raise ConfigError(
            f"service {shown(name)} (listed in runs) is not in {compose.path}",
            path="runs",
            why=f"runs at {runs_at}; services defined: {listed}",
            fix=f"did you mean {shown(guess)}?" if guess else f"add the service to {compose.path} or drop it from runs",
        )
    loc: Loc = ("services", name)
    where = compose.where(loc)
    build = service.get("build")
    if build is None:
        image = service.get("image")
        if not isinstance(image, str) or not image.strip():
            raise ConfigError(
                f"compose service {shown(name)} has neither build nor image",
                path=f"services.{name}",
                why=f"in {where}; Simple Container needs one of them (pkg/clouds/aws/ecs_fargate.go)",
                fix=f"services:\n  {name}:\n    build: .",
            )
        image_at = compose.where((*loc, "image"))
        ref = interpolate(image.strip(), ctx.env, where=image_at, key=f"services.{name}.image")
        return Service(name, reference(ref, where=image_at, key=f"services.{name}.image"), None, None, where)
    context, dockerfile = _build(compose, loc, build, ctx=ctx)
    base = context if Path(context).is_absolute() else posixpath.normpath(str(workdir / context))
    file = dockerfile if Path(dockerfile).is_absolute() else posixpath.normpath(str(Path(base) / dockerfile))
    for what, value, part in (("build context", base, "context"), ("Dockerfile", file, "dockerfile")):
        confine(
            Path(value),
            ctx.project_root,
            what=f"the {what} of compose service {shown(name)}",
            key=f"services.{name}.build.{part}",
            where=compose.where((*loc, "build")),
            regular=False,
        )
    return Service(name, None, file, base, where)


def _build(compose: YamlDoc, loc: Loc, build: object, *, ctx: Context) -> tuple[str, str]:
    """(context, dockerfile) of a compose `build:` (string or mapping), compose defaults applied."""
    at = compose.where((*loc, "build"))
    key = f"{dotted(loc, root='')}.build"
    if isinstance(build, str):
        raw_context: object = build
        raw_file: object = None
    elif isinstance(build, dict):
        raw_context, raw_file = build.get("context"), build.get("dockerfile")
    else:
        raise ConfigError(
            "build must be a path or a mapping",
            path=key,
            why=f"in {at}",
            fix="build:\n  context: .\n  dockerfile: Dockerfile",
        )
    values = []
    for part, raw, default in (("context", raw_context, "."), ("dockerfile", raw_file, "Dockerfile")):
        if raw is None or raw == "":
            values.append(default)
        elif isinstance(raw, str):
            values.append(interpolate(raw.strip(), ctx.env, where=at, key=f"{key}.{part}") or default)
        else:
            raise ConfigError(f"build.{part} must be a string", path=f"{key}.{part}", why=f"in {at}")
    return values[0], values[1]


def reference(ref: str, *, where: str, key: str) -> str:
    """`ref` if it can be an image reference; ConfigError (the value escaped and bounded) if not."""
    if _REFERENCE.fullmatch(ref) and "//" not in ref:
        return ref
    raise ConfigError(
        f"{shown(ref)} is not an image reference",
        path=key,
        why=f"at {where}" + ("; it still holds a placeholder" if "${" in ref else ""),
        fix="write registry/name:tag (or name@sha256:…) without spaces or unexpanded placeholders",
    )


def repository(name: str, *, where: str, key: str) -> str:
    """`name` if it is a valid repository path component (lower case; `<stack>--<service>`)."""
    if _COMPONENT.fullmatch(name) and len(name) <= 128:
        return name
    raise ConfigError(
        f"the image name {shown(name)} is not a valid repository name",
        path=key,
        why=f"for {where}; Simple Container pushes <registry>/<stack>--<service>:<version>, and registries "
        "accept only lower-case letters, digits and single '.', '_' or '-' separators in a name",
        fix="use lower-case stack and service names",
    )
