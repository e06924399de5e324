"""The known test and demo images, described as data (files and packages) so tests know the answers."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from testbed.oci import (
    Dir,
    Entry,
    File,
    FileMap,
    Format,
    Image,
    ImageIndex,
    Platform,
    RegistryClient,
    Symlink,
    build_image,
    build_index,
    build_layer,
)

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")
DEFAULT_TAG = "1.0.0"
SITE_PACKAGES = "usr/lib/python3.8/site-packages"
APK_DB = "/lib/apk/db/installed"
DPKG_STATUS = "/var/lib/dpkg/status"

# ---------------------------------------------------------------------------------------------
# What a test may assert on
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownPackage:
    """A package an SBOM of the image must list. `type` is Syft's package type (apk, deb, python,
    npm); `origin` is the source package when it differs (apk origin, deb Source), which is where
    vulnerability databases file OS advisories (e.g. libssl1.1 → openssl)."""

    name: str
    version: str
    type: Literal["apk", "deb", "python", "npm"]
    origin: str = ""
    license: str = ""
    location: str = ""  # the file in the image that records the package

    @property
    def source_name(self) -> str:
        return self.origin or self.name


@dataclass(frozen=True)
class KnownContents:
    """What one platform's image contains: its distro and its OS and language packages.
    `distro_version` is what Syft and Trivy report ("3.12.0"; for Debian both read /etc/debian_version:
    "12.5", while os-release says VERSION_ID="12"; advisories are filed under the major version)."""

    distro: str
    distro_version: str
    os_packages: tuple[KnownPackage, ...]
    language_packages: tuple[KnownPackage, ...] = ()

    @property
    def packages(self) -> tuple[KnownPackage, ...]:
        return self.os_packages + self.language_packages

    def get(self, name: str) -> KnownPackage:
        for package in self.packages:
            if package.name == name:
                return package
        raise KeyError(name)

    def name_versions(self) -> set[tuple[str, str]]:
        return {(p.name, p.version) for p in self.packages}


@dataclass(frozen=True)
class LayerSpec:
    comment: str
    files: Mapping[str, Entry] = field(repr=False)


@dataclass(frozen=True)
class PlatformSpec:
    platform: Platform
    layers: tuple[LayerSpec, ...]
    known: KnownContents
    cmd: tuple[str, ...] = ("/bin/sh",)
    working_dir: str = "/"


@dataclass(frozen=True)
class ImageSpec:
    """A named image: one platform (a manifest) or several (an index)."""

    name: str
    description: str
    platforms: tuple[PlatformSpec, ...]
    tag: str = DEFAULT_TAG

    @property
    def is_index(self) -> bool:
        return len(self.platforms) > 1

    def known(self, platform: str | Platform = AMD64) -> KnownContents:
        wanted = Platform.parse(platform) if isinstance(platform, str) else platform
        for spec in self.platforms:
            if spec.platform == wanted or (len(self.platforms) == 1 and wanted == AMD64):
                return spec.known
        raise KeyError(f"{self.name} has no platform {wanted}")


@dataclass(frozen=True)
class PushedImage:
    """An image in a registry: `ref` by tag, `by_digest` pinned. For an index, `platforms` maps
    "linux/amd64" etc. to each platform's manifest digest."""

    name: str
    host: str
    repository: str
    tag: str
    digest: str
    media_type: str
    platforms: Mapping[str, str]

    @property
    def ref(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"

    @property
    def by_digest(self) -> str:
        return f"{self.host}/{self.repository}@{self.digest}"

    @property
    def is_index(self) -> bool:
        return len(self.platforms) > 1

    def platform_digest(self, platform: str) -> str:
        """The manifest digest for "os/arch[/variant]" (a variant-less name matches any variant)."""
        wanted = Platform.parse(platform)
        for name, digest in self.platforms.items():
            have = Platform.parse(name)
            if have == wanted or (wanted.variant is None and have.os == wanted.os
                                  and have.architecture == wanted.architecture):
                return digest
        raise KeyError(f"{self.ref} has no platform {platform} (have: {', '.join(self.platforms)})")

    def platform_by_digest(self, platform: str) -> str:
        """host/repo@sha256:… of one platform's manifest."""
        return f"{self.host}/{self.repository}@{self.platform_digest(platform)}"

    def known(self, platform: str | Platform = AMD64) -> KnownContents:
        return spec(self.name).known(platform)


# ---------------------------------------------------------------------------------------------
# Alpine 3.12 rootfs pieces
# ---------------------------------------------------------------------------------------------

_APK_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class _Apk:
    name: str
    version: str
    origin: str
    license: str
    description: str
    url: str
    maintainer: str
    files: tuple[str, ...]  # "{arch}" is replaced by the apk arch; mode 0755 under bin/ and lib/
    links: tuple[tuple[str, str], ...] = ()  # (path, target), recorded in the db too
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()


_NCOPA = "Natanael Copa <ncopa@alpinelinux.org>"
_TIMO = "Timo Teräs <timo.teras@iki.fi>"
_APKS: dict[str, _Apk] = {
    "musl": _Apk("musl", "1.1.24-r9", "musl", "MIT", "the musl c library (libc) implementation",
                 "https://musl.libc.org/", _TIMO, ("lib/ld-musl-{arch}.so.1",),
                 links=(("lib/libc.musl-{arch}.so.1", "ld-musl-{arch}.so.1"),),
                 provides=("so:libc.musl-{arch}.so.1=1",)),
    "busybox": _Apk("busybox", "1.31.1-r19", "busybox", "GPL-2.0-only",
                    "Size optimized toolbox of many common UNIX utilities", "https://busybox.net/", _NCOPA,
                    ("bin/busybox", "etc/securetty"), depends=("so:libc.musl-{arch}.so.1",),
                    provides=("/bin/sh", "cmd:busybox=1.31.1-r19", "cmd:sh=1.31.1-r19")),
    "zlib": _Apk("zlib", "1.2.11-r3", "zlib", "Zlib", "A compression/decompression Library",
                 "https://zlib.net/", _NCOPA, ("lib/libz.so.1.2.11",),
                 links=(("lib/libz.so.1", "libz.so.1.2.11"),), depends=("so:libc.musl-{arch}.so.1",),
                 provides=("so:libz.so.1=1.2.11",)),
    "libcrypto1.1": _Apk("libcrypto1.1", "1.1.1g-r0", "openssl", "OpenSSL", "Crypto library from openssl",
                         "https://www.openssl.org/", _TIMO, ("lib/libcrypto.so.1.1", "etc/ssl/openssl.cnf"),
                         depends=("so:libc.musl-{arch}.so.1",), provides=("so:libcrypto.so.1.1=1.1",)),
    "libssl1.1": _Apk("libssl1.1", "1.1.1g-r0", "openssl", "OpenSSL", "SSL shared libraries",
                      "https://www.openssl.org/", _TIMO, ("lib/libssl.so.1.1",),
                      depends=("so:libc.musl-{arch}.so.1", "so:libcrypto.so.1.1"),
                      provides=("so:libssl.so.1.1=1.1",)),
    "ca-certificates-bundle": _Apk("ca-certificates-bundle", "20191127-r4", "ca-certificates",
                                   "MPL-2.0 AND MIT", "Pre generated bundle of Mozilla certificates",
                                   "https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/",
                                   _NCOPA, ("etc/ssl/certs/ca-certificates.crt",)),
}


def _placeholder(path: str) -> bytes:
    # Neutral text: no version strings, so Syft's binary classifiers find nothing of their own.
    return f"sc-ci test image placeholder for /{path}\n".encode()


def _q1(data: bytes) -> str:
    return "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode()  # noqa: S324 - apk's format


def _apk_db_entry(apk: _Apk, arch: str) -> tuple[str, dict[str, Entry]]:
    """One stanza of /lib/apk/db/installed plus the files it owns."""

    def sub(text: str) -> str:
        return text.replace("{arch}", arch)

    ident = f"{apk.name}-{apk.version}"
    lines = [
        f"C:{_q1(('control:' + ident).encode())}",
        f"P:{apk.name}",
        f"V:{apk.version}",
        f"A:{arch}",
        f"S:{100000 + len(ident) * 1000}",
        f"I:{300000 + len(ident) * 4096}",
        f"T:{apk.description}",
        f"U:{apk.url}",
        f"L:{apk.license}",
        f"o:{apk.origin}",
        f"m:{apk.maintainer}",
        "t:1590969600",
        f"c:{hashlib.sha1(ident.encode()).hexdigest()}",  # noqa: S324 - a stand-in git commit id
    ]
    if apk.depends:
        lines.append("D:" + " ".join(sub(d) for d in apk.depends))
    if apk.provides:
        lines.append("p:" + " ".join(sub(p) for p in apk.provides))
    owned: dict[str, Entry] = {}
    by_dir: dict[str, list[tuple[str, bytes, str]]] = {}  # dir → (name, content hashed by Z:, acl)
    for raw in apk.files:
        path = sub(raw)
        mode = 0o755 if path.startswith(("bin/", "lib/", "sbin/", "usr/bin/")) else 0o644
        data = _placeholder(path)
        owned[path] = File(data, mode)
        directory, _, base = path.rpartition("/")
        by_dir.setdefault(directory, []).append((base, data, f"0:0:{mode:o}"))
    for raw_path, raw_target in apk.links:
        path, target = sub(raw_path), sub(raw_target)
        owned[path] = Symlink(target)
        directory, _, base = path.rpartition("/")
        by_dir.setdefault(directory, []).append((base, target.encode(), "0:0:777"))
    for directory in sorted(by_dir):
        lines.append(f"F:{directory}")
        for base, content, acl in sorted(by_dir[directory]):
            lines += [f"R:{base}", f"a:{acl}", f"Z:{_q1(content)}"]
    return "\n".join(lines) + "\n", owned


def _alpine_base(
    arch_name: str, packages: Sequence[str],
) -> tuple[dict[str, Entry], tuple[KnownPackage, ...]]:
    arch = _APK_ARCH[arch_name]
    files: dict[str, Entry] = {
        "etc/os-release": (
            'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.12.0\nPRETTY_NAME="Alpine Linux v3.12"\n'
            'HOME_URL="https://alpinelinux.org/"\nBUG_REPORT_URL="https://bugs.alpinelinux.org/"\n'
        ),
        "etc/alpine-release": "3.12.0\n",
        "etc/apk/arch": f"{arch}\n",
        "etc/apk/repositories": (
            "https://dl-cdn.alpinelinux.org/alpine/v3.12/main\n"
            "https://dl-cdn.alpinelinux.org/alpine/v3.12/community\n"
        ),
        "etc/apk/world": "".join(f"{p}\n" for p in sorted(packages)),
        "etc/hostname": "localhost\n",
        "bin/sh": Symlink("/bin/busybox"),
        "tmp": Dir(0o1777),
    }
    stanzas: list[str] = []
    known: list[KnownPackage] = []
    for name in packages:
        apk = _APKS[name]
        stanza, owned = _apk_db_entry(apk, arch)
        stanzas.append(stanza)
        files.update(owned)
        origin = apk.origin if apk.origin != apk.name else ""
        known.append(KnownPackage(apk.name, apk.version, "apk", origin=origin, license=apk.license,
                                  location=APK_DB))
    files[APK_DB.lstrip("/")] = "\n".join(stanzas) + "\n"
    return files, tuple(known)


# ---------------------------------------------------------------------------------------------
# Language packages (as installed, so image catalogers find them)
# ---------------------------------------------------------------------------------------------


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist_info(
    name: str, version: str, *, summary: str, home: str, author: str, license_: str,
    modules: Mapping[str, str], requires: Sequence[str] = (),
) -> tuple[dict[str, Entry], KnownPackage]:
    """A wheel-installed package: module files + NAME-VERSION.dist-info (METADATA, WHEEL, RECORD, …)."""
    dist = f"{name}-{version}.dist-info"
    metadata = "".join([
        "Metadata-Version: 2.1\n",
        f"Name: {name}\n",
        f"Version: {version}\n",
        f"Summary: {summary}\n",
        f"Home-page: {home}\n",
        f"Author: {author}\n",
        f"License: {license_}\n",
        "Platform: UNKNOWN\n",
        "Classifier: Programming Language :: Python\n",
        "Classifier: Programming Language :: Python :: 3\n",
        *(f"Requires-Dist: {r}\n" for r in requires),
        "\n",
        f"{summary}\n",
    ])
    top_level = sorted({m.split("/")[0] for m in modules})
    contents: dict[str, bytes] = {path: text.encode() for path, text in modules.items()}
    contents[f"{dist}/METADATA"] = metadata.encode()
    contents[f"{dist}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: bdist_wheel (0.31.1)\n"
                                 b"Root-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n\n")
    contents[f"{dist}/INSTALLER"] = b"pip\n"
    contents[f"{dist}/top_level.txt"] = "".join(f"{t}\n" for t in top_level).encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in sorted(contents.items()))
    record += f"{dist}/RECORD,,\n"
    contents[f"{dist}/RECORD"] = record.encode()
    files: dict[str, Entry] = {f"{SITE_PACKAGES}/{path}": data for path, data in contents.items()}
    known = KnownPackage(name, version, "python", license=license_,
                         location=f"/{SITE_PACKAGES}/{dist}/METADATA")
    return files, known


