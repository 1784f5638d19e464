"""The benchmark's targets: each with its goal, the measured value and pass or fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench import analysis

if TYPE_CHECKING:
    from bench.analysis import Bounded, SystemFigures
    from bench.measurements import BenchRun
    from bench.system_measurements import SystemSection

# The system section's targets: shared capacity drains within this multiple of N x L / C, with under
# this share of InvokeEndpoint calls throttled, once the instances could start this many times the
# calls the endpoint takes (K x MAX_CONCURRENCY / C).
SYSTEM_DRAIN_RATIO = 1.25
SYSTEM_THROTTLED_SHARE = 0.05
SYSTEM_OVERSUBSCRIPTION = 4


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    # None: not applicable in this run.
    passed: bool | None
    detail: str = ""


def _headline(rows: list[Bounded], latency_ms: int, messages: int) -> Bounded | None:
    """The invoker's main-table row at this latency and batch size (not an extra-latency point)."""
    for bounded in rows:
        row = bounded.row
        if (
            row["side"] == "invoker"
            and row["latency_ms"] == latency_ms
            and row["messages"] == messages
            and not row.get("extra")
        ):
            return bounded
    return None


def targets(run: BenchRun) -> list[Target]:
    plan = run.plan
    sections = run.sections
    rows = analysis.throughput(run)
    out = []
    batch = max(plan.batches)
    low, high = min(plan.latencies_ms), max(plan.latencies_ms)
    fast = _headline(rows, low, batch)
    if fast is not None:
        speedup = fast.speedup_vs_textbook
        msgs_per_s = fast.row["msgs_per_s"]
        out.append(
            Target(
                f"batch {batch} @ {low} ms: throughput vs textbook",
                ">= 20x",
                f"{speedup:.1f}x ({msgs_per_s:.0f} vs {msgs_per_s / speedup:.1f} msg/s)"
                if speedup
                else "n/a",
                speedup is not None and speedup >= 20,
            )
        )
        ratio_to_bound = fast.ratio_to_bound
        assert ratio_to_bound is not None  # the largest batch has a positive CPU limit
        out.append(
            Target(
                f"batch {batch} @ {low} ms: wall vs max(ideal, CPU limit)",
                "<= 1.25x",
                f"{ratio_to_bound:.2f}x ({fast.row['wall_s']:.3f} s vs max({fast.ideal_s:.3f}, "
                f"{fast.cpu_limit_s:.3f}) s)",
                ratio_to_bound <= 1.25,
            )
        )
    slow = _headline(rows, high, batch) if high != low else None
    if slow is not None:
        ratio_to_ideal = slow.ratio_to_ideal
        assert ratio_to_ideal is not None  # a latency above the lowest is above 0
        out.append(
            Target(
                f"batch {batch} @ {high} ms: wall vs ideal",
                "<= 1.15x",
                f"{ratio_to_ideal:.2f}x ({slow.row['wall_s']:.3f} s vs {slow.ideal_s:.3f} s)",
                ratio_to_ideal <= 1.15,
            )
        )
    cpu_rows = sections.get("cpu", {"rows": []})["rows"]
    headline = next(
        (r for r in cpu_rows if r["side"] == "invoker" and r["label"] == f"c{plan.concurrency}"), None
    )
    cpu_ms = analysis.bare_cpu_ms(run)
    if headline is not None:
        per_msg = headline["cpu_ms_per_msg"]
        ratio = headline["vs_bare"]
        out.append(
            Target(
                f"client CPU per message (MAX_CONCURRENCY {plan.concurrency}, 0 ms)",
                "<= 1.0 ms",
                f"{per_msg:.3f} ms",
                per_msg <= 1.0,
            )
        )
        out.append(
            Target(
                "client CPU vs bare boto3 loop",
                "<= 1.15x",
                f"{ratio:.2f}x ({per_msg:.3f} vs {cpu_ms:.3f} ms; median of {headline['rounds']} paired rounds)",
                ratio <= 1.15,
            )
        )
    cold = sections.get("cold_start")
    if cold:
        ratio = cold["invoker"]["import_s"] / cold["bare_import"]["import_s"]
        out.append(
            Target(
                "cold start vs bare boto3 + Powertools import",
                "<= 1.3x",
                f"{ratio:.2f}x ({cold['invoker']['import_s'] * 1000:.0f} vs "
                f"{cold['bare_import']['import_s'] * 1000:.0f} ms, median of {cold['runs']})",
                ratio <= 1.3,
            )
        )
    memory = next((r for r in sections.get("memory", {"rows": []})["rows"] if r["side"] == "invoker"), None)
    if memory is not None:
        out.append(
            Target(
                f"peak RSS, {memory['messages']} messages of {memory['message_size']} B",
                "< 128 MB",
                f"{memory['maxrss_mb']:.1f} MB",
                memory["maxrss_mb"] < 128,
            )
        )
    throttle = analysis.throttling(run)
    if throttle:
        section = throttle.section
        out.append(
            Target(
                f"throttling: MAX_CONCURRENCY {section['over']} vs {section['right']} on capacity "
                f"{section['capacity']}",
                "<= 1.5x",
                f"{throttle.ratio:.2f}x ({throttle.over_wall_s:.2f} vs {throttle.right_wall_s:.2f} s)",
                throttle.ratio <= 1.5,
            )
        )
    system = sections.get("system")
    if system:
        out += system_targets(system)
    lost = analysis.total_lost(run)
    out.append(Target("messages lost (every run)", "0", str(lost), lost == 0))
    return out


