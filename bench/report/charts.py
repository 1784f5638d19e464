"""The PNG charts: throughput against MAX_CONCURRENCY and against the endpoint's latency, each with the
model N / max(ideal, CPU limit) and the textbook handler; and the system section's drain curves and
scale from zero."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from bench import analysis

if TYPE_CHECKING:
    from pathlib import Path

    from bench.analysis import Bounded
    from bench.measurements import BenchRun
    from bench.system_measurements import SystemSection

CONCURRENCY_CHART = "throughput_vs_concurrency.png"
LATENCY_CHART = "throughput_vs_latency.png"
SYSTEM_CHART = "system_capacity.png"
_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red"]


def write_charts(run: BenchRun, directory: Path, *, system_only: bool = False) -> list[Path]:
    """Every chart; `system_only` (a run of the system section alone) leaves the throughput charts of
    the last full run in place."""
    import matplotlib  # noqa: PLC0415 - only when charts are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = analysis.throughput(run)
    written = []
    system = run.sections.get("system")
    if system:
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
        _drain_curves(left, system)
        _scale_from_zero(right, system)
        fig.tight_layout()
        written.append(directory / SYSTEM_CHART)
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    if system_only:
        return written
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


_MODE_STYLE = {
    "shared": ("tab:blue", "invoker, shared capacity"),
    "shared_small_batches": ("tab:cyan", "invoker, shared capacity, smaller batches"),
    "per_instance": ("tab:orange", "invoker, per-instance limiting"),
    "textbook": ("tab:gray", "textbook handler"),
}


def _drain_curves(ax: Any, system: SystemSection) -> None:
    """Messages settled over time in each mode, against the endpoint's rate C / L."""
    messages = system["messages"]
    limit = analysis.physical_limit_s(messages, system["latency_ms"], system["capacity"])
    for each in system["runs"]:
        color, label = _MODE_STYLE[each["mode"]]
        times = each["settled_at_s"]
        if not times:
            continue
        ax.step([0.0, *times], range(len(times) + 1), where="post", color=color, label=label)
    ax.plot(
        [0, limit], [0, messages], "--", color="black", alpha=0.6, label="N x L / C (the endpoint's rate)"
    )
    ax.set_xlabel("seconds since the slots started polling")
    ax.set_ylabel("messages settled")
    ax.set_title(
        f"Drain of {messages} messages: K={system['slots']}, C={system['capacity']}, L={system['latency_ms']} ms"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def _scale_from_zero(ax: Any, system: SystemSection) -> None:
    """Copies serving and asked for, the backlog and the messages settled, over the scale-from-zero run."""
    scale = system["scale_from_zero"]
    ax.set_title(f"Scale from zero, provisioning {scale['provisioning_s']} s")
    samples = scale["samples"]
    if "skipped" in scale or not samples:
        reason = scale.get("skipped", "no samples")
        ax.text(0.5, 0.5, f"not run:\n{reason}", ha="center", va="center", wrap=True, fontsize=9)
        ax.set_axis_off()
        return
    t = [s["t_s"] for s in samples]
    ax.step(t, [s["serving"] for s in samples], where="post", color="tab:green", label="copies serving")
    ax.step(
        t,
        [s["desired"] for s in samples],
        where="post",
        color="tab:green",
        linestyle=":",
        label="copies asked for",
    )
    ax.set_xlabel("seconds since the burst's first send")
    ax.set_ylabel("copies")
    ax.set_ylim(bottom=0, top=max(scale["max_copies"], 1) + 0.5)
    backlog_ax = ax.twinx()
    backlog_ax.plot(
        t,
        [s["visible"] + s["in_flight"] for s in samples],
        color="tab:red",
        label="backlog (visible + in flight)",
    )
    backlog_ax.plot(t, [s["settled"] for s in samples], color="tab:blue", label="messages settled")
    backlog_ax.set_ylabel("messages")
    backlog_ax.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = backlog_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    ax.grid(True, alpha=0.3)
