"""Reading a Simple Container project in place: client.yaml security blocks, env overrides, images."""

from __future__ import annotations

from pathlib import Path

import pytest

from sc_ci.config import load
from sc_ci.config.project import interpolate
from sc_ci.errors import ConfigError

COMPOSE = """\
services:
  api:
    build: .
  worker:
    build: ./worker
    image: ${REGISTRY_HOST:-ghcr.io/acme}/worker:${TAG}
  db:
    image: postgres:16
"""

CLIENT = """\
schemaVersion: 1.0
security:
  signing:
    enabled: true
  scan:
    enabled: true
    tools:
      - name: grype
        failOn: critical
stacks:
  staging: &staging
    type: cloud-compose
    parent: acme/infrastructure
    config: &cfg
      dockerComposeFile: ${git:root}/docker-compose.yaml
      uses: [mongodb]
      runs: [api, worker]
  prod:
    <<: *staging
    config:
      <<: *cfg
      security:
        scan:
          tools:
            - name: grype
              failOn: high
            - name: trivy
        policy:
          failOpen: false
"""

SINGLE = """\
schemaVersion: 1.0
stacks:
  prod:
    type: single-image
    template: lambda-eu
    config:
      image:
        dockerfile: ${git:root}/src/Dockerfile
        context: ${git:root}/src
      security:
        sbom:
          enabled: true
  prebuilt:
    type: single-image
    config:
      image:
        name: nginx:1.27
  direct:
    type: single-image
    config:
      image: registry.example.com/team/fn:9
"""

NAMING = {"TAG": "7", "INPUT_REGISTRY": "ghcr.io/acme/", "INPUT_VERSION": "2026.1.7"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".sc" / "stacks" / "app").mkdir(parents=True)
    (tmp_path / ".sc" / "stacks" / "fn").mkdir(parents=True)
    (tmp_path / "docker-compose.yaml").write_text(COMPOSE, encoding="utf-8")
    (tmp_path / ".sc" / "stacks" / "app" / "client.yaml").write_text(CLIENT, encoding="utf-8")
    (tmp_path / ".sc" / "stacks" / "fn" / "client.yaml").write_text(SINGLE, encoding="utf-8")
    return tmp_path


def test_compose_images_service_image_wins_else_registry_name_version(project: Path) -> None:
    cfg = load(env=NAMING, stack="app", environment="staging", project_root=project)
    assert cfg.images == ("ghcr.io/acme/api:2026.1.7", "ghcr.io/acme/worker:7")


def test_top_level_security_applies_to_every_environment(project: Path) -> None:
    sec = load(env=NAMING, stack="app", environment="staging", project_root=project).security
    assert sec.signing.enabled
    assert sec.signing.keyless
    assert sec.scan.enabled
    assert [(t.name, t.fail_on) for t in sec.scan.tools] == [("grype", "critical")]
    assert sec.fail_open("scan") is True


def test_environment_security_overrides_top_level_per_key(project: Path) -> None:
    cfg = load(env=NAMING, stack="app", environment="prod", project_root=project)
    sec = cfg.security
    assert sec.signing.enabled  # kept from the top-level block
    assert [(t.name, t.fail_on) for t in sec.scan.tools] == [("grype", "high"), ("trivy", None)]
    assert sec.fail_open("scan") is False
    assert cfg.origin("scan.tools") == "yaml"
    assert cfg.describe_origin("policy.failOpen").endswith("client.yaml:29:11")
    assert cfg.images == ("ghcr.io/acme/api:2026.1.7", "ghcr.io/acme/worker:7")


def test_inputs_still_override_the_project(project: Path) -> None:
    cfg = load(env={**NAMING, "INPUT_SIGN": "false"}, stack="app", environment="prod", project_root=project)
    assert not cfg.security.signing.enabled
    assert cfg.origin("signing.enabled") == "input"


