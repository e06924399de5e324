"""The advisories the test-bed vulnerability DBs hold, and the findings each scanner must report per image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from testbed.images import AMD64, KnownContents, known_packages, spec
from testbed.oci import Platform

Scanner = Literal["grype", "trivy"]
Ecosystem = Literal["apk", "deb", "python", "npm"]
Severity = Literal["Low", "Medium", "High", "Critical"]

ALPINE_RELEASE = "3.12"  # advisories are filed under major.minor (trivy "alpine 3.12", grype alpine 3.12)
DEBIAN_RELEASE = "12"  # and under the major version for Debian (trivy "debian 12", grype debian 12)


@dataclass(frozen=True)
class Advisory:
    """One advisory as both DBs record it. `package` is the name it is filed under: the apk origin, the
    deb Source, or the language package. `ghsa` is set for language ecosystems: grype (GitHub provider)
    reports the GHSA with the CVE as related, trivy reports the CVE (the GHSA as a vendor id).
    `vulnerable` is a grype-style constraint. `hits` says whether the version in the test images is
    affected (checked by hand; the non-hits prove that fixed versions are not reported)."""

    cve: str
    ecosystem: Ecosystem
    package: str
    vulnerable: str
    fixed: str
    severity: Severity
    title: str
    hits: bool = True
    ghsa: str = ""
    cvss_v3: str = ""

    @property
    def distro(self) -> str:
        return {"apk": "alpine", "deb": "debian"}.get(self.ecosystem, "")

    @property
    def release(self) -> str:
        return {"apk": ALPINE_RELEASE, "deb": DEBIAN_RELEASE}.get(self.ecosystem, "")

    def reported_id(self, scanner: Scanner) -> str:
        return self.ghsa if (scanner == "grype" and self.ghsa) else self.cve


ADVISORIES: tuple[Advisory, ...] = (
    # Alpine 3.12 (secdb), filed under the apk origin
    Advisory("CVE-2020-28928", "apk", "musl", "< 1.1.24-r10", "1.1.24-r10", "Medium",
             "musl: wcsnrtombs() buffer overflow", cvss_v3="CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H"),
    Advisory("CVE-2021-28831", "apk", "busybox", "< 1.31.1-r20", "1.31.1-r20", "High",
             "busybox: invalid free or segfault via malformed gzip data",
             cvss_v3="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"),
    Advisory("CVE-2018-25032", "apk", "zlib", "< 1.2.12-r0", "1.2.12-r0", "High",
             "zlib: memory corruption when compressing with many distant matches",
             cvss_v3="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"),
    Advisory("CVE-2020-1971", "apk", "openssl", "< 1.1.1i-r0", "1.1.1i-r0", "Medium",
             "openssl: EDIPARTYNAME NULL pointer dereference",
             cvss_v3="CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H"),
    Advisory("CVE-2020-1967", "apk", "openssl", "< 1.1.1g-r0", "1.1.1g-r0", "High",
             "openssl: SSL_check_chain() NULL pointer dereference", hits=False),
    # Debian 12 (security tracker), filed under the source package
    Advisory("CVE-2023-5678", "deb", "openssl", "< 3.0.13-1~deb12u1", "3.0.13-1~deb12u1", "Medium",
             "openssl: excessive time spent in DH check / generation with large Q parameter value",
             cvss_v3="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"),
    Advisory("CVE-2024-2961", "deb", "glibc", "< 2.36-9+deb12u7", "2.36-9+deb12u7", "High",
             "glibc: out of bounds write in iconv ISO-2022-CN-EXT",
             cvss_v3="CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"),
    Advisory("CVE-2023-6246", "deb", "glibc", "< 2.36-9+deb12u4", "2.36-9+deb12u4", "High",
             "glibc: heap overflow in __vsyslog_internal", hits=False),
    # GitHub Security Advisories (PyPI, npm)
    Advisory("CVE-2018-18074", "python", "requests", "< 2.20.0", "2.20.0", "High",
             "Insufficiently Protected Credentials in Requests", ghsa="GHSA-x84v-xcm2-53pg",
             cvss_v3="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"),
    Advisory("CVE-2019-11324", "python", "urllib3", "< 1.24.2", "1.24.2", "High",
             "Improper Certificate Validation in urllib3", ghsa="GHSA-mh33-7rrq-662w",
             cvss_v3="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"),
    Advisory("CVE-2014-1829", "python", "requests", "< 2.3.0", "2.3.0", "Medium",
             "Exposure of Sensitive Information in Requests", ghsa="GHSA-652x-xj99-gmcc", hits=False),
    Advisory("CVE-2020-8203", "npm", "lodash", "< 4.17.19", "4.17.19", "High",
             "Prototype Pollution in lodash", ghsa="GHSA-p6mc-m468-83gw",
             cvss_v3="CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H"),
    Advisory("CVE-2020-7598", "npm", "minimist", ">= 1.0.0, < 1.2.3", "1.2.3", "Medium",
             "Prototype Pollution in minimist", ghsa="GHSA-vh95-rmgr-6w4m",
             cvss_v3="CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:L/A:L"),
)


@dataclass(frozen=True, order=True)
class KnownFinding:
    """One finding a scanner must report: the id it reports (GHSA or CVE), the CVE behind it, the
    installed package and version, the fixed version, and the severity in title case."""

    id: str
    cve: str
    package: str
    version: str
    fixed: str
    severity: Severity


def expected(scanner: Scanner, image: str, platform: str = str(AMD64)) -> frozenset[KnownFinding]:
    """Exactly what `scanner` reports for test image `image` (one platform) with the test-bed DB."""
    contents = _contents(image, platform)
    found: set[KnownFinding] = set()
    for package in contents.packages:
        for adv in ADVISORIES:
            if not adv.hits or adv.ecosystem != package.type or adv.package != package.source_name:
                continue
            if adv.distro and adv.distro != contents.distro:
                continue
            found.add(KnownFinding(adv.reported_id(scanner), adv.cve, package.name, package.version, adv.fixed,
                                   adv.severity))
    return frozenset(found)


def _contents(image: str, platform: str) -> KnownContents:
    """The image's packages on `platform` ("linux/arm64" matches "linux/arm64/v8")."""
    wanted = Platform.parse(platform)
    for plat in spec(image).platforms:
        have = plat.platform
        same_arch = (have.os, have.architecture) == (wanted.os, wanted.architecture)
        if have == wanted or (wanted.variant is None and same_arch):
            return plat.known
    return known_packages(image, platform)


def advisory(vuln_id: str) -> Advisory:
    """The advisory with this CVE or GHSA id."""
    for adv in ADVISORIES:
        if vuln_id in (adv.cve, adv.ghsa):
            return adv
    raise KeyError(vuln_id)
