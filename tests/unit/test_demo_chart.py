"""The scaling scenario's chart and verdict, pure parts: resampling keeps peaks, sparklines scale to the
maximum, the verdict fails a dead letter or a missing round trip to zero, and a demo that gives up says what is
still in its queue."""

from __future__ import annotations

from typing import Any

from sqs_sagemaker_invoker.local.demo.chart import BLOCKS, resample, sparkline, text_chart
from sqs_sagemaker_invoker.local.demo.readback import still_queued_problem
from sqs_sagemaker_invoker.local.demo.report import Summary
from sqs_sagemaker_invoker.local.demo.scaling_scenario import scaling_lines, scaling_problems


def test_resampling_keeps_a_one_tick_peak() -> None:
    # GIVEN 600 readings with one spike of backlog
    points = [(t / 10, 0, 0, 500 if t == 333 else 1) for t in range(600)]
    # WHEN resampled to 60 columns
    sampled = resample(points, 60)
    # THEN there are 60, the spike is still there, and time only moves forward
    assert len(sampled) == 60
    assert max(p[3] for p in sampled) == 500
    assert [p[0] for p in sampled] == sorted(p[0] for p in sampled)


def test_sparkline_blank_at_zero_full_at_top() -> None:
    assert sparkline([0, 2, 4], 4) == BLOCKS[0] + BLOCKS[4] + BLOCKS[8]
    assert sparkline([0, 0], 0) == BLOCKS[0] * 2


def test_text_chart_rows_line_up() -> None:
    points = [(float(t), min(t, 4), min(t + 1, 4), max(0, 100 - 10 * t)) for t in range(20)]
    rows = text_chart(points, 4)
    bars = [row.split("|")[1] for row in rows[:3]]
    assert len({len(bar) for bar in bars}) == 1
    assert rows[0].endswith("max 4")
    assert rows[2].endswith("max 100")


def _summary(dead: dict[str, int], **scaling: Any) -> Summary:
    figures: dict[str, Any] = {
        "unit": "copies",
        "provisioning_seconds": 10,
        "max_capacity": 4,
        "started_serving": 0,
        "peak_serving": 4,
        "peak_desired": 4,
        "final": {"serving": 0, "desired": 0},
        "decisions": [{"t": 1.0, "desired": 1, "rule": "scale_from_zero", "why": "backlog"}],
        "throttled_calls": 3,
        "no_capacity_calls": 9,
        "first_result_s": 11.0,
        "drained_s": 40.0,
        "points": [(0.0, 0, 0, 10), (1.0, 0, 1, 10)],
        "chart_png": None,
        **scaling,
    }
    return Summary(
        sent={"json": 10},
        delivered=10 - sum(dead.values()),
        duplicates={},
        dead_lettered=dead,
        retried={},
        problems=[],
        latency_ms={},
        end_to_end_ms={},
        event_source={},
        endpoint={},
        log_events=0,
        metric_data_points=0,
        elapsed_s=1.0,
        timeline=[],
        scaling=figures,
    )


def test_a_round_trip_with_nothing_dead_lettered_passes() -> None:
    assert scaling_problems(_summary({})) == []
    assert any("first result: 11.0 s" in line for line in scaling_lines(_summary({}).scaling or {}))


def test_any_dead_letter_fails_the_scenario() -> None:
    # Even one that the tally would accept (a reason, a single place): this scenario expects none
    problems = scaling_problems(_summary({"no_capacity": 1}))
    assert len(problems) == 1
    assert "expects none" in problems[0]


def test_no_scale_out_or_no_return_to_zero_fails_the_scenario() -> None:
    assert scaling_problems(_summary({}, peak_serving=0))
    assert scaling_problems(_summary({}, final={"serving": 1, "desired": 1}))
    assert scaling_problems(_summary({}, final={"serving": 0, "desired": 1}))
    assert scaling_problems(_summary({}, started_serving=2))


def test_a_demo_that_gives_up_says_what_is_still_in_the_queue() -> None:
    # GIVEN the request queue's counts when the demo's time ran out
    empty = {
        "ApproximateNumberOfMessages": 0,
        "ApproximateNumberOfMessagesNotVisible": 0,
        "ApproximateNumberOfMessagesDelayed": 0,
    }
    # WHEN nothing is left THEN nothing is said; WHEN messages are in flight THEN they are counted
    assert still_queued_problem(empty) is None
    said = still_queued_problem({**empty, "ApproximateNumberOfMessagesNotVisible": 5})
    assert said is not None
    assert "5 in flight" in said
