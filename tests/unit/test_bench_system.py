"""The system section's pure parts: percentiles, the physical limit and the ratios, the targets, the retry
settings of the scale from zero, the ledger of outcomes and the splice into RESULTS.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bench import analysis
from bench.plan import Plan
from bench.report import system as system_report
from bench.sections.system_scale import scale_overrides, scale_retry_settings
from bench.sections.system_traffic import Ledger, message_bodies
from bench.targets import system_targets
from sqs_sagemaker_invoker.scaling import ScalingPolicy, check_retries_outlast_scale_out

if TYPE_CHECKING:
    from bench.system_measurements import ScaleFromZeroRun, SystemMode, SystemRun, SystemSection


def _run(
    mode: SystemMode, *, drain_s: float | None, calls: int, throttled: int, **extra: object
) -> SystemRun:
    run: SystemRun = {
        "mode": mode,
        "messages": 400,
        "drain_s": drain_s,
        "settled_by": "acknowledged" if mode == "textbook" else "results_queue",
        "endpoint_calls": calls,
        "endpoint_ok": calls - throttled,
        "endpoint_throttled": throttled,
        "endpoint_other": {},
        "results": 400,
        "dead_lettered": 0,
        "duplicates": 0,
        "pending": 0,
        "lost": 0,
        "latency_p50_s": 12.0,
        "latency_p99_s": 25.0,
        "batches": 40,
        "batch_failures": {},
        "settled_at_s": [1.0, 2.0],
    }
    run.update(extra)  # type: ignore[typeddict-item]
    return run


def _scale(**extra: object) -> ScaleFromZeroRun:
    scale: ScaleFromZeroRun = {
        "messages": 400,
        "max_copies": 4,
        "provisioning_s": 120,
        "retry_base_seconds": 2,
        "retry_max_seconds": 30,
        "max_receive_count": 24,
        "first_result_s": 130.0,
        "first_serving_s": 125.0,
        "drain_s": 160.0,
        "endpoint_calls": 500,
        "endpoint_ok": 400,
        "endpoint_no_capacity": 100,
        "endpoint_throttled": 0,
        "results": 400,
        "dead_lettered": 0,
        "duplicates": 0,
        "pending": 0,
        "lost": 0,
        "samples": [],
        "settled_at_s": [],
    }
    scale.update(extra)  # type: ignore[typeddict-item]
    return scale


def _section(
    runs: list[SystemRun], scale: ScaleFromZeroRun | None = None, *, slots: int = 4
) -> SystemSection:
    return {
        "messages": 400,
        "slots": slots,
        "batch_size": 10,
        "small_batch_size": 4,
        "max_concurrency": 16,
        "instances": 4,
        "concurrency_per_instance": 2,
        "capacity": 8,
        "latency_ms": 500,
        "runs": runs,
        "scale_from_zero": scale or _scale(),
        "moto": {"rates": []},
    }


# -- percentiles and ratios ----------------------------------------------------------------------------


def test_a_percentile_is_a_measured_value_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 401)]  # 1..400, shuffled order must not matter
    values.reverse()
    # THEN p50 of 400 is the 200th, p99 the 396th, p100 the largest and p0 the smallest
    assert analysis.percentile(values, 50) == 200.0
    assert analysis.percentile(values, 99) == 396.0
    assert analysis.percentile(values, 100) == 400.0
    assert analysis.percentile(values, 0) == 1.0
    # and one value is every percentile of itself; nothing has none
    assert analysis.percentile([3.5], 99) == 3.5
    assert analysis.percentile([], 50) is None


def test_a_percentile_outside_0_to_100_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        analysis.percentile([1.0], 101)


def test_the_physical_limit_is_n_times_latency_over_capacity() -> None:
    # 400 calls of 500 ms through 8 at once: 25 s, however many instances send them
    assert analysis.physical_limit_s(400, 500, 8) == pytest.approx(25.0)
    with pytest.raises(ValueError, match="capacity"):
        analysis.physical_limit_s(400, 500, 0)


def test_system_figures_give_the_ratio_the_throttled_share_and_calls_per_message() -> None:
    section = _section(
        [
            _run("shared", drain_s=27.5, calls=410, throttled=10),
            _run("per_instance", drain_s=None, calls=0, throttled=0, pending=3),
        ]
    )
    shared, per_instance = analysis.system_figures(section)
    assert shared.limit_s == pytest.approx(25.0)
    assert shared.ratio == pytest.approx(1.1)
    assert shared.throttled_share == pytest.approx(10 / 410)
    assert shared.calls_per_message == pytest.approx(410 / 400)
    # and a run that did not drain has no ratio, one without calls no share
    assert (per_instance.ratio, per_instance.throttled_share) == (None, None)
    assert analysis.oversubscription(section) == 8.0


# -- targets -------------------------------------------------------------------------------------------


def test_shared_capacity_passes_within_1_25x_and_under_5_percent_throttled() -> None:
    section = _section(
        [
            _run("shared", drain_s=30.0, calls=415, throttled=15),
            _run("shared_small_batches", drain_s=27.5, calls=400, throttled=0),
            _run("per_instance", drain_s=60.0, calls=900, throttled=500),
            _run("textbook", drain_s=50.0, calls=400, throttled=0),
        ]
    )
    drain, throttled, lost, scale = system_targets(section)
    assert drain.passed is True
    assert "1.20x (30.0 s vs 25.0 s)" in drain.measured
    # and the smaller batches and the per-instance figures stand beside the shared ones
    assert "batches of 4: 1.10x" in drain.measured
    assert "per instance: 2.40x" in drain.measured
    assert throttled.passed is True
    assert throttled.measured.startswith("3.6% (15 of 415)")
    assert "per instance: 55.6%" in throttled.measured
    assert (lost.passed, lost.measured) == (True, "0 / 0")
    assert "shared_small_batches" in lost.name
    assert scale.passed is True
    assert "first result after 130 s" in scale.measured


def test_shared_capacity_fails_over_the_ratio_or_the_share() -> None:
    slow = _section([_run("shared", drain_s=32.0, calls=400, throttled=0)])
    assert system_targets(slow)[0].passed is False
    throttled = _section([_run("shared", drain_s=26.0, calls=420, throttled=21)])
    assert system_targets(throttled)[1].passed is False


def test_the_drain_targets_do_not_apply_below_4x_oversubscription() -> None:
    # K 1 x MAX_CONCURRENCY 16 = 2 x C: the instances cannot overrun the endpoint much, nothing to show
    section = _section([_run("shared", drain_s=40.0, calls=400, throttled=0)], slots=1)
    drain, throttled, *_ = system_targets(section)
    assert (drain.passed, throttled.passed) == (None, None)


def test_a_dead_letter_or_a_loss_fails_and_a_skipped_run_is_not_applicable() -> None:
    section = _section(
        [
            _run("shared", drain_s=None, calls=0, throttled=0, skipped="no capacity table"),
            _run("per_instance", drain_s=40.0, calls=900, throttled=500, dead_lettered=2),
        ],
        _scale(skipped="no autoscaler"),
    )
    drain, lost, scale = system_targets(section)
    assert drain.passed is None
    assert "not run (no capacity table)" in drain.measured
    assert (lost.passed, lost.measured) == (False, "0 / 2")
    assert scale.passed is None
    assert "not run (no autoscaler)" in scale.measured


def test_a_scale_from_zero_that_did_not_drain_fails() -> None:
    section = _section(
        [_run("shared", drain_s=26.0, calls=400, throttled=0)], _scale(drain_s=None, pending=5)
    )
    assert system_targets(section)[-1].passed is False


# -- the scale from zero's retry settings ---------------------------------------------------------------


@pytest.mark.parametrize("smoke", [False, True])
def test_the_retry_settings_are_the_fewest_deliveries_that_pass_the_synth_check(smoke: bool) -> None:
    plan = Plan.smoke_plan() if smoke else Plan()
    policy = ScalingPolicy(
        unit="copies",
        min_capacity=0,
        max_capacity=plan.system_instances,
        target_backlog_per_instance=10,
        provisioning_seconds=plan.system_provisioning_s,
    )
    base, top, count = scale_retry_settings(plan, policy)
    # THEN the synth check passes with them, and fails with one delivery fewer
    check_retries_outlast_scale_out(
        policy, max_receive_count=count, retry_base_seconds=base, retry_max_seconds=top
    )
    with pytest.raises(ValueError, match="provisioningSeconds"):
        check_retries_outlast_scale_out(
            policy, max_receive_count=count - 1, retry_base_seconds=base, retry_max_seconds=top
        )


def test_the_scale_from_zero_route_asks_for_every_copy_at_once() -> None:
    plan = Plan()
    overrides, base, top, count = scale_overrides(plan)
    assert overrides["scaling"]["minCapacity"] == 0
    assert (
        overrides["scaling"]["maxCapacity"]
        == overrides["scaling"]["scaleFromZeroStep"]
        == plan.system_instances
    )
    assert overrides["scaling"]["provisioningSeconds"] == 120
    assert overrides["capacity"]["mode"] == "shared"
    assert (overrides["retryBaseSeconds"], overrides["retryMaxSeconds"], overrides["maxReceiveCount"]) == (
        base,
        top,
        count,
    )


# -- the ledger ----------------------------------------------------------------------------------------


def test_message_bodies_are_envelopes_of_the_asked_size_and_the_same_every_time() -> None:
    bodies = message_bodies(3, 1024, seed=1)
    assert bodies == message_bodies(3, 1024, seed=1)
    assert len({rid for rid, _ in bodies}) == 3
    assert all(len(body) == 1024 for _, body in bodies)


def test_the_ledger_settles_each_request_once_and_counts_the_rest_as_duplicates() -> None:
    ledger = Ledger()
    ledger.sent("r1", "m1", at=100.0)
    ledger.sent("r2", "m2", at=100.0)
    ledger.settle("r1", 103.0, dead=False)
    ledger.settle("r1", 104.0, dead=False)  # delivered twice (at least once)
    ledger.settle("r2", 105.0, dead=True)
    ledger.settle("unknown", 106.0, dead=False)  # not ours: ignored
    ledger.settle(None, 106.0, dead=True)
    assert ledger.settled() == 2
    assert (ledger.results, ledger.dead, ledger.duplicates) == ({"r1"}, {"r2"}, 1)
    assert sorted(ledger.latencies()) == [3.0, 5.0]
    assert ledger.offsets(100.0) == [3.0, 5.0]
    assert ledger.first_result == 103.0


# -- the report ----------------------------------------------------------------------------------------


def test_the_system_part_replaces_its_old_self_and_nothing_else() -> None:
    existing = "\n".join(
        ["# Benchmark results", "", "## 5. Scale model", "figures", "", "## Charts", "", "![a](a.png)", ""]
    )
    first = system_report.splice(
        existing, [system_report.BEGIN, "## 6. System", "old", system_report.END, ""]
    )
    # THEN the part goes before the charts, the rest kept as it was
    assert first.index("## 6. System") < first.index("## Charts")
    assert first.replace(first[first.index(system_report.BEGIN) : first.index("## Charts")], "") == existing
    # and a second splice replaces the part in place
    second = system_report.splice(first, [system_report.BEGIN, "## 6. System", "new", system_report.END, ""])
    assert "old" not in second
    assert "new" in second
    assert second.count(system_report.BEGIN) == 1
    assert second.replace("new", "old") == first