def _python_layer() -> tuple[dict[str, Entry], tuple[KnownPackage, ...]]:
    req_files, requests_pkg = _dist_info(
        "requests", "2.19.1", summary="Python HTTP for Humans.", home="http://python-requests.org",
        author="Kenneth Reitz", license_="Apache 2.0",
        modules={
            "requests/__init__.py": "from .__version__ import __version__\nfrom .api import get, post\n",
            "requests/__version__.py": "__title__ = 'requests'\n__version__ = '2.19.1'\n",
            "requests/api.py": "def get(url, **kwargs):\n    raise NotImplementedError\n\n\n"
                               "def post(url, **kwargs):\n    raise NotImplementedError\n",
        },
        requires=("urllib3 (<1.25,>=1.21.1)",),
    )
    url_files, urllib3_pkg = _dist_info(
        "urllib3", "1.24.1", summary="HTTP library with thread-safe connection pooling, file post, and more.",
        home="https://urllib3.readthedocs.io/", author="Andrey Petrov", license_="MIT",
        modules={
            "urllib3/__init__.py": "__version__ = '1.24.1'\n",
            "urllib3/poolmanager.py": "class PoolManager:\n    pass\n",
        },
    )
    return {**req_files, **url_files}, (requests_pkg, urllib3_pkg)


