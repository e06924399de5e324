"""Reading a Simple Container project in place: client.yaml security blocks, env overrides, images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from sc_ci import secrets
from sc_ci.config import load
from sc_ci.config.project import ImageNaming, ProjectImage, interpolate, read_stack
from sc_ci.errors import ConfigError
from sc_ci.secrets import Secret

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


def test_compose_built_services_are_registry_stack_dash_dash_service_version(project: Path) -> None:
    cfg = load(env=NAMING, stack="app", environment="staging", project_root=project)
    # a service's own `image:` does not rename a built image (images_build.go: "<stack>--<service>")
    assert cfg.images == ("ghcr.io/acme/app--api:2026.1.7", "ghcr.io/acme/app--worker:2026.1.7")


def test_project_images_say_what_is_built_and_from_where(project: Path) -> None:
    naming = ImageNaming("ghcr.io/acme", "3", NAMING)
    got = read_stack(project, "app", "staging", naming)
    root = str(project.resolve())
    assert got.project_images == (
        ProjectImage("ghcr.io/acme/app--api:3", "api", True, f"{root}/Dockerfile", root),
        ProjectImage("ghcr.io/acme/app--worker:3", "worker", True, f"{root}/worker/Dockerfile", f"{root}/worker"),
    )
    assert got.images == tuple(i.ref for i in got.project_images)


def test_upstream_compose_images_are_reported_not_built(project: Path) -> None:
    client = project / ".sc" / "stacks" / "app" / "client.yaml"
    client.write_text(CLIENT.replace("runs: [api, worker]", "runs: [api, db]"), encoding="utf-8")
    got = read_stack(project, "app", "staging", ImageNaming("ghcr.io/acme", None, NAMING))
    assert got.images == ("ghcr.io/acme/app--api:latest", "postgres:16")  # version defaults to latest
    assert [(i.service, i.built) for i in got.project_images] == [("api", True), ("db", False)]
    assert got.project_images[1].dockerfile is None


def test_only_upstream_images_need_no_registry(project: Path) -> None:
    client = project / ".sc" / "stacks" / "app" / "client.yaml"
    client.write_text(CLIENT.replace("runs: [api, worker]", "runs: [db]"), encoding="utf-8")
    assert load(env={}, stack="app", environment="staging", project_root=project).images == ("postgres:16",)


def test_built_images_need_a_registry(project: Path) -> None:
    with pytest.raises(ConfigError, match="no registry") as info:
        load(env={"INPUT_VERSION": "1"}, stack="app", environment="staging", project_root=project)
    assert info.value.path == "registry"
    assert "SC_CI_REGISTRY" in info.value.fix


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
    assert cfg.images == ("ghcr.io/acme/app--api:2026.1.7", "ghcr.io/acme/app--worker:2026.1.7")


def test_inputs_still_override_the_project(project: Path) -> None:
    cfg = load(env={**NAMING, "INPUT_SIGN": "false"}, stack="app", environment="prod", project_root=project)
    assert not cfg.security.signing.enabled
    assert cfg.origin("signing.enabled") == "input"


def test_stack_and_environment_can_come_from_inputs(project: Path) -> None:
    env = {**NAMING, "INPUT_STACK": "app", "INPUT_ENVIRONMENT": "prod"}
    assert load(env=env, project_root=project).security.fail_open("signing") is False


def test_runs_absent_is_an_error_since_nothing_would_be_deployed(project: Path) -> None:
    client = project / ".sc" / "stacks" / "app" / "client.yaml"
    client.write_text(CLIENT.replace("      runs: [api, worker]\n", ""), encoding="utf-8")
    with pytest.raises(ConfigError, match="needs runs") as info:
        load(env=NAMING, stack="app", environment="staging", project_root=project)
    assert info.value.path == "stacks.staging.config.runs"
    assert "runs:" in info.value.fix


def test_relative_compose_path_is_relative_to_the_stack_directory(project: Path) -> None:
    client = project / ".sc" / "stacks" / "app" / "client.yaml"
    client.write_text(
        CLIENT.replace("${git:root}/docker-compose.yaml", "../../../docker-compose.yaml"), encoding="utf-8"
    )
    assert len(load(env=NAMING, stack="app", environment="staging", project_root=project).images) == 2
    client.write_text(CLIENT.replace("${git:root}/docker-compose.yaml", "./compose.yaml"), encoding="utf-8")
    (client.parent / "compose.yaml").write_text("services:\n  api:\n    build: .\n  worker:\n    build: .\n")
    got = read_stack(project, "app", "staging", ImageNaming("r.io", "1", {}))
    stack_dir = str((client.parent).resolve())
    assert got.project_images[0].context == stack_dir  # compose's working dir is the stack dir (compose.go)
    client.write_text(CLIENT.replace("${git:root}/docker-compose.yaml", "docker-compose.yaml"), encoding="utf-8")
    with pytest.raises(ConfigError, match="docker-compose file not found") as info:
        load(env=NAMING, stack="app", environment="staging", project_root=project)
    assert "relative to the stack directory" in info.value.why


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


# ------------------------------------------------------------------------------------------ placeholders


def _client(project: Path, text: str, stack: str = "app") -> Path:
    path = project / ".sc" / "stacks" / stack / "client.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _git(project: Path, *, branch: str = "feature/login", sha: str = "0123456789abcdef" * 2 + "01234567") -> str:
    (project / ".git" / "refs" / "heads" / Path(branch).parent).mkdir(parents=True, exist_ok=True)
    (project / ".git" / "HEAD").write_text(f"ref: refs/heads/{branch}\n", encoding="utf-8")
    (project / ".git" / "refs" / "heads" / branch).write_text(sha + "\n", encoding="utf-8")
    return sha


def test_env_placeholder_with_default_and_git_values(project: Path) -> None:
    sha = _git(project)
    _client(
        project,
        "stacks:\n  prod:\n    type: single-image\n    config:\n      image:\n"
        "        name: ${env:REG:ghcr.io/acme}/fn:${git:commit.short}-${git:branch}\n",
        "fn",
    )
    got = load(env={}, stack="fn", environment="prod", project_root=project).images
    assert got == (f"ghcr.io/acme/fn:{sha[:7]}-feature-login",)
    got = load(env={"REG": "quay.io/x"}, stack="fn", environment="prod", project_root=project).images
    assert got == (f"quay.io/x/fn:{sha[:7]}-feature-login",)


def test_git_commit_full_from_packed_refs_and_git_root_is_the_work_tree(project: Path) -> None:
    sha = "f" * 40
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (project / ".git" / "packed-refs").write_text(f"# pack-refs\n{sha} refs/heads/main\n", encoding="utf-8")
    _client(project, "stacks:\n  p:\n    type: single-image\n    config:\n      image: x/y:${git:commit.full}\n", "fn")
    assert load(env={}, stack="fn", environment="p", project_root=project).images == (f"x/y:{sha}",)


def test_git_root_falls_back_to_the_project_root(project: Path) -> None:
    # no .git above tmp_path: ${git:root} is the project root (the fixture's compose is found there)
    assert len(load(env=NAMING, stack="app", environment="staging", project_root=project).images) == 2


def test_unknown_git_value_and_deploy_time_placeholders_are_config_errors(project: Path) -> None:
    _client(project, "stacks:\n  p:\n    type: single-image\n    config:\n      image: x/y:${git:commit.short}\n", "fn")
    with pytest.raises(ConfigError, match="cannot be resolved") as info:
        load(env={}, stack="fn", environment="p", project_root=project)
    assert "actions/checkout" in info.value.fix
    _client(project, "stacks:\n  p:\n    type: single-image\n    config:\n      image: ${resource:reg.url}/y\n", "fn")
    with pytest.raises(ConfigError, match="not expanded here"):
        load(env={}, stack="fn", environment="p", project_root=project)


def test_unset_env_placeholder_without_default_is_an_error(project: Path) -> None:
    _client(project, "stacks:\n  p:\n    type: single-image\n    config:\n      image: ${env:REG}/y:1\n", "fn")
    with pytest.raises(ConfigError, match=r"\$\{env:REG\} is not set") as info:
        load(env={}, stack="fn", environment="p", project_root=project)
    assert info.value.path == "stacks.p.config.image"


def test_anchors_merge_keys_and_environment_security_override(project: Path) -> None:
    cfg = load(env=NAMING, stack="app", environment="prod", project_root=project)  # prod is `<<: *staging`
    assert cfg.images == ("ghcr.io/acme/app--api:2026.1.7", "ghcr.io/acme/app--worker:2026.1.7")
    assert cfg.security.fail_open("scan") is False


# ----------------------------------------------------------------------------------- hostile repositories

SENTINEL = "TOP-SECRET-FILE-CONTENT-4242"


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory outside the project holding files the project must never read."""
    base = tmp_path_factory.mktemp("outside")
    (base / "client.yaml").write_text(f"stacks:\n  prod:\n    type: static\n# {SENTINEL}\n", encoding="utf-8")
    (base / "compose.yaml").write_text(f"services:\n  {SENTINEL}:\n    image: x\n", encoding="utf-8")
    (base / "Dockerfile").write_text(f"FROM {SENTINEL}\n", encoding="utf-8")
    return base


