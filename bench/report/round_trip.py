"""RESULTS.md, the round-trip part of result delivery: results per second per instance against an SQS
whose every call takes a fixed round trip, by SendMessageBatch calls in flight, beside invocations per
second with results discarded in the same run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.report.table import ms, percent, table

if TYPE_CHECKING:
    from bench.measurements import BenchRun


def section(run: BenchRun) -> list[str]:
    section = run.sections.get("round_trip")
    if not section:
        return []
    rows = section["rows"]
    discard = next((r for r in rows if r["sends_in_flight"] is None), None)
    base = discard["msgs_per_s"] if discard else None
    out = [
        f"### Result delivery with a {section['sqs_round_trip_ms']} ms SQS round trip",
        "",
        f"The same function and messages (MAX_CONCURRENCY {rows[0]['concurrency']}, endpoint latency "
        f"{rows[0]['latency_ms']} ms) with results discarded, then delivered to an SQS stand-in on 127.0.0.1 "
        f"(`bench/slow_sqs.py`) whose every SendMessageBatch call takes {section['sqs_round_trip_ms']} ms, "
        "with `SQS_SENDS_IN_FLIGHT` calls allowed per queue. Not moto: moto's own per-call cost grows with "
        "the queue's depth and would be measured instead. The stand-in keeps every result: each must "
        "arrive exactly once. Results/s is per instance (the batch's wall time includes delivery: a record "
        "is acknowledged only once its result is written).",
        "",
    ]
    out += table(
        ["mode", "calls in flight", "wall", "results/s (invocations/s)", "of discard", "SQS calls",
         "entries/call", "most calls at once", "results arrived", "twice", "lost"],
        [
            [
                r["mode"],
                "-" if r["sends_in_flight"] is None else str(r["sends_in_flight"]),
                ms(r["wall_s"]),
                f"{r['msgs_per_s']:,.0f}",
                percent(r["msgs_per_s"] / base) if base else "-",
                str(r["sqs_calls"]) if r["sends_in_flight"] is not None else "-",
                f"{r['results_on_queue'] / r['sqs_calls']:.1f}" if r["sqs_calls"] and "results_on_queue" in r else "-",
                str(r["most_calls_in_flight"]) if r["sends_in_flight"] is not None else "-",
                f"{r['results_on_queue']}/{r['results_expected']}" if "results_on_queue" in r else "-",
                str(r["duplicates"]),
                str(r["lost"]),
            ]
            for r in rows
        ],
    )  # fmt: skip
    return out