def _npm_layer() -> tuple[dict[str, Entry], tuple[KnownPackage, ...]]:
    """/app with a package-lock.json (lockfileVersion 3, read in directory scans) and the installed
    node_modules/*/package.json (what image scans read)."""
    deps = {
        "lodash": ("4.17.15", "MIT", "Lodash modular utilities.",
                   "sha512-8xOcRHvCjnocdS5cpwXQXVzmmh5e5+saE2QGoeQmbKmRS6J3VQppPOIt0MnmE+4xlZoumy0GPG0D0MVIQbNA1A=="),
        "minimist": ("1.2.0", "MIT", "parse argument options",
                     "sha1-o1AIsg9BOD7sH7kU9M1d95omQoQ="),
    }
    lock = {
        "name": "demo-app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {"name": "demo-app", "version": "1.0.0",
                 "dependencies": {name: f"^{v[0]}" for name, v in deps.items()}},
            **{
                f"node_modules/{name}": {
                    "version": version,
                    "resolved": f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz",
                    "integrity": integrity,
                    "license": license_,
                }
                for name, (version, license_, _desc, integrity) in deps.items()
            },
        },
    }
    files: dict[str, Entry] = {
        "app/package-lock.json": json.dumps(lock, indent=2) + "\n",
        "app/server.js": "const _ = require('lodash');\nconsole.log(_.identity('sc-ci demo app'));\n",
    }
    known: list[KnownPackage] = []
    for name, (version, license_, desc, _integrity) in deps.items():
        manifest = {"name": name, "version": version, "description": desc, "license": license_,
                    "main": "index.js"}
        files[f"app/node_modules/{name}/package.json"] = json.dumps(manifest, indent=2) + "\n"
        files[f"app/node_modules/{name}/index.js"] = f"module.exports = {{}}; // {name} stand-in\n"
        known.append(KnownPackage(name, version, "npm", license=license_,
                                  location=f"/app/node_modules/{name}/package.json"))
    return files, tuple(known)