def test_stack_and_environment_can_come_from_inputs(project: Path) -> None:
    env = {**NAMING, "INPUT_STACK": "app", "INPUT_ENVIRONMENT": "prod"}
    assert load(env=env, project_root=project).security.fail_open("signing") is False


def test_runs_absent_means_services_with_a_build(project: Path) -> None:
    client = project / ".sc" / "stacks" / "app" / "client.yaml"
    client.write_text(CLIENT.replace("      runs: [api, worker]\n", ""), encoding="utf-8")
    cfg = load(env=NAMING, stack="app", environment="staging", project_root=project)
    assert cfg.images == ("ghcr.io/acme/api:2026.1.7", "ghcr.io/acme/worker:7")


def test_relative_compose_path_is_relative_to_the_project_root(project: Path) -> None:
    client = project / ".sc" / "stacks" / "app" / "client.yaml"
    client.write_text(
        CLIENT.replace("${git:root}/docker-compose.yaml", "docker-compose.yaml"), encoding="utf-8"
    )
    assert len(load(env=NAMING, stack="app", environment="staging", project_root=project).images) == 2


def test_single_image_built_from_dockerfile_is_registry_stack_version(project: Path) -> None:
    cfg = load(env=NAMING, stack="fn", environment="prod", project_root=project)
    assert cfg.images == ("ghcr.io/acme/fn:2026.1.7",)
    assert cfg.security.sbom.enabled
    assert cfg.origin("sbom.enabled") == "yaml"


@pytest.mark.parametrize(
    ("environment", "image"), [("prebuilt", "nginx:1.27"), ("direct", "registry.example.com/team/fn:9")]
)
def test_single_image_prebuilt_or_string_is_used_as_is(project: Path, environment: str, image: str) -> None:
    assert load(env={}, stack="fn", environment=environment, project_root=project).images == (image,)


def test_explicit_images_win_and_skip_naming(project: Path) -> None:
    cfg = load(env={"INPUT_IMAGES": "x/y:1"}, stack="app", environment="prod", project_root=project)
    assert cfg.images == ("x/y:1",)


def test_without_environment_only_the_top_level_block_is_read(project: Path) -> None:
    cfg = load(env={}, stack="app", project_root=project)
    assert cfg.security.signing.enabled
    assert cfg.images == ()
    assert [t.fail_on for t in cfg.security.scan.tools] == ["critical"]


def test_client_yaml_given_as_config_path_is_detected(project: Path) -> None:
    cfg = load(env=NAMING, config_path=".sc/stacks/fn/client.yaml", environment="prod", project_root=project)
    assert cfg.images == ("ghcr.io/acme/fn:2026.1.7",)  # stack name inferred from .sc/stacks/<stack>/


def test_bare_security_document(tmp_path: Path) -> None:
    (tmp_path / "sec.yaml").write_text("security:\n  provenance:\n    enabled: true\n", encoding="utf-8")
    cfg = load(env={}, config_path=tmp_path / "sec.yaml")
    assert cfg.security.provenance.enabled
    assert cfg.images == ()


def test_empty_sections_mean_defaults(tmp_path: Path) -> None:
    (tmp_path / "sec.yaml").write_text("security:\n  signing:\n  sbom: {}\n", encoding="utf-8")
    assert not load(env={}, config_path=tmp_path / "sec.yaml").security.signing.enabled


def test_compose_interpolation_forms() -> None:
    env = {"A": "a", "EMPTY": ""}
    assert interpolate("${A}/$A:${EMPTY-x}${EMPTY:-y}", env, where="f") == "a/a:y"
    assert interpolate("${UNSET:-d}${A:+alt}${UNSET+no}$$", env, where="f") == "dalt$"
    with pytest.raises(ConfigError, match=r"\$\{UNSET\} is not set"):
        interpolate("img:${UNSET}", env, where="f")
    with pytest.raises(ConfigError, match="need a tag"):
        interpolate("img:${EMPTY:?need a tag}", env, where="f")