def _safe(error: ConfigError, *hidden: str) -> ConfigError:
    """The error cannot forge CI log lines, is bounded, and shows none of `hidden` (file content, values)."""
    text = error.diagnostics()
    assert len(text) < 3000
    for line in text.splitlines():
        assert not line.lstrip().startswith("::"), line
        assert line.isprintable(), repr(line)
    for value in (SENTINEL, *hidden):
        assert value not in text
    return error


def _refused(
    project: Path,
    *,
    env: Mapping[str, str] | None = None,
    stack: str = "app",
    environment: str = "staging",
    match: str = "",
    hidden: tuple[str, ...] = (),
) -> ConfigError:
    with pytest.raises(ConfigError, match=match) as info:
        load(env={**NAMING, **(env or {})}, stack=stack, environment=environment, project_root=project)
    return _safe(info.value, *hidden)


def _compose_at(project: Path, where: str) -> None:
    _client(project, CLIENT.replace("${git:root}/docker-compose.yaml", where))


def test_client_yaml_symlinked_outside_is_refused(project: Path, outside: Path) -> None:
    client = project / ".sc" / "stacks" / "app" / "client.yaml"
    client.unlink()
    client.symlink_to(outside / "client.yaml")
    error = _refused(project, match="outside the project root")
    assert error.path == "stack"
    assert "symbolic link" in error.why