# ---------------------------------------------------------------------------------------------
# Debian 12 rootfs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Deb:
    name: str
    version: str
    source: str  # "" when equal to name
    arch: str  # "amd64" or "all"
    section: str
    size_kb: int
    license: str
    description: str
    files: tuple[str, ...]
    multi_arch: str = ""
    depends: str = ""


_DEBS = (
    _Deb("libc6", "2.36-9+deb12u4", "glibc", "amd64", "libs", 12985, "LGPL-2.1",
         "GNU C Library: Shared libraries",
         ("lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2"), multi_arch="same"),
    _Deb("zlib1g", "1:1.2.13.dfsg-1", "zlib", "amd64", "libs", 168, "Zlib",
         "compression library - runtime", ("usr/lib/x86_64-linux-gnu/libz.so.1.2.13",), multi_arch="same",
         depends="libc6 (>= 2.14)"),
    _Deb("libssl3", "3.0.11-1~deb12u2", "openssl", "amd64", "libs", 6159, "Apache-2.0",
         "Secure Sockets Layer toolkit - shared libraries",
         ("usr/lib/x86_64-linux-gnu/libssl.so.3", "usr/lib/x86_64-linux-gnu/libcrypto.so.3"),
         multi_arch="same", depends="libc6 (>= 2.34)"),
    _Deb("openssl", "3.0.11-1~deb12u2", "", "amd64", "utils", 2303, "Apache-2.0",
         "Secure Sockets Layer toolkit - cryptographic utility", ("usr/bin/openssl", "etc/ssl/openssl.cnf"),
         depends="libc6 (>= 2.34), libssl3 (>= 3.0.9)"),
    _Deb("ca-certificates", "20230311", "", "all", "misc", 382, "MPL-2.0",
         "Common CA certificates", ("etc/ssl/certs/ca-certificates.crt",),
         depends="openssl (>= 1.1.1)"),
)


