"""RESULTS.md, section 1 (throughput and the MAX_CONCURRENCY sweep) and the result delivery part."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import analysis
from bench.report.table import latency, ms, percent, table, times

if TYPE_CHECKING:
    from bench.measurements import BenchRun


def section(run: BenchRun) -> list[str]:
    rows = analysis.throughput(run)
    out = ["## 1. Throughput", ""]
    lines = []
    for bounded in rows:
        row = bounded.row
        if row.get("extra"):
            continue
        side = "invoker" if row["side"] == "invoker" else "textbook"
        if row.get("extrapolated"):
            side += f" (ran {row.get('measured_messages')}, extrapolated)"
        lines.append(
            [
                f"{row['latency_ms']} ms",
                f"{row['messages']:,}",
                side,
                str(row["concurrency"]),
                f"{ms(row['wall_s'])} ({ms(row['wall_s_min'])}-{ms(row['wall_s_max'])}, n={row['reps']})",
                f"{row['msgs_per_s']:,.1f}",
                ms(bounded.ideal_s),
                ms(bounded.cpu_limit_s),
                times(bounded.ratio_to_bound),
                times(bounded.speedup_vs_textbook),
                f"{row['cpu_ms_per_msg']:.3f}",
                latency(row.get("invocation_latency_ms_median")),
                percent(row["server_cpu_util"].get("emulator")),
                str(row["lost"]),
            ]
        )
    out += table(
        [
            "latency",
            "batch",
            "handler",
            "concurrency",
            "wall per batch (median, min-max)",
            "msg/s",
            "ideal",
            "CPU limit",
            "wall / max(ideal, CPU limit)",
            "vs textbook",
            "client CPU ms/msg",
            "InvokeEndpoint as the function saw it (median)",
            "emulator CPU",
            "lost",
        ],
        lines,
    )
    extras = [b for b in rows if b.row.get("extra")]
    if extras:
        out += ["Extra latencies (invoker only, for the latency chart):", ""]
        out += table(
            ["latency", "batch", "wall", "msg/s", "ideal", "CPU limit", "wall / max(ideal, CPU limit)"],
            [
                [
                    f"{b.row['latency_ms']} ms",
                    f"{b.row['messages']:,}",
                    ms(b.row["wall_s"]),
                    f"{b.row['msgs_per_s']:,.0f}",
                    ms(b.ideal_s),
                    ms(b.cpu_limit_s),
                    times(b.ratio_to_bound),
                ]
                for b in extras
            ],
        )
    out += _sweep(run)
    return out


def _sweep(run: BenchRun) -> list[str]:
    sweep = analysis.sweep(run)
    if not sweep:
        return []
    out = ["### MAX_CONCURRENCY sweep", ""]
    out += table(
        [
            "latency",
            "MAX_CONCURRENCY",
            "batch",
            "wall",
            "msg/s",
            "ideal",
            "wall / max(ideal, CPU limit)",
            "client CPU ms/msg",
            "emulator CPU",
            "lost",
        ],
        [
            [
                f"{b.row['latency_ms']} ms",
                str(b.row["concurrency"]),
                f"{b.row['messages']:,}",
                ms(b.row["wall_s"]),
                f"{b.row['msgs_per_s']:,.0f}",
                ms(b.ideal_s),
                times(b.ratio_to_bound),
                f"{b.row['cpu_ms_per_msg']:.3f}",
                percent(b.row["server_cpu_util"].get("emulator")),
                str(b.row["lost"]),
            ]
            for b in sweep
        ],
    )
    skipped = run.sections.get("sweep", {"rows": [], "skipped": []})["skipped"]
    if skipped:
        out += [
            "Not run (ideal time over the plan's limit): "
            + ", ".join(f"{s['concurrency']} @ {s['latency_ms']} ms ({s['ideal_s']:.0f} s)" for s in skipped),
            "",
        ]
    return out


def delivery_section(run: BenchRun) -> list[str]:
    section = run.sections.get("delivery")
    if not section:
        return []
    out = [
        "### Result delivery to SQS (moto)",
        "",
        "Same function, same messages, `RESULTS_MODE=deliver` to a moto SQS queue vs `discard`. The queue is "
        "checked afterwards: every result must be on it. moto is not SQS: its per-call cost grows with the "
        "queue's depth (its `Queue.attributes` re-counts every message on each send), so these wall times are "
        "moto's, not the function's; the client CPU per message is the function's cost of delivery.",
        "",
    ]
    out += table(
        [
            "mode",
            "batch",
            "latency",
            "wall",
            "msg/s",
            "client CPU ms/msg",
            "moto CPU",
            "results on queue",
            "lost",
        ],
        [
            [
                r["mode"],
                f"{r['messages']:,}",
                f"{r['latency_ms']} ms",
                ms(r["wall_s"]),
                f"{r['msgs_per_s']:,.0f}",
                f"{r['cpu_ms_per_msg']:.3f}",
                percent(r["server_cpu_util"].get("moto")),
                f"{r.get('results_on_queue')}/{r.get('results_expected')}" if r["mode"] == "deliver" else "-",
                str(r["lost"]),
            ]
            for r in section["rows"]
        ],
    )
    probe = section["moto_probe"]["send_message_batch"]
    if probe:
        out += [
            "moto SendMessageBatch (10 x 1 KB) latency by queue depth: "
            + ", ".join(f"{p['send_batch_ms']:.0f} ms at {p['queue_depth']}" for p in probe)
            + ". moto serves one call at a time, so it caps delivery near 10 / that latency messages per "
            "second whatever the function's calls in flight; the next part measures delivery without moto.",
            "",
        ]
    return out