def _figures_text(figures: SystemFigures | None) -> str:
    if figures is None:
        return "not measured"
    if not figures.ran:
        return f"not run ({figures.run.get('skipped')})"
    if figures.ratio is None:
        return f"not drained within the time limit ({figures.run['pending']} pending)"
    throttled = figures.throttled_share or 0.0
    return (
        f"{figures.ratio:.2f}x ({figures.run['drain_s'] or 0:.1f} s vs {figures.limit_s:.1f} s), "
        f"{100 * throttled:.1f}% of {figures.run['endpoint_calls']} calls throttled"
    )


def system_targets(section: SystemSection) -> list[Target]:
    """Shared capacity against N x L / C and its throttled share (per-instance figures beside them), and
    nothing lost or dead-lettered in any drain, the scale from zero included."""
    figures = {f.run["mode"]: f for f in analysis.system_figures(section)}
    shared, per_instance = figures.get("shared"), figures.get("per_instance")
    small = figures.get("shared_small_batches")
    applies = analysis.oversubscription(section) >= SYSTEM_OVERSUBSCRIPTION
    stated = (
        f"K {section['slots']} x MAX_CONCURRENCY {section['max_concurrency']} = "
        f"{analysis.oversubscription(section):g} x C {section['capacity']}"
    )
    beside = f"; per instance: {_figures_text(per_instance)}"
    out = []
    if shared is None or not shared.ran or shared.ratio is None:
        out.append(
            Target(
                f"system: shared capacity drain vs N x L / C ({stated})",
                f"<= {SYSTEM_DRAIN_RATIO}x",
                _figures_text(shared) + beside,
                False if shared is not None and shared.ran else None,
            )
        )
    else:
        ratio, throttled = shared.ratio, shared.throttled_share or 0.0
        out.append(
            Target(
                f"system: shared capacity drain vs N x L / C ({stated})",
                f"<= {SYSTEM_DRAIN_RATIO}x",
                f"{ratio:.2f}x ({shared.run['drain_s'] or 0:.1f} s vs {shared.limit_s:.1f} s)"
                + (
                    f"; batches of {section['small_batch_size']}: {small.ratio:.2f}x"
                    if small and small.ratio
                    else ""
                )
                + (
                    f"; per instance: {per_instance.ratio:.2f}x"
                    if per_instance and per_instance.ratio
                    else beside
                ),
                ratio <= SYSTEM_DRAIN_RATIO if applies else None,
            )
        )
        out.append(
            Target(
                "system: shared capacity, throttled share of InvokeEndpoint calls",
                f"< {100 * SYSTEM_THROTTLED_SHARE:.0f}%",
                f"{100 * throttled:.1f}% ({shared.run['endpoint_throttled']} of {shared.run['endpoint_calls']})"
                + (
                    f"; per instance: {100 * (per_instance.throttled_share or 0):.1f}%"
                    f" ({per_instance.run['endpoint_throttled']} of {per_instance.run['endpoint_calls']})"
                    if per_instance and per_instance.ran
                    else ""
                ),
                throttled < SYSTEM_THROTTLED_SHARE if applies else None,
            )
        )
    ran = [f.run for f in figures.values() if f.ran]
    lost = sum(r["lost"] for r in ran)
    dead = sum(r["dead_lettered"] for r in ran)
    out.append(
        Target(
            f"system: lost / dead-lettered over the drains ({', '.join(r['mode'] for r in ran) or 'none ran'})",
            "0 / 0",
            f"{lost} / {dead}",
            lost == 0 and dead == 0 if ran else None,
        )
    )
    scale = section["scale_from_zero"]
    if "skipped" in scale:
        out.append(
            Target(
                "system: scale from zero, lost / dead-lettered",
                "0 / 0",
                f"not run ({scale['skipped']})",
                None,
            )
        )
    else:
        first = scale["first_result_s"]
        drained = scale["drain_s"]
        out.append(
            Target(
                "system: scale from zero, lost / dead-lettered",
                "0 / 0",
                f"{scale['lost']} / {scale['dead_lettered']} (first result after "
                f"{'-' if first is None else f'{first:.0f} s'}, drained after "
                f"{'-' if drained is None else f'{drained:.0f} s'}, provisioning {scale['provisioning_s']} s)",
                scale["lost"] == 0 and scale["dead_lettered"] == 0 and drained is not None,
            )
        )
    return out