def _debian_rootfs() -> tuple[dict[str, Entry], tuple[KnownPackage, ...]]:
    files: dict[str, Entry] = {
        "etc/os-release": (
            'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
            'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
            'HOME_URL="https://www.debian.org/"\nSUPPORT_URL="https://www.debian.org/support"\n'
            'BUG_REPORT_URL="https://bugs.debian.org/"\n'
        ),
        "etc/debian_version": "12.5\n",
        "etc/hostname": "localhost\n",
        "tmp": Dir(0o1777),
    }
    stanzas: list[str] = []
    known: list[KnownPackage] = []
    for deb in _DEBS:
        lines = [
            f"Package: {deb.name}",
            "Status: install ok installed",
            f"Priority: {'required' if deb.name == 'libc6' else 'optional'}",
            f"Section: {deb.section}",
            f"Installed-Size: {deb.size_kb}",
            "Maintainer: Debian Maintainers <debian-devel@lists.debian.org>",
            f"Architecture: {deb.arch}",
        ]
        if deb.multi_arch:
            lines.append(f"Multi-Arch: {deb.multi_arch}")
        if deb.source:
            lines.append(f"Source: {deb.source}")
        lines.append(f"Version: {deb.version}")
        if deb.depends:
            lines.append(f"Depends: {deb.depends}")
        lines += [f"Description: {deb.description}", f" {deb.description} (sc-ci test package)."]
        stanzas.append("\n".join(lines) + "\n")
        owned = [*deb.files, f"usr/share/doc/{deb.name}/copyright"]
        for path in deb.files:
            files[path] = File(_placeholder(path), 0o755 if "/bin/" in f"/{path}" else 0o644)
        files[f"usr/share/doc/{deb.name}/copyright"] = (
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            f"Upstream-Name: {deb.source or deb.name}\n\nFiles: *\nCopyright: the {deb.name} authors\n"
            f"License: {deb.license}\n"
        )
        list_name = f"{deb.name}:{deb.arch}" if deb.multi_arch == "same" else deb.name
        files[f"var/lib/dpkg/info/{list_name}.list"] = "".join(f"/{p}\n" for p in [".", *sorted(owned)])
        files[f"var/lib/dpkg/info/{list_name}.md5sums"] = "".join(
            f"{hashlib.md5(_placeholder(p)).hexdigest()}  {p}\n" for p in sorted(deb.files)  # noqa: S324
        )
        known.append(KnownPackage(deb.name, deb.version, "deb", origin=deb.source, license=deb.license,
                                  location=DPKG_STATUS))
    files[DPKG_STATUS.lstrip("/")] = "\n".join(stanzas)
    return files, tuple(known)


