"""The engine with fake steps: ordering, dependency waits, overlap across images, per-resource bounds,
dependency gating, fail-open per feature, gates, fail-fast, upstream images, broken steps; plus the policy,
shards, the cache, tag names, manifests and the summary renderers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sc_ci.engine import executor, gittag
from sc_ci.engine.cache import Cache
from sc_ci.engine.executor import Slots
from sc_ci.engine.plan import Plan
from sc_ci.engine.policy import GateTripped, Policy, RequiredFailed, verdict
from sc_ci.errors import StepFailed, ToolError, UsageError
from sc_ci.imageref import ImageRef
from sc_ci.report import manifest, release
from sc_ci.results.run import PlannedImage, Shard
from sc_ci.results.step import Outcome, StepResult
from sc_ci.steps import registry
from sc_ci.steps.interface import Resource

DIGEST = "sha256:" + "a" * 64


@dataclass
class Clock:
    """Records when each (step, image) ran, and how many steps of each resource ran at once."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    spans: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    running: dict[Resource, int] = field(default_factory=dict)
    peak: dict[Resource, int] = field(default_factory=dict)
    together: set[frozenset[tuple[str, str]]] = field(default_factory=set)
    live: set[tuple[str, str]] = field(default_factory=set)

    def enter(self, key: tuple[str, str], resource: Resource) -> float:
        with self.lock:
            self.running[resource] = self.running.get(resource, 0) + 1
            self.peak[resource] = max(self.peak.get(resource, 0), self.running[resource])
            for other in self.live:
                self.together.add(frozenset({key, other}))
            self.live.add(key)
        return time.monotonic()

    def leave(self, key: tuple[str, str], resource: Resource, started: float) -> None:
        with self.lock:
            self.running[resource] -= 1
            self.live.discard(key)
            self.spans[key] = (started, time.monotonic())


def fake(name_: str, *, feature_: str = "signing", resource_: Resource = Resource.NETWORK,
         requires_: tuple[str, ...] = (), after_: tuple[str, ...] = (), signs_: bool = True,
         seconds: float = 0.02, fail: Mapping[str, Exception] | None = None, clock: Clock | None = None) -> Any:
    """A step class: sleeps, records its span, and fails on the images named in `fail`."""

    class Fake:
        name: ClassVar[str] = name_
        feature: ClassVar[str] = feature_
        tools: tuple[str, ...] = ()
        resource: ClassVar[Resource] = resource_
        requires: ClassVar[tuple[str, ...]] = requires_
        after: ClassVar[tuple[str, ...]] = after_
        signs: ClassVar[bool] = signs_

        def enabled(self, ctx: object) -> bool:
            return True

        def check(self, ctx: object) -> None:
            pass

        def prepare(self, ctx: object) -> None:
            pass

        def commands(self, ctx: object, image: PlannedImage) -> list[list[str]]:
            return [[name_, image.name]]

        def run(self, ctx: object, image: PlannedImage,
                prior: Mapping[str, Sequence[StepResult]]) -> list[StepResult]:
            key = (name_, image.given)
            started = clock.enter(key, resource_) if clock else time.monotonic()
            try:
                time.sleep(seconds)
                error = (fail or {}).get(image.given)
                if error is not None:
                    assert isinstance(error, StepFailed | ToolError)
                    return [StepResult(name_, image.name, Outcome.FAILED, str(error), error=error)]
                return [StepResult(name_, image.name, Outcome.OK, f"{name_} ok (saw {sorted(prior)})")]
            finally:
                if clock:
                    clock.leave(key, resource_, started)

    return Fake()


def images(*names: str, upstream: frozenset[str] = frozenset()) -> tuple[PlannedImage, ...]:
    return tuple(PlannedImage(ImageRef("reg.example.com", f"team/{n}", digest=DIGEST), n, n not in upstream)
                 for n in names)


def plan(steps: Sequence[Any], imgs: tuple[PlannedImage, ...], policy: Policy | None = None,
         broken: Mapping[str, Any] | None = None) -> Plan:
    return Plan(imgs, tuple(steps), (), None, policy or Policy.closed(), False, None, dict(broken or {}))


DEFAULT_SLOTS = Slots(2, 4)


def run(p: Plan, slots: Slots = DEFAULT_SLOTS) -> tuple[StepResult, ...]:
    return executor.execute(p, object(), slots)  # type: ignore[arg-type]  # fake steps ignore the context


