"""The benchmark's CI smoke: `python -m bench --smoke` runs every section at tiny sizes, so the benchmark
cannot rot. It checks that the figures are there and sane, never how fast anything is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.measurements import BenchRun
from bench.scale_model import scale_model
from bench.targets import targets

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    # GIVEN nothing running: the benchmark starts (and stops) its own moto server, emulator and
    # Lambda instances, all on 127.0.0.1, in child processes (it pins them to CPUs: not this process)
    out = tmp_path_factory.mktemp("bench")
    # WHEN the smoke runs
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # The system section adds about a minute: a fresh local stack per run, and a scale from zero.
        timeout=420,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out, json.loads((out / "raw" / "results.json").read_text())


@pytest.mark.slow
def test_smoke_writes_the_report_and_charts(smoke: tuple[Path, dict[str, Any]]) -> None:
    out, results = smoke
    # THEN the Markdown table and both charts are written
    text = (out / "RESULTS.md").read_text()
    for heading in (
        "## Targets",
        "## 1. Throughput",
        "## 4. Throttling",
        "## 5. Scale model",
        "## 6. System",
    ):
        assert heading in text
    assert results["machine"]["cpu_model"] in text
    for chart in ("throughput_vs_concurrency.png", "throughput_vs_latency.png", "system_capacity.png"):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # and the text names the command that repeats it
    assert "python -m bench" in text


@pytest.mark.slow
def test_smoke_figures_are_sane(smoke: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke
    sections = results["sections"]
    # THEN the bare boto3 call has a CPU cost, measured twice
    assert len(sections["calibration"]) == 2
    assert all(c["cpu_ms_per_call"] > 0 for c in sections["calibration"])
    # and every throughput row of both handlers moved every message, with a non-zero rate and CPU
    rows = sections["matrix"]["rows"] + sections["sweep"]["rows"]
    assert {r["side"] for r in rows} == {"invoker", "baseline"}
    for row in rows:
        assert min(row["msgs_per_s"], row["cpu_ms_per_msg"], row["wall_s"]) > 0, row
        assert (row["failures"], row["lost"]) == (0, 0), row
        if row["side"] == "invoker":
            assert row["metrics"]["Succeeded"] == row["messages"] * row["reps"], row
    # and the CPU section measured the bare loop, the invoker and the textbook handler side by side
    cpu = {r["label"]: r for r in sections["cpu"]["rows"]}
    assert {r["side"] for r in cpu.values()} == {"bare", "invoker", "baseline"}
    for row in cpu.values():
        assert min(row["cpu_ms_per_msg"], row["vs_bare"]) > 0, row
        assert row["lost"] == 0, row
    assert cpu["bare"]["vs_bare"] == 1.0
    # and the delivered results are all on the results queue
    delivered = [r for r in sections["delivery"]["rows"] if r["mode"] == "deliver"]
    assert delivered
    assert all(r["results_on_queue"] == r["results_expected"] > 0 for r in delivered)


@pytest.mark.slow
def test_smoke_round_trip_delivers_every_result_exactly_once(smoke: tuple[Path, dict[str, Any]]) -> None:
    out, results = smoke
    rows = results["sections"]["round_trip"]["rows"]
    # THEN results were discarded once and delivered with calls in flight, side by side in the report
    assert [r["sends_in_flight"] is None for r in rows] == [True] + [False] * (len(rows) - 1)
    assert len(rows) > 1
    assert "SQS round trip" in (out / "RESULTS.md").read_text()
    # and every delivered result arrived at the slow SQS exactly once, with SendMessageBatch only
    for row in rows:
        assert (row["failures"], row["lost"], row["duplicates"], row["other_sqs_calls"]) == (0, 0, 0, {}), row
        assert min(row["msgs_per_s"], row["wall_s"]) > 0, row
    for row in rows[1:]:
        assert row["results_on_queue"] == row["results_expected"] > 0, row
        assert 1 <= row["most_calls_in_flight"] <= row["sends_in_flight"], row


@pytest.mark.slow
def test_smoke_throttling_loses_nothing(smoke: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke
    throttling = results["sections"]["throttling"]
    over = throttling["runs"][str(throttling["over"])]
    # THEN over-provisioned concurrency met the endpoint's throttling and re-attempted in the function
    assert sum(r["endpoint_throttled"] for r in over) > 0
    assert sum(r["reattempts"] for r in over) > 0
    # and, over both configurations, every message was acknowledged after a successful invocation
    for runs in throttling["runs"].values():
        for run in runs:
            assert run["lost"] == 0, run
            assert run["succeeded"] + run["dead_lettered"] + run["pending"] == throttling["messages"], run
            assert run["endpoint_ok"] >= run["succeeded"], run
            # and the SDK retried nothing: every request the endpoint saw is an attempt the function counted
            assert run["endpoint_requests"] == run["invocations"], run


@pytest.mark.slow
def test_smoke_system_drains_every_message_in_every_mode(smoke: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke
    system = results["sections"]["system"]
    runs = {r["mode"]: r for r in system["runs"]}
    # THEN the function (shared capacity, then per-instance limiting) and the textbook handler drained
    # the same messages
    assert set(runs) == {"shared", "shared_small_batches", "per_instance", "textbook"}
    ran = [r for r in runs.values() if "skipped" not in r]
    assert {r["mode"] for r in ran} == set(runs)
    for run in ran:
        messages = run["messages"]
        # every message settled once, as a result or a dead letter, none lost or left on the queue
        assert (run["lost"], run["pending"]) == (0, 0), run
        assert run["results"] + run["dead_lettered"] == messages, run
        assert len(run["settled_at_s"]) == messages, run
        assert run["drain_s"] is not None, run
        assert run["drain_s"] > 0, run
        # and the endpoint answered at least one call per message, the throttled ones on top
        assert run["endpoint_ok"] >= run["results"], run
        assert run["endpoint_calls"] >= run["endpoint_ok"] + run["endpoint_throttled"], run
        p50, p99 = run["latency_p50_s"], run["latency_p99_s"]
        assert p50 is not None, run
        assert p99 is not None, run
        assert 0 < p50 <= p99, run
    # and the textbook handler, one call at a time per instance below the capacity, was never throttled
    if "skipped" not in runs["textbook"]:
        assert runs["textbook"]["endpoint_throttled"] == 0
    # and moto's bound was measured for each kind of call
    rates = system["moto"]["rates"]
    assert [r["call"].split()[0] for r in rates] == ["ReceiveMessage", "SendMessage", "SendMessageBatch"]
    assert all(r["msgs_per_s"] > 0 and r["calls"] > 0 for r in rates)


@pytest.mark.slow
def test_smoke_system_scales_from_zero_without_losing_anything(smoke: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke
    scale = results["sections"]["system"]["scale_from_zero"]
    if "skipped" in scale:
        pytest.skip(f"scale from zero not run: {scale['skipped']}")
    # THEN every message has a result, none was dead-lettered or lost
    assert (scale["lost"], scale["dead_lettered"], scale["pending"]) == (0, 0, 0), scale
    assert scale["results"] == scale["messages"]
    # and the first result came after the first copy served, before the drain ended
    first, serving, drained = scale["first_result_s"], scale["first_serving_s"], scale["drain_s"]
    assert first is not None
    assert serving is not None
    assert drained is not None
    # (capacity is sampled once a second, results read four times a second: a second or two of slack)
    assert serving <= first + 2
    assert first <= drained
    # and the capacity was sampled from zero up to at most the route's maximum
    samples = scale["samples"]
    assert samples[0]["serving"] == 0
    assert 0 < max(s["serving"] for s in samples) <= scale["max_copies"]


@pytest.mark.slow
def test_smoke_cold_start_memory_and_targets(smoke: tuple[Path, dict[str, Any]]) -> None:
    out, results = smoke
    sections = results["sections"]
    cold = sections["cold_start"]
    # THEN each cold-start probe has a positive import time
    for name in ("bare_import", "invoker", "baseline"):
        assert min(cold[name]["import_s"], cold[name]["maxrss_mb"]) > 0
    # and peak RSS was read after a batch
    assert all(r["maxrss_mb"] >= r["maxrss_after_import_mb"] > 0 for r in sections["memory"]["rows"])
    # and the scale model has both handlers with a positive cost
    # (read back from raw/results.json, as `--report-only` reads it)
    run = BenchRun.read(out / "raw" / "results.json")
    model = scale_model(run)
    assert {r.side for r in model} == {"invoker", "baseline"}
    assert all(r.cost_per_million_512mb > 0 and r.msgs_per_s_512mb > 0 for r in model)
    # and every target has a measured value (pass or fail is not the smoke's business)
    measured = targets(run)
    assert measured
    assert all(t.measured not in ("", "n/a") for t in measured)


@pytest.mark.slow
def test_report_only_rewrites_the_same_report(smoke: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = smoke
    # GIVEN only the raw results of the smoke run, in a directory of their own
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "results.json").write_bytes((out / "raw" / "results.json").read_bytes())
    # WHEN the report is rewritten from them, measuring nothing
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--report-only", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # THEN RESULTS.md is byte for byte the one the run wrote: the results read back as they were written
    assert (tmp_path / "RESULTS.md").read_text() == (out / "RESULTS.md").read_text()
