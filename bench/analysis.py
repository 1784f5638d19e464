"""From raw measurements to derived figures: the CPU of one bare call, each throughput row against its
bounds, the throttling ratios and the messages lost. bench.targets and bench.scale_model build on these."""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.measurements import BenchRun, ThrottlingSection, ThroughputRow
    from bench.system_measurements import SystemRun, SystemSection


def bare_cpu_ms(run: BenchRun) -> float:
    """CPU of one bare boto3 call: the median of the CPU section's rounds (interleaved with the handlers),
    else the mean of the calibrations at the start and the end of the run."""
    for row in run.sections.get("cpu", {"rows": []})["rows"]:
        if row["label"] == "bare":
            return float(row["cpu_ms_per_msg"])
    values = [c["cpu_ms_per_call"] for c in run.sections.get("calibration", [])]
    return statistics.fmean(values) if values else float("nan")


@dataclass(frozen=True)
class Bounded:
    """A throughput row against its bounds: ideal time ceil(N/C) x latency, client CPU limit N x one bare
    call, and the ratios of its wall time to them."""

    row: ThroughputRow
    ideal_s: float
    cpu_limit_s: float
    bound_s: float
    ratio_to_bound: float | None
    ratio_to_ideal: float | None
    # The invoker's rows: its msg/s over the textbook handler's at the same latency and batch.
    speedup_vs_textbook: float | None = None


def with_bounds(row: ThroughputRow, cpu_ms: float) -> Bounded:
    messages, concurrency, latency = row["messages"], row["concurrency"], row["latency_ms"]
    ideal = math.ceil(messages / concurrency) * latency / 1000
    cpu_limit = messages * cpu_ms / 1000
    bound = max(ideal, cpu_limit)
    return Bounded(
        row=row,
        ideal_s=ideal,
        cpu_limit_s=cpu_limit,
        bound_s=bound,
        ratio_to_bound=row["wall_s"] / bound if bound > 0 else None,
        ratio_to_ideal=row["wall_s"] / ideal if ideal > 0 else None,
    )


def throughput(run: BenchRun) -> list[Bounded]:
    """The matrix's rows (extra latencies included), with the invoker's speed-up over the textbook."""
    cpu_ms = bare_cpu_ms(run)
    rows = [with_bounds(r, cpu_ms) for r in run.sections.get("matrix", {"rows": []})["rows"]]
    baseline = {(b.row["latency_ms"], b.row["messages"]): b.row for b in rows if b.row["side"] == "baseline"}
    out = []
    for bounded in rows:
        row = bounded.row
        base = baseline.get((row["latency_ms"], row["messages"]))
        if row["side"] == "invoker" and base is not None and base["msgs_per_s"] > 0:
            out.append(
                dataclasses.replace(bounded, speedup_vs_textbook=row["msgs_per_s"] / base["msgs_per_s"])
            )
        else:
            out.append(bounded)
    return out


def sweep(run: BenchRun) -> list[Bounded]:
    cpu_ms = bare_cpu_ms(run)
    return [with_bounds(r, cpu_ms) for r in run.sections.get("sweep", {"rows": [], "skipped": []})["rows"]]


@dataclass(frozen=True)
class ThrottlingSummary:
    """Handler time with MAX_CONCURRENCY far over the endpoint's capacity against right-sized: medians
    over the runs, the first runs alone, and with the backoff the function asked for added."""

    section: ThrottlingSection
    over_wall_s: float
    right_wall_s: float
    ratio: float
    first_ratio: float
    with_backoff_ratio: float


def throttling(run: BenchRun) -> ThrottlingSummary | None:
    section = run.sections.get("throttling")
    if not section:
        return None
    over = section["runs"][str(section["over"])]
    right = section["runs"][str(section["right"])]
    over_wall = statistics.median(r["handler_wall_s"] for r in over)
    right_wall = statistics.median(r["handler_wall_s"] for r in right)
    return ThrottlingSummary(
        section=section,
        over_wall_s=over_wall,
        right_wall_s=right_wall,
        ratio=over_wall / right_wall,
        first_ratio=over[0]["handler_wall_s"] / right[0]["handler_wall_s"],
        with_backoff_ratio=statistics.median(r["handler_wall_s"] + r["backoff_wait_s"] for r in over)
        / statistics.median(r["handler_wall_s"] + r["backoff_wait_s"] for r in right),
    )


def total_lost(run: BenchRun) -> int:
    """Messages lost over every row and run of every section."""
    sections = run.sections
    rows: list[int] = []
    rows += [r["lost"] for r in sections.get("cpu", {"rows": []})["rows"]]
    rows += [r["lost"] for r in sections.get("matrix", {"rows": []})["rows"]]
    rows += [r["lost"] for r in sections.get("sweep", {"rows": [], "skipped": []})["rows"]]
    if "delivery" in sections:
        rows += [r["lost"] for r in sections["delivery"]["rows"]]
    rows += [r["lost"] for r in sections.get("memory", {"rows": []})["rows"]]
    if "throttling" in sections:
        rows += [r["lost"] for runs in sections["throttling"]["runs"].values() for r in runs]
    if "system" in sections:
        rows += [r["lost"] for r in sections["system"]["runs"]]
        rows.append(sections["system"]["scale_from_zero"]["lost"])
    return sum(int(lost) for lost in rows)


# -- the system section ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank (q from 0 to 100): always a value that was measured, never an interpolation, so a
    p99 of 400 latencies is the 396th; None when there is nothing to rank."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def physical_limit_s(messages: int, latency_ms: float, capacity: int) -> float:
    """N x L / C: no client drains N calls of latency L faster through C concurrent slots (whatever the
    number of function instances), so the drain time is read as a multiple of it."""
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    return messages * latency_ms / 1000 / capacity


def share(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


@dataclass(frozen=True)
class SystemFigures:
    """One drain against the physical limit, with the endpoint's calls per message and the throttled share."""

    run: SystemRun
    limit_s: float
    ratio: float | None
    throttled_share: float | None
    calls_per_message: float | None

    @property
    def ran(self) -> bool:
        return "skipped" not in self.run


def system_figures(section: SystemSection) -> list[SystemFigures]:
    limit = physical_limit_s(section["messages"], section["latency_ms"], section["capacity"])
    out = []
    for each in section["runs"]:
        drain = each["drain_s"]
        out.append(
            SystemFigures(
                run=each,
                limit_s=limit,
                ratio=drain / limit if drain is not None and limit > 0 else None,
                throttled_share=share(each["endpoint_throttled"], each["endpoint_calls"]),
                calls_per_message=each["endpoint_calls"] / each["messages"] if each["messages"] else None,
            )
        )
    return out


def oversubscription(section: SystemSection) -> float:
    """K x MAX_CONCURRENCY / C: how many calls the instances could start at once per call the endpoint
    takes (the shared-capacity target is stated for 4 and above)."""
    return section["slots"] * section["max_concurrency"] / section["capacity"]