def outcome(results: Sequence[StepResult], step: str, image: str) -> StepResult:
    return next(r for r in results if r.step == step and r.image.startswith(f"reg.example.com/team/{image}@"))


FEATURES = {"scan": "scan", "sign": "signing", "sbom": "sbom", "provenance": "provenance", "verify": "verify"}


@pytest.fixture(autouse=True)
def _features(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "FEATURES", {**registry.FEATURES, **FEATURES})


# ---------------------------------------------------------------------------------------------- executor


def test_results_come_in_image_then_spec_order_and_dependencies_are_waited_for() -> None:
    clock = Clock()
    steps = [fake("scan", feature_="scan", resource_=Resource.CPU, clock=clock, signs_=False),
             fake("sign", after_=("scan",), clock=clock),
             fake("verify", feature_="verify", requires_=("sign",), clock=clock)]
    results = run(plan(steps, images("a", "b")))
    assert [(r.step, r.image.split("/")[-1][0]) for r in results] == [
        ("scan", "a"), ("sign", "a"), ("verify", "a"), ("scan", "b"), ("sign", "b"), ("verify", "b")]
    for image in ("a", "b"):
        assert clock.spans[("scan", image)][1] <= clock.spans[("sign", image)][0]
        assert clock.spans[("sign", image)][1] <= clock.spans[("verify", image)][0]
    assert "saw ['sign']" in outcome(results, "verify", "a").summary  # prior holds what it depends on


def test_image_b_cpu_work_overlaps_image_a_network_work() -> None:
    """Per-image pipelines: an SBOM (CPU) of one image runs while another image is being signed."""
    clock = Clock()
    steps = [fake("sbom", feature_="sbom", resource_=Resource.CPU, seconds=0.15, clock=clock, signs_=False),
             fake("sign", seconds=0.15, clock=clock)]
    run(plan(steps, images("a", "b", "c")), Slots(1, 4))
    crossed = [pair for pair in clock.together if {k[0] for k in pair} == {"sign", "sbom"}
               and len({k[1] for k in pair}) == 2]
    assert crossed  # a sign of one image ran while the SBOM of another was being made


def test_concurrency_is_bounded_per_resource_class() -> None:
    clock = Clock()
    steps = [fake("sbom", feature_="sbom", resource_=Resource.CPU, seconds=0.05, clock=clock, signs_=False),
             fake("sign", seconds=0.05, clock=clock)]
    run(plan(steps, images(*"abcdefgh")), Slots(2, 3))
    assert clock.peak[Resource.CPU] <= 2
    assert clock.peak[Resource.NETWORK] <= 3
    assert clock.peak[Resource.NETWORK] >= 2  # and it does run in parallel


def test_a_step_needing_a_failed_step_is_skipped_and_says_why() -> None:
    steps = [fake("sign", fail={"a": StepFailed("cosign broke")}),
             fake("verify", feature_="verify", requires_=("sign",))]
    results = run(plan(steps, images("a", "b"), Policy({f: True for f in FEATURES.values()})))  # fail-open
    verify_a = outcome(results, "verify", "a")
    assert verify_a.outcome is Outcome.SKIPPED
    assert "needs sign, which did not complete (cosign broke)" in verify_a.summary
    assert outcome(results, "verify", "b").outcome is Outcome.OK


def test_fail_open_per_feature_decides_whether_later_steps_run() -> None:
    failing_scan = StepFailed("grype crashed")
    steps = [fake("scan", feature_="scan", resource_=Resource.CPU, signs_=False, fail={"a": failing_scan}),
             fake("sign", after_=("scan",))]
    open_scan = Policy({**{f: False for f in FEATURES.values()}, "scan": True})
    results = run(plan(steps, images("a"), open_scan))
    assert outcome(results, "sign", "a").outcome is Outcome.OK  # a tolerated scan failure does not stop signing
    judged = verdict(results, open_scan, registry.FEATURES)
    assert (judged.exit_code, judged.status, len(judged.tolerated)) == (0, "degraded", 1)

    closed = Policy({f: False for f in FEATURES.values()})
    results = run(plan(steps, images("a"), closed))
    sign = outcome(results, "sign", "a")
    assert sign.outcome is Outcome.SKIPPED
    assert sign.summary.startswith("not run: scan failed")
    assert verdict(results, closed, registry.FEATURES).exit_code == 1


