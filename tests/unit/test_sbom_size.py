"""The large-SBOM policy and its settings: maxSize parsing, oversize fallbacks, documented defaults."""

from __future__ import annotations

import pytest

from sc_ci.config import SecurityConfig
from sc_ci.config.loader import load
from sc_ci.errors import ConfigError, StepFailed
from sc_ci.sbom.size import Action, decide, human

MIB = 1024 * 1024


def test_under_the_limit_is_attached_whole_without_warning() -> None:
    decision = decide(4 * MIB, 4 * MIB, "digest", tlog=True, source="x")
    assert decision.action is Action.ATTACH
    assert decision.warning == ""


def test_digest_fallback_warns_and_names_the_setting() -> None:
    decision = decide(5 * MIB, 4 * MIB, "digest", tlog=True, source="the SBOM of app")
    assert decision.action is Action.DIGEST
    assert "5.0 MiB, above security.sbom.attach.maxSize (4.0 MiB)" in decision.warning
    assert "attesting its SHA-256" in decision.warning


def test_no_tlog_fallback_skips_the_log_only_when_it_is_on() -> None:
    assert decide(5 * MIB, MIB, "no-tlog", tlog=True, source="x").action is Action.ATTACH_NO_TLOG
    off = decide(5 * MIB, MIB, "no-tlog", tlog=False, source="x")
    assert off.action is Action.ATTACH
    assert "already off" in off.warning


def test_fail_is_a_step_failure_with_the_yaml_fix() -> None:
    with pytest.raises(StepFailed) as caught:
        decide(5 * MIB, MIB, "fail", tlog=True, source="the SBOM")
    assert "above security.sbom.attach.maxSize" in caught.value.what
    assert "oversize: digest" in caught.value.fix


def test_human_sizes() -> None:
    assert (human(12), human(2048), human(5 * MIB), human(3 * 1024 * MIB)) == ("12 B", "2.0 KiB", "5.0 MiB",
                                                                               "3.0 GiB")


def test_documented_defaults() -> None:
    sbom = SecurityConfig.model_validate({}).sbom
    assert sbom.attach.max_size == 4 * MIB
    assert sbom.attach.oversize == "digest"
    assert sbom.cyclonedx_version == "1.6"
    assert sbom.extra_formats == ()
    assert sbom.formats == ("cyclonedx-json",)


@pytest.mark.parametrize(("text", "size"), [
    ("4MiB", 4 * MIB), ("500 KB", 500_000), ("1.5mib", int(1.5 * MIB)), ("2048", 2048), ("1GB", 10**9),
])
def test_max_size_units(text: str, size: int) -> None:
    assert load(env={"SC_CI_SECURITY__SBOM__ATTACH__MAXSIZE": text}).security.sbom.attach.max_size == size


@pytest.mark.parametrize("text", ["lots", "-1MB", "0", "4 parsecs"])
def test_bad_max_size_names_the_key(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(env={"SC_CI_SECURITY__SBOM__ATTACH__MAXSIZE": text})
    assert "security.sbom.attach.maxSize" in caught.value.what
    assert "4MiB" in caught.value.fix


def test_extra_formats_from_env_list_and_yaml_float_version() -> None:
    sbom = load(env={"SC_CI_SECURITY__SBOM__EXTRAFORMATS": "SPDX-json, syft-json, cyclonedx-json"}).security.sbom
    assert sbom.formats == ("cyclonedx-json", "spdx-json", "syft-json")
    assert SecurityConfig.model_validate({"sbom": {"cyclonedxVersion": 1.5}}).sbom.cyclonedx_version == "1.5"


def test_bad_extra_format_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        load(env={"SC_CI_SECURITY__SBOM__EXTRAFORMATS": "xml"})
    assert "security.sbom.extraFormats[0]" in caught.value.what
    assert "cyclonedx-json, spdx-json, syft-json" in caught.value.what


def test_bad_oversize_and_version() -> None:
    with pytest.raises(ConfigError, match=r"security\.sbom\.attach\.oversize"):
        load(env={"SC_CI_SECURITY__SBOM__ATTACH__OVERSIZE": "truncate"})
    with pytest.raises(ConfigError, match=r"security\.sbom\.cyclonedxVersion"):
        load(env={"SC_CI_SECURITY__SBOM__CYCLONEDXVERSION": "2.0"})