def test_stack_directory_symlinked_outside_is_refused(project: Path, outside: Path) -> None:
    (project / ".sc" / "stacks" / "evil").symlink_to(outside)
    _refused(project, stack="evil", environment="prod", match="outside the project root")


def test_sc_directory_symlinked_outside_is_refused(tmp_path: Path, outside: Path) -> None:
    (outside / "stacks" / "app").mkdir(parents=True)
    (outside / "stacks" / "app" / "client.yaml").write_text(f"# {SENTINEL}\nstacks: {{}}\n", encoding="utf-8")
    (tmp_path / ".sc").symlink_to(outside)
    _refused(tmp_path, match="outside the project root")


@pytest.mark.parametrize(
    "where",
    [
        "/etc/passwd",
        "../../../../../../../../etc/passwd",
        "${git:root}/../outside.yaml",
        "${project:root}/../../etc/hostname",
        "/proc/self/environ",
    ],
)
def test_compose_paths_leaving_the_root_are_refused(project: Path, where: str) -> None:
    _compose_at(project, where)
    error = _refused(project, match="outside the project root", hidden=("root:x:0:0",))
    assert error.path == "stacks.staging.config.dockerComposeFile"


def test_compose_dotdot_that_stays_inside_is_just_not_found(project: Path) -> None:
    _compose_at(project, "../../etc/passwd")  # .sc/stacks/app/../../etc/passwd = <root>/.sc/etc/passwd
    _refused(project, match="docker-compose file not found", hidden=("root:x:0:0",))


def test_symlinked_compose_file_is_refused(project: Path, outside: Path) -> None:
    (project / "docker-compose.yaml").unlink()
    (project / "docker-compose.yaml").symlink_to(outside / "compose.yaml")
    error = _refused(project, match="outside the project root")
    assert "symbolic link" in error.why


def test_compose_under_a_symlinked_directory_is_refused(project: Path, outside: Path) -> None:
    (project / "deploy").symlink_to(outside)
    _compose_at(project, "${git:root}/deploy/compose.yaml")
    _refused(project, match="outside the project root")