# ---------------------------------------------------------------------------------------------
# The images
# ---------------------------------------------------------------------------------------------

SERVICE_COUNT = 9
IMAGE_NAMES: tuple[str, ...] = (
    "alpine-app", "debian-app", "multiarch", *(f"service-{i}" for i in range(1, SERVICE_COUNT + 1)),
)


def _alpine_known(os_pkgs: tuple[KnownPackage, ...], lang: tuple[KnownPackage, ...] = ()) -> KnownContents:
    return KnownContents("alpine", "3.12.0", os_pkgs, lang)


def _alpine_app() -> ImageSpec:
    base, os_pkgs = _alpine_base("amd64", ("musl", "busybox", "zlib", "libcrypto1.1", "libssl1.1"))
    py, py_pkgs = _python_layer()
    npm, npm_pkgs = _npm_layer()
    layer_specs = (
        LayerSpec("alpine 3.12 base (apk: musl busybox zlib libcrypto1.1 libssl1.1)", base),
        LayerSpec("python site-packages: requests 2.19.1, urllib3 1.24.1", py),
        LayerSpec("node app: lodash 4.17.15, minimist 1.2.0", npm),
    )
    return ImageSpec(
        "alpine-app", "Alpine 3.12 with apk, Python and npm packages that have known advisories",
        (PlatformSpec(AMD64, layer_specs, _alpine_known(os_pkgs, py_pkgs + npm_pkgs),
                      cmd=("/bin/sh", "-c", "node /app/server.js"), working_dir="/app"),),
    )


def _debian_app() -> ImageSpec:
    files, pkgs = _debian_rootfs()
    return ImageSpec(
        "debian-app",
        "Debian 12 with a dpkg status database (libc6, zlib1g, libssl3, openssl, ca-certificates)",
        (PlatformSpec(AMD64, (LayerSpec("debian 12 base (dpkg)", files),),
                      KnownContents("debian", "12.5", pkgs), cmd=("/usr/bin/openssl", "version")),),
    )


def _multiarch() -> ImageSpec:
    platforms: list[PlatformSpec] = []
    for plat, packages in (
        (AMD64, ("musl", "busybox", "zlib")),
        (ARM64, ("musl", "busybox", "zlib", "ca-certificates-bundle")),
    ):
        base, os_pkgs = _alpine_base(plat.architecture, packages)
        marker = {"etc/sc-ci-platform": f"{plat}\n"}
        platforms.append(PlatformSpec(
            plat,
            (LayerSpec(f"alpine 3.12 base for {plat}", base), LayerSpec(f"platform marker {plat}", marker)),
            _alpine_known(os_pkgs),
        ))
    return ImageSpec("multiarch",
                     "OCI index: linux/amd64 and linux/arm64 (arm64 adds ca-certificates-bundle)",
                     tuple(platforms))


def _service(number: int) -> ImageSpec:
    base, os_pkgs = _alpine_base("amd64", ("musl", "busybox"))
    name = f"service-{number}"
    app: dict[str, Entry] = {
        f"srv/{name}/app.conf": f"name={name}\nport={8080 + number}\n",
        f"usr/local/bin/{name}": File(f"#!/bin/sh\necho {name} on port {8080 + number}\n".encode(), 0o755),
    }
    return ImageSpec(
        name, f"small Alpine service image #{number} for stack and parallel tests",
        (PlatformSpec(AMD64, (LayerSpec("alpine 3.12 base (apk: musl busybox)", base),
                              LayerSpec(f"{name} files", app)),
                      _alpine_known(os_pkgs), cmd=(f"/usr/local/bin/{name}",)),),
    )


@functools.cache
def specs() -> Mapping[str, ImageSpec]:
    """Every known image by name (built once, on first use)."""
    table = {"alpine-app": _alpine_app(), "debian-app": _debian_app(), "multiarch": _multiarch()}
    table.update({f"service-{i}": _service(i) for i in range(1, SERVICE_COUNT + 1)})
    assert tuple(table) == IMAGE_NAMES
    return MappingProxyType(table)