def test_a_tripped_gate_stops_signing_even_under_fail_open() -> None:
    steps = [fake("scan", feature_="scan", resource_=Resource.CPU, signs_=False,
                  fail={"a": GateTripped("2 high findings")}),
             fake("sign", after_=("scan",)), fake("provenance", feature_="provenance", after_=("scan",))]
    everything_open = Policy({f: True for f in FEATURES.values()})
    results = run(plan(steps, images("a", "b"), everything_open))
    assert outcome(results, "sign", "a").outcome is Outcome.SKIPPED
    assert outcome(results, "provenance", "a").outcome is Outcome.SKIPPED
    assert outcome(results, "sign", "b").outcome is Outcome.OK  # one image's gate never stops another's
    judged = verdict(results, everything_open, registry.FEATURES)
    assert judged.exit_code == 1
    assert judged.status == "failed"


def test_required_failures_block_under_fail_open() -> None:
    result = StepResult("scan", "x", Outcome.FAILED, "trivy failed", error=RequiredFailed("trivy failed"))
    assert Policy({f: True for f in FEATURES.values()}).blocking(result, "scan")


def test_fail_fast_starts_nothing_after_the_first_blocking_failure() -> None:
    steps = [fake("sign", seconds=0.01, fail={"a": StepFailed("boom")}),
             fake("provenance", feature_="provenance", seconds=0.01)]
    p = Plan(images(*"abcdef"), tuple(steps), (), None, Policy({f: False for f in FEATURES.values()}, True),
             False)
    results = run(p, Slots(1, 1))
    fast = [r for r in results if "fail-fast after sign failed" in r.summary]
    assert fast  # what had not started yet is skipped and says why
    assert all(r.outcome is Outcome.SKIPPED for r in fast)
    assert outcome(results, "sign", "a").failed


def test_upstream_images_are_scanned_but_never_signed() -> None:
    steps = [fake("scan", feature_="scan", resource_=Resource.CPU, signs_=False), fake("sign", after_=("scan",))]
    results = run(plan(steps, images("app", "ghost", upstream=frozenset({"ghost"}))))
    assert outcome(results, "scan", "ghost").outcome is Outcome.OK
    sign = outcome(results, "sign", "ghost")
    assert sign.outcome is Outcome.SKIPPED
    assert "upstream image" in sign.summary
    assert outcome(results, "sign", "app").outcome is Outcome.OK


def test_a_step_that_could_not_be_prepared_fails_on_every_image() -> None:
    steps = [fake("sign"), fake("verify", feature_="verify", requires_=("sign",))]
    broken = {"sign": ToolError("cosign is not installed", fix="make tools")}
    results = run(plan(steps, images("a", "b"), broken=broken))
    assert [r.outcome for r in results if r.step == "sign"] == [Outcome.FAILED, Outcome.FAILED]
    assert all(r.error is broken["sign"] for r in results if r.step == "sign")
    assert all(r.outcome is Outcome.SKIPPED for r in results if r.step == "verify")


def test_the_registry_lists_steps_in_the_spec_order_and_every_step_has_a_feature() -> None:
    assert registry.names() == ("scan", "sign", "sbom", "sbom-attach", "provenance", "scan-attest", "verify",
                                "verify-tag", "sbom-verify", "verify-provenance", "verify-vuln", "attest-vsa")
    assert registry.VERIFY_SIDE == ("verify-tag", "verify", "sbom-verify", "verify-provenance", "verify-vuln")
    for name in registry.names():
        assert registry.FEATURES[name] in ("scan", "signing", "sbom", "provenance", "verify")
    index = {n: i for i, n in enumerate(registry.names())}
    for cls in registry.STEPS:  # every dependency points at an earlier step (the executor's order)
        assert all(index[d] < index[cls.name] for d in (*cls.requires, *cls.after, *getattr(cls, "reads", ())))


def test_an_unknown_step_name_is_an_error_not_another_steps_policy() -> None:
    result = StepResult("sbom-upload", "x", Outcome.FAILED, "?")
    with pytest.raises(KeyError):
        verdict([result], Policy.closed(), registry.FEATURES)


# ---------------------------------------------------------------------------------------------- shards


