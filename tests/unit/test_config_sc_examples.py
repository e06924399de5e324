"""Every cloud-compose and single-image environment of Simple Container's own examples loads, or says why."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sc_ci.config import load
from sc_ci.config.project import ImageNaming, read_stack
from sc_ci.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "sc-examples"
ENV = {"INPUT_REGISTRY": "registry.example.com/acme", "INPUT_VERSION": "1.0.0"}
KINDS = ("cloud-compose", "single-image")


@dataclass(frozen=True)
class Case:
    example: str  # the example's directory, relative to docs/docs/examples/
    stack: str
    environment: str

    def __str__(self) -> str:
        return f"{self.example}:{self.environment}"


def _client_yaml(example: Path) -> tuple[Path, str]:
    laid_out = sorted(example.glob(".sc/stacks/*/client.yaml"))
    if laid_out:
        return laid_out[0], laid_out[0].parent.name
    return example / "client.yaml", example.name


def _cases() -> list[Case]:
    cases = []
    for client in sorted(EXAMPLES.rglob("client.yaml")):
        example = client.parent.parent.parent.parent if client.parent.parent.name == "stacks" else client.parent
        path, stack = _client_yaml(example)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for environment, spec in (data.get("stacks") or {}).items():
            if isinstance(spec, dict) and spec.get("type") in KINDS:
                cases.append(Case(example.relative_to(EXAMPLES).as_posix(), stack, str(environment)))
    return cases


CASES = _cases()
# Simple Container's examples that cannot load, and why (each is a bug in the example, not in the reader):
EXPECTED_FAILURES = {
    # no dockerComposeFile at all: upstream reads the stack directory itself as a compose file and fails
    **{
        f"kubernetes-affinity/multi-tier-node-isolation:{e}": "needs dockerComposeFile"
        for e in (
            "processing-production",
            "telegram-bot-production",
            "whitelabel-client-a",
            "whitelabel-client-b",
            "processing-staging",
            "telegram-bot-staging",
        )
    },
    # `./docker-compose.yaml` is relative to .sc/stacks/vpa-demo/, but the file sits at the example's root
    **{f"kubernetes-vpa:{e}": "docker-compose file not found" for e in ("production", "staging", "development")},
}


def _project(case: Case, tmp_path: Path) -> Path:
    """The example as a project: laid-out examples as they are; a flat one (client.yaml beside its files)
    gets client.yaml in .sc/stacks/<example>/ and its other files both there and at the work-tree root."""
    source = EXAMPLES / case.example
    root = tmp_path / "project"
    shutil.copytree(source, root)
    if not (source / ".sc").is_dir():
        stack_dir = root / ".sc" / "stacks" / case.stack
        shutil.copytree(source, stack_dir)
        (root / "client.yaml").unlink()
    return root


def test_the_examples_hold_34_image_environments() -> None:
    assert len(CASES) == 34
    assert len({c.example for c in CASES}) == 15


@pytest.mark.parametrize("case", CASES, ids=str)
def test_example_environment_loads_or_fails_with_a_config_error(case: Case, tmp_path: Path) -> None:
    root = _project(case, tmp_path)
    expected = EXPECTED_FAILURES.get(str(case))
    if expected is not None:
        with pytest.raises(ConfigError, match=expected) as info:
            load(env=ENV, stack=case.stack, environment=case.environment, project_root=root)
        assert info.value.fix
        assert info.value.path.startswith(f"stacks.{case.environment}.config.")
        return
    cfg = load(env=ENV, stack=case.stack, environment=case.environment, project_root=root)
    assert cfg.images
    project = read_stack(root, case.stack, case.environment, ImageNaming(ENV["INPUT_REGISTRY"], "1.0.0", {}))
    for image in project.project_images:
        if image.built:
            assert image.ref == f"registry.example.com/acme/{case.stack}" + (
                f"--{image.service}:1.0.0" if image.service != case.stack or "--" in image.ref else ":1.0.0"
            )
            assert image.dockerfile
            assert image.context
        else:
            assert not image.ref.startswith("registry.example.com/")


def test_how_many_example_environments_load(tmp_path: Path) -> None:
    loaded, failed = [], {}
    for index, case in enumerate(CASES):
        try:
            load(
                env=ENV,
                stack=case.stack,
                environment=case.environment,
                project_root=_project(case, tmp_path / str(index)),
            )
        except ConfigError as exc:  # anything else is a traceback and fails the test
            failed[str(case)] = exc.what
        else:
            loaded.append(str(case))
    assert (len(loaded), len(CASES)) == (25, 34)
    assert sorted(failed) == sorted(EXPECTED_FAILURES)


def test_upstream_images_of_the_examples_are_not_built(tmp_path: Path) -> None:
    blog = next(c for c in CASES if c.example == "ecs-deployments/blog-platform" and c.environment == "prod")
    got = read_stack(_project(blog, tmp_path), blog.stack, "prod", ImageNaming("r.example", None, {}))
    assert [(i.ref, i.built) for i in got.project_images] == [
        ("r.example/blog-platform--caddy:latest", True),
        ("ghost:5-alpine", False),
    ]
    vectordb = next(c for c in CASES if c.example == "ecs-deployments/vector-database")
    got = read_stack(
        _project(vectordb, tmp_path / "v"), vectordb.stack, vectordb.environment, ImageNaming(None, None, {})
    )
    assert got.project_images[0].ref == "milvusdb/milvus:latest"  # no registry needed: nothing is built