def spec(name: str) -> ImageSpec:
    try:
        return specs()[name]
    except KeyError:
        raise KeyError(f"unknown test image {name!r}; known: {', '.join(IMAGE_NAMES)}") from None


class _KnownPackages(Mapping[str, KnownContents]):
    """name → KnownContents of the default platform (linux/amd64), computed on first access."""

    def __getitem__(self, name: str) -> KnownContents:
        return spec(name).known()

    def __iter__(self) -> Iterator[str]:
        return iter(IMAGE_NAMES)

    def __len__(self) -> int:
        return len(IMAGE_NAMES)


KNOWN_PACKAGES: Mapping[str, KnownContents] = _KnownPackages()


def known_packages(name: str, platform: str | Platform = AMD64) -> KnownContents:
    return spec(name).known(platform)


# ---------------------------------------------------------------------------------------------
# Build and push
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _build_cached(name: str, fmt: Format) -> Image | ImageIndex:
    return _build(spec(name), None, fmt)


def _build(image_spec: ImageSpec, extra_files: FileMap | None, fmt: Format) -> Image | ImageIndex:
    images: list[Image] = []
    for plat in image_spec.platforms:
        layers = [build_layer(layer.files, comment=f"sc-ci demo: {layer.comment}") for layer in plat.layers]
        if extra_files:
            layers.append(build_layer(extra_files, comment="sc-ci demo: extra files"))
        labels = {
            "org.opencontainers.image.title": image_spec.name,
            "org.opencontainers.image.description": image_spec.description,
            "org.opencontainers.image.version": image_spec.tag,
        }
        images.append(build_image(
            layers, platform=plat.platform, cmd=plat.cmd, working_dir=plat.working_dir, labels=labels,
            annotations={"org.opencontainers.image.title": image_spec.name}, fmt=fmt,
        ))
    if image_spec.is_index:
        return build_index(images, fmt=fmt)
    return images[0]


def build(name: str, *, extra_files: FileMap | None = None, fmt: Format = "oci") -> Image | ImageIndex:
    """The image (or index) for `name`, in memory. `extra_files` adds one last layer (per platform)."""
    if extra_files:
        return _build(spec(name), extra_files, fmt)
    return _build_cached(name, fmt)


def push_image(
    registry_host: str,
    name: str,
    *,
    repository: str | None = None,
    tag: str | None = None,
    extra_files: FileMap | None = None,
    fmt: Format = "oci",
    client: RegistryClient | None = None,
    auth: tuple[str, str] | None = None,
    scheme: Literal["http", "https"] = "http",
    verify: bool | str = True,
) -> PushedImage:
    """Build image `name` and push it to `registry_host` as `repository:tag` (default demo/NAME:1.0.0)."""
    image_spec = spec(name)
    artifact = build(name, extra_files=extra_files, fmt=fmt)
    repo = repository or f"demo/{name}"
    chosen_tag = tag or image_spec.tag
    own = client is None
    pusher = client or RegistryClient(registry_host, scheme=scheme, auth=auth, verify=verify)
    try:
        digest = pusher.push(repo, chosen_tag, artifact)
    finally:
        if own:
            pusher.close()
    if isinstance(artifact, ImageIndex):
        platforms = {str(img.platform): img.digest for img in artifact.images}
    else:
        platforms = {str(artifact.platform): artifact.digest}
    return PushedImage(name, registry_host, repo, chosen_tag, digest, artifact.media_type,
                       MappingProxyType(platforms))


def push_demo_images(
    registry_host: str,
    *,
    repo_prefix: str = "demo",
    names: Sequence[str] = IMAGE_NAMES,
    fmt: Format = "oci",
    auth: tuple[str, str] | None = None,
    scheme: Literal["http", "https"] = "http",
    verify: bool | str = True,
    workers: int = 4,
) -> dict[str, PushedImage]:
    """Push every known image (or `names`) as REPO_PREFIX/NAME:1.0.0; returns name → PushedImage.
    Images go up in parallel (`workers` threads, one HTTP client each)."""

    def one(name: str) -> PushedImage:
        return push_image(registry_host, name, repository=f"{repo_prefix}/{name}", fmt=fmt, auth=auth,
                          scheme=scheme, verify=verify)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sc-ci-push") as pool:
        results = list(pool.map(one, names))
    return {pushed.name: pushed for pushed in results}
