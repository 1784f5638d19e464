"""The PNG charts: throughput against MAX_CONCURRENCY and against the endpoint's latency, each with the
model N / max(ideal, CPU limit) and the textbook handler."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from bench import analysis

if TYPE_CHECKING:
    from pathlib import Path

    from bench.analysis import Bounded
    from bench.measurements import BenchRun

CONCURRENCY_CHART = "throughput_vs_concurrency.png"
LATENCY_CHART = "throughput_vs_latency.png"
_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red"]


def write_charts(run: BenchRun, directory: Path) -> list[Path]:
    import matplotlib  # noqa: PLC0415 - only when charts are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = analysis.throughput(run)
    written = []
    for name, draw in ((CONCURRENCY_CHART, _by_concurrency), (LATENCY_CHART, _by_latency)):
        fig, ax = plt.subplots(figsize=(8, 5))
        draw(ax, run, rows)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(directory / name)
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def _model(cpu_ms: float, messages: int, concurrency: int, latency_ms: float) -> float:
    """N / max(ideal, CPU limit), in messages per second."""
    bound = max(math.ceil(messages / concurrency) * latency_ms / 1000, messages * cpu_ms / 1000)
    return messages / bound if bound > 0 else float("nan")


def _by_concurrency(ax: Any, run: BenchRun, rows: list[Bounded]) -> None:
    cpu_ms = analysis.bare_cpu_ms(run)
    batch = run.plan.sweep_batch
    sweep = [b.row for b in analysis.sweep(run)]
    for color, latency in zip(_COLORS, run.plan.sweep_latencies_ms, strict=False):
        points = sorted((r["concurrency"], r["msgs_per_s"]) for r in sweep if r["latency_ms"] == latency)
        if not points:
            continue
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], "o-", color=color, label=f"invoker, {latency} ms (measured)")
        grid = sorted({*xs, *(2**i for i in range(0, 9))})
        grid = [c for c in grid if min(xs) <= c <= max(xs)]
        ax.plot(
            grid,
            [_model(cpu_ms, batch, c, latency) for c in grid],
            "--",
            color=color,
            alpha=0.6,
            label=f"N / max(ideal, CPU limit), {latency} ms",
        )
        textbook = next(
            (
                b.row
                for b in rows
                if b.row["side"] == "baseline" and b.row["latency_ms"] == latency and not b.row.get("extra")
            ),
            None,
        )
        if textbook is not None:
            ax.axhline(textbook["msgs_per_s"], color=color, linestyle=":", label=f"textbook, {latency} ms")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("MAX_CONCURRENCY")
    ax.set_ylabel("messages / s (one instance, one CPU)")
    ax.set_title(f"Throughput vs concurrency, batch of {batch:,}")


def _by_latency(ax: Any, run: BenchRun, rows: list[Bounded]) -> None:
    cpu_ms = analysis.bare_cpu_ms(run)
    plan = run.plan
    batch = plan.sweep_batch
    invoker = sorted(
        (b.row["latency_ms"], b.row["msgs_per_s"])
        for b in rows
        if b.row["side"] == "invoker"
        and b.row["messages"] == batch
        and b.row["concurrency"] == plan.concurrency
    )
    textbook_points = sorted(
        (b.row["latency_ms"], b.row["msgs_per_s"])
        for b in rows
        if b.row["side"] == "baseline" and b.row["messages"] == batch
    )
    cpu_rows = run.sections.get("cpu", {"rows": []})["rows"]
    textbook_zero = next((r for r in cpu_rows if r["side"] == "baseline"), None)
    if textbook_zero is not None:
        textbook_points = sorted([(0, textbook_zero["msgs_per_s"]), *textbook_points])
    if invoker:
        ax.plot(
            [p[0] for p in invoker],
            [p[1] for p in invoker],
            "o-",
            color="tab:blue",
            label=f"invoker, MAX_CONCURRENCY {plan.concurrency} (measured)",
        )
        grid = sorted({p[0] for p in invoker} | set(range(0, max(p[0] for p in invoker) + 1, 5)))
        ax.plot(
            grid,
            [_model(cpu_ms, batch, plan.concurrency, latency) for latency in grid],
            "--",
            color="tab:blue",
            alpha=0.6,
            label="N / max(ideal, CPU limit)",
        )
    if textbook_points:
        ax.plot(
            [p[0] for p in textbook_points],
            [p[1] for p in textbook_points],
            "s",
            color="tab:gray",
            label="textbook sequential handler (measured)",
        )
        grid = list(range(0, max(p[0] for p in textbook_points) + 1, 2))
        ax.plot(
            grid,
            [1000 / (latency + cpu_ms) for latency in grid],
            ":",
            color="tab:gray",
            label="1 / (latency + CPU of one bare call)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("endpoint latency (ms)")
    ax.set_ylabel("messages / s (one instance, one CPU)")
    ax.set_title(f"Throughput vs endpoint latency, batch of {batch:,}")
