"""The scale model: per-instance and fleet throughput, and Lambda's cost per million messages, from the
measured rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench import analysis
from bench.plan import (
    ARM64_PRICE_PER_GB_S,
    ESM_MAX_CONCURRENCY,
    LAMBDA_MEMORY_MB,
    MB_PER_VCPU,
    PRICE_PER_MILLION_REQUESTS,
)

if TYPE_CHECKING:
    from bench.analysis import Bounded
    from bench.measurements import BenchRun, Side


@dataclass(frozen=True)
class ScaleRow:
    side: Side
    concurrency: int
    latency_ms: int
    batch: int
    msgs_per_s_1vcpu: float
    msgs_per_s_512mb: float
    fleet_msgs_per_s_512mb: float
    endpoint_in_flight_at_fleet: int
    cost_per_million_512mb: float
    cost_per_million_1769mb: float
    wall_s: float
    wall_s_512mb: float


def scale_model(run: BenchRun) -> list[ScaleRow]:
    """Per-instance and fleet throughput, and Lambda cost per million messages, from measured rows.

    Measured: one batch on one dedicated CPU (Lambda at 1,769 MB). Modelled for 512 MB, where Lambda
    gives 512/1769 of a vCPU: a concurrent handler's wall time becomes max(measured, CPU / share); a
    sequential handler's grows by its CPU x (1/share - 1)."""
    plan = run.plan
    share = LAMBDA_MEMORY_MB / MB_PER_VCPU
    candidates = [b for b in analysis.throughput(run) + analysis.sweep(run) if not b.row.get("extra")]
    batch = max(plan.batches)
    chosen: dict[tuple[str, int, int], Bounded] = {}
    for bounded in candidates:
        row = bounded.row
        if row["messages"] != batch or row["latency_ms"] not in plan.latencies_ms:
            continue
        chosen.setdefault((row["side"], row["concurrency"], row["latency_ms"]), bounded)
    out = []
    for (side, concurrency, latency), bounded in sorted(
        chosen.items(), key=lambda kv: (kv[0][2], kv[0][0] != "baseline", kv[0][1])
    ):
        row = bounded.row
        if side == "invoker" and concurrency not in (16, plan.concurrency):
            continue
        wall = float(row["wall_s"])
        messages = int(row["messages"])
        cpu_s = row["cpu_ms_per_msg"] * messages / 1000
        # Sequential: CPU and waiting add up. Concurrent: CPU overlaps the waiting.
        wall_512 = wall + cpu_s * (1 / share - 1) if side == "baseline" else max(wall, cpu_s / share)
        out.append(
            ScaleRow(
                side=row["side"],
                concurrency=concurrency,
                latency_ms=latency,
                batch=messages,
                msgs_per_s_1vcpu=messages / wall,
                msgs_per_s_512mb=messages / wall_512,
                fleet_msgs_per_s_512mb=ESM_MAX_CONCURRENCY * messages / wall_512,
                endpoint_in_flight_at_fleet=ESM_MAX_CONCURRENCY * concurrency,
                cost_per_million_512mb=cost_per_million(messages, wall_512, LAMBDA_MEMORY_MB),
                cost_per_million_1769mb=cost_per_million(messages, wall, MB_PER_VCPU),
                wall_s=wall,
                wall_s_512mb=wall_512,
            )
        )
    return out


def cost_per_million(batch: int, seconds: float, memory_mb: int) -> float:
    """Lambda's price of a million messages in batches of `batch`, each invocation `seconds` long."""
    invocations = 1_000_000 / batch
    gb = memory_mb / 1024
    return invocations * (seconds * gb * ARM64_PRICE_PER_GB_S + PRICE_PER_MILLION_REQUESTS / 1_000_000)