def test_shards_are_deterministic_and_partition_the_images() -> None:
    refs = [f"reg.example.com/team/svc-{i}:1.0" for i in range(40)]
    owners = [[r for r in refs if Shard(k, 4).owns(r)] for k in range(1, 5)]
    assert sorted(r for shard in owners for r in shard) == sorted(refs)
    assert all(owners)  # 40 images over 4 shards: none empty
    assert owners == [[r for r in refs if Shard(k, 4).owns(r)] for k in range(1, 5)]


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "1", "1/0", "1/999", "-1/2"])
def test_bad_shards_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        Shard.parse(text)


# ---------------------------------------------------------------------------------------------- cache


def test_cache_round_trip_and_untrusted_entries_are_ignored(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = {"digest": DIGEST, "syft": "1.51.0", "format": "cyclonedx-json"}
    assert cache.get("sbom", key) is None
    cache.put("sbom", key, b'{"bomFormat": "CycloneDX"}')
    assert cache.get("sbom", key) == b'{"bomFormat": "CycloneDX"}'
    assert cache.get("sbom", {**key, "syft": "1.52.0"}) is None  # another tool version: another entry
    entry = next((tmp_path / "sbom").glob("*.json"))
    envelope = json.loads(entry.read_text())
    envelope["content"] = "eyJiYWQiOiB0cnVlfQ=="  # swapped content, old checksum: a tampered cache
    entry.write_text(json.dumps(envelope))
    assert cache.get("sbom", key) is None
    entry.write_text("{not json")
    assert cache.get("sbom", key) is None
    other = tmp_path / "sbom" / "x.json"
    other.write_text("{}")
    entry.unlink()
    entry.symlink_to(other)
    assert cache.get("sbom", key) is None  # never through a symlink
    assert cache.stats()["rejected"] == 2


def test_an_entry_for_another_key_under_this_name_is_rejected(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put("sbom", {"digest": "sha256:" + "b" * 64}, b"other image")
    theirs = next((tmp_path / "sbom").glob("*.json"))
    mine = {"digest": DIGEST}
    theirs.rename(tmp_path / "sbom" / f"{__import__('sc_ci.engine.cache').engine.cache.key_id('sbom', mine)}.json")
    assert cache.get("sbom", mine) is None


# ---------------------------------------------------------------------------------------------- tags


@pytest.mark.parametrize(("pattern", "name"), [("v{version}", "v2026.1.7"), ("{stack}/{environment}/{version}",
                                                                           "shop/production/2026.1.7")])
def test_tag_names_from_the_pattern(pattern: str, name: str) -> None:
    assert gittag.tag_name(pattern, "2026.1.7", stack="shop", environment="production") == name


@pytest.mark.parametrize("pattern", ["v{version}..x", "-v{version}", "v {version}", "v{version}.lock/", "{nope}",
                                     "v{version}@{x}", "v{version}\n::error::x"])
def test_bad_tag_patterns_are_usage_errors(pattern: str) -> None:
    with pytest.raises(UsageError) as caught:
        gittag.tag_name(pattern, "1.0", stack="s", environment="e")
    assert "\n::" not in caught.value.diagnostics()


def test_a_tag_needs_a_version() -> None:
    with pytest.raises(UsageError):
        gittag.tag_name("v{version}", None)


# ---------------------------------------------------------------------------------------------- manifests


def _manifest(status: str, blocking: bool, digest: str, shard: str) -> dict[str, Any]:
    result = {"step": "sign", "image": digest, "outcome": "failed" if blocking else "ok", "summary": "s",
              "blocking": blocking, "details": {}, "artifacts": []}
    return {"schema": manifest.SCHEMA, "shard": shard, "steps": ["sign"], "images": [
        {"image": digest, "digest": digest, "built": True, "results": [result]}],
            "verdict": {"status": status}, "startedAt": "2026-12-01T00:00:00", "finishedAt": "2026-12-01T00:01:00"}


def test_merge_keeps_each_image_once_and_judges_all_shards() -> None:
    a = _manifest("passed", False, "r/a@sha256:1", "1/2")
    b = _manifest("failed", True, "r/b@sha256:2", "2/2")
    merged = manifest.merge([a, b, a])
    assert [i["digest"] for i in merged["images"]] == ["r/a@sha256:1", "r/b@sha256:2"]
    assert merged["verdict"] == {"status": "failed", "exitCode": 1, "blocking": 1, "tolerated": 0}
    assert merged["shards"] == ["1/2", "2/2", "1/2"]


def test_loading_refuses_what_is_not_a_manifest(tmp_path: Path) -> None:
    for text in ("[]", '{"schema": "sc-ci/release/v1", "images": [{"results": [{"step": 1}]}]}', "\x00\x01",
                 '{"schema": "x"}'):
        path = tmp_path / "m.json"
        path.write_text(text)
        with pytest.raises(UsageError):
            manifest.load(path)
    with pytest.raises(UsageError):
        manifest.load(tmp_path)  # a directory


# ---------------------------------------------------------------------------------------------- renderers


def _hostile() -> dict[str, Any]:
    evil = "x\n::add-mask::boom\r\n##[error]y | `z` <b>"
    result = {"step": "sign", "image": "r/a@sha256:" + "c" * 64, "outcome": "failed", "summary": evil,
              "blocking": True, "error": f"error: {evil}\n  fix: ```\n::stop-commands::t", "artifacts": [],
              "details": {"command": "cosign verify ```` --key k " + evil}}
    return {"schema": manifest.SCHEMA, "steps": ["sign", "verify"], "verdict": {"status": "failed", "blocking": 1},
            "images": [{"image": "r/a", "digest": result["image"], "built": True, "results": [result]}]}


def test_no_rendered_line_can_be_a_workflow_command() -> None:
    data = _hostile()
    text = "\n".join([release.console(data, "t\n::warning::x"), release.errors(data), release.markdown(data, "t")])
    for line in text.splitlines():
        assert not line.lstrip().startswith(("::", "##[")), line


def test_markdown_cells_and_fences_cannot_be_broken_out_of() -> None:
    text = release.markdown(_hostile(), "release")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") == line.replace("\\|", "").count(" | ") for line in table)
    assert not any("<b>" in line for line in table)  # (inside the sh fence it is shown as text)
    fence_lines = [line for line in text.splitlines() if line.startswith("```")]
    assert fence_lines == ["````sh", "````"]  # the commands' own backticks cannot close the fence


def test_the_whole_run_timeout_fails_what_did_not_finish() -> None:
    from types import SimpleNamespace

    steps = [fake("sign", seconds=0.3), fake("verify", feature_="verify", requires_=("sign",))]
    ctx = SimpleNamespace(session=SimpleNamespace(loaded=SimpleNamespace(
        runtime=SimpleNamespace(timeout=0.1, step_timeout=None)), workers=1))
    everything_open = Policy({f: True for f in FEATURES.values()})
    p = plan(steps, images(*"abcd"), everything_open)
    started = time.monotonic()
    results = executor.execute(p, ctx, Slots(1, 1))  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0  # one 0.3 s step ran; the rest did not start
    timed_out = [r for r in results if "timed out after 0.1s" in r.summary]
    assert timed_out
    assert all(r.failed for r in timed_out)
    judged = verdict(results, everything_open, registry.FEATURES)
    assert judged.exit_code == 1  # a timed-out run fails even under fail-open


def test_a_step_timeout_bounds_the_tools_it_runs() -> None:
    from sc_ci import retry, runner

    started = time.monotonic()
    with retry.step_deadline(0.5), pytest.raises(ToolError, match="timed out"):
        runner.run(["sleep", "5"], env=runner.base_env())
    assert time.monotonic() - started < 3
    with retry.step_deadline(-1), pytest.raises(ToolError, match="ran out of time"):
        runner.run(["true"], env=runner.base_env())


def test_sbom_cell_says_when_only_a_digest_was_attested() -> None:
    """Over sbom.attach.maxSize the SBOM itself is not in the registry: the table must not say "attached"."""
    from sc_ci.report.release import rows
    from sc_ci.sbom.reference import PREDICATE_TYPE

    def manifest(predicate: str) -> dict[str, Any]:
        made = {"kind": "sbom-file", "subject": "r/a@sha256:1", "format": "cyclonedx-json"}
        att = {"kind": "attestation", "subject": "r/a@sha256:1", "format": "cyclonedx-json",
               "predicate_type": predicate}
        return {"steps": ["sbom", "sbom-attach"], "images": [{"image": "r/a@sha256:1", "digest": "r/a@sha256:1",
                "results": [{"step": "sbom", "outcome": "ok", "artifacts": [made]},
                            {"step": "sbom-attach", "outcome": "ok", "artifacts": [att]}]}]}

    assert rows(manifest("https://cyclonedx.org/bom"))[0][1][2] == "cyclonedx-json attached"  # the SBOM column
    assert rows(manifest(PREDICATE_TYPE))[0][1][2] == "cyclonedx-json attested by digest (file kept)"