def test_compose_symlink_to_a_device_is_refused(project: Path) -> None:
    (project / "docker-compose.yaml").unlink()
    (project / "docker-compose.yaml").symlink_to("/dev/zero")
    _refused(project, match="outside the project root")


def test_compose_that_is_a_directory_is_refused(project: Path) -> None:
    (project / "compose.d").mkdir()
    _compose_at(project, "${git:root}/compose.d")
    _refused(project, match="not a regular file")


def test_oversized_compose_file_is_refused_unread(project: Path) -> None:
    with (project / "docker-compose.yaml").open("ab") as handle:
        handle.truncate(5 * 1024 * 1024)
    _refused(project, match="too large")


def test_compose_file_name_with_control_characters_is_refused(project: Path) -> None:
    (project / "evil\n::add-mask::x.yaml").write_text(COMPOSE, encoding="utf-8")
    _compose_at(project, '"${git:root}/evil\\n::add-mask::x.yaml"')
    _refused(project, match="control characters")


@pytest.mark.parametrize(
    "stack",
    [
        "../x",
        "..",
        "a/b",
        "a\nb",
        "::add-mask::x",
        "a\x00b",
        "a\x1b[31mb",
        ".hidden",
        "x" * 64,
        "",
        "a..b",
        "\u202eabc",
    ],
)
def test_hostile_stack_names_are_refused_before_any_file_is_touched(
    tmp_path: Path, stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_io(*_: object, **__: object) -> None:
        raise AssertionError("a file was touched")

    monkeypatch.setattr("sc_ci.config.project.load_yaml", no_io)
    monkeypatch.setattr("sc_ci.config.project.confine", no_io)
    error = _refused(tmp_path, stack=stack, match="stack name")
    assert error.path == "stack"


@pytest.mark.parametrize("environment", ["../prod", "prod\n::error::pwned", "a/b", "::set-env name=X::1"])
def test_hostile_environment_names_are_refused(project: Path, environment: str) -> None:
    error = _refused(project, environment=environment, match="environment name")
    assert error.path == "environment"


def test_hostile_keys_in_the_file_are_escaped_when_listed(project: Path) -> None:
    _client(project, 'stacks:\n  "ok\\n::add-mask::x": {}\n  "\\u001b[2Jclear": {}\n')
    _refused(project, environment="prod", match="not found")


@pytest.mark.parametrize(
    ("image", "env"),
    [
        ("ghcr.io/acme/x:${GITHUB_TOKEN}", {"GITHUB_TOKEN": "ghp_abcdefghijklmnop"}),
        ("ghcr.io/acme/x:${AWS_SECRET_ACCESS_KEY:-1}", {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIabcdef"}),
        ("${REGISTRY_PASSWORD}/x", {"REGISTRY_PASSWORD": "hunter2hunter2"}),
        ("x:${ACTIONS_ID_TOKEN_REQUEST_URL}", {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://t.example/abc123"}),
        ("x:$CI_JOB_JWT", {"CI_JOB_JWT": "eyJhbGciOi.eyJzdWIi.sig"}),
        ("x:${my_api_key:+y}", {"my_api_key": "k-1234567890"}),
        ("x:${DOCKER_AUTH_CONFIG}", {"DOCKER_AUTH_CONFIG": '{"auths":{}}'}),
    ],
)
def test_compose_interpolation_refuses_credential_names(project: Path, image: str, env: Mapping[str, str]) -> None:
    (project / "docker-compose.yaml").write_text(f"services:\n  api:\n    image: '{image}'\n", encoding="utf-8")
    _client(project, CLIENT.replace("runs: [api, worker]", "runs: [api]"))
    _refused(project, env=env, match="looks like a credential", hidden=tuple(env.values()))


def test_compose_interpolation_refuses_a_registered_secret_value(project: Path) -> None:
    secrets.reset_for_tests()
    try:
        Secret("s3cr3t-value-99", name="cosign password")
        (project / "docker-compose.yaml").write_text("services:\n  db:\n    image: pg:${TAG}\n", encoding="utf-8")
        _client(project, CLIENT.replace("runs: [api, worker]", "runs: [db]"))
        _refused(project, env={"TAG": "s3cr3t-value-99"}, match="holds a secret value", hidden=("s3cr3t-value-99",))
    finally:
        secrets.reset_for_tests()


def test_env_placeholder_refuses_credential_names_and_secret_values(project: Path) -> None:
    _compose_at(project, "${env:DEPLOY_TOKEN}/docker-compose.yaml")
    _refused(project, env={"DEPLOY_TOKEN": "tok-123456789"}, match="looks like a credential", hidden=("tok-123456789",))
    secrets.reset_for_tests()
    try:
        Secret("very-secret-tag", name="x")
        _client(project, "stacks:\n  p:\n    type: single-image\n    config:\n      image: x/y:${env:TAG}\n", "fn")
        _refused(
            project,
            env={"TAG": "very-secret-tag"},
            stack="fn",
            environment="p",
            match="holds a secret value",
            hidden=("very-secret-tag",),
        )
    finally:
        secrets.reset_for_tests()


def test_required_variable_message_is_escaped_and_bounded() -> None:
    message = "::add-mask::x\n::error file=a::pwned " + "A" * 5000
    with pytest.raises(ConfigError) as info:
        interpolate("img:${TAG:?" + message + "}", {}, where="f")
    error = _safe(info.value)
    assert "\\n::error" in error.what
    assert len(error.what) < 300


def test_interpolated_value_with_a_newline_is_not_an_image_reference(project: Path) -> None:
    (project / "docker-compose.yaml").write_text("services:\n  db:\n    image: pg:${TAG}\n", encoding="utf-8")
    _client(project, CLIENT.replace("runs: [api, worker]", "runs: [db]"))
    error = _refused(project, env={"TAG": "1\n::set-output name=image::evil"}, match="not an image reference")
    assert "\\n::set-output" in error.what


def test_hostile_service_names_in_runs_and_compose_are_escaped(project: Path) -> None:
    _client(project, CLIENT.replace("runs: [api, worker]", 'runs: ["a\\n::add-mask::b"]'))
    _refused(project, match="not a compose service name")
    (project / "docker-compose.yaml").write_text(
        'services:\n  "x\\n::error::y":\n    image: a\n  "\\u001b]8;;http://e\\u0007":\n    image: b\n',
        encoding="utf-8",
    )
    _client(project, CLIENT.replace("runs: [api, worker]", "runs: [apx]"))
    _refused(project, match="is not in")


def test_secret_placeholder_in_compose_path_is_not_expanded(project: Path) -> None:
    _compose_at(project, "${secret:compose-path}")
    _refused(project, match="not expanded here")


@pytest.mark.parametrize("context", ["../../..", "/etc"])
def test_build_context_outside_the_root_is_refused(project: Path, context: str) -> None:
    (project / "docker-compose.yaml").write_text(
        f"services:\n  api:\n    build:\n      context: {context}\n", encoding="utf-8"
    )
    _client(project, CLIENT.replace("runs: [api, worker]", "runs: [api]"))
    _refused(project, match="outside the project root")


def test_single_image_dockerfile_outside_the_root_is_refused(project: Path, outside: Path) -> None:
    _client(
        project,
        f"stacks:\n  p:\n    type: single-image\n    config:\n      image:\n        dockerfile: {outside}/Dockerfile\n",
        "fn",
    )
    _refused(project, stack="fn", environment="p", match="outside the project root")


def test_explicit_config_symlinked_outside_is_refused(project: Path, outside: Path) -> None:
    (project / "sec.yaml").symlink_to(outside / "client.yaml")
    with pytest.raises(ConfigError, match="outside the project root") as info:
        load(env={}, config_path="sec.yaml", project_root=project)
    _safe(info.value)


def test_hostile_version_and_registry_are_escaped(project: Path) -> None:
    _refused(project, env={"INPUT_VERSION": "1\n::add-mask::x"}, match="not a valid image tag")
    _refused(project, env={"INPUT_REGISTRY": "https://evil\n::x"}, match="not a registry prefix")


def test_upper_case_stack_makes_no_invalid_repository_name(project: Path) -> None:
    _client(project, CLIENT, "App")
    _refused(project, stack="App", match="not a valid repository name")
