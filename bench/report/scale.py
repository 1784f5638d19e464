"""RESULTS.md, section 5: the scale model and its assumptions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.plan import ARM64_PRICE_PER_GB_S, ESM_MAX_CONCURRENCY, LAMBDA_MEMORY_MB, MB_PER_VCPU
from bench.report.table import table
from bench.scale_model import scale_model

if TYPE_CHECKING:
    from bench.measurements import BenchRun


def section(run: BenchRun) -> list[str]:
    rows = scale_model(run)
    if not rows:
        return []
    share = LAMBDA_MEMORY_MB / MB_PER_VCPU
    out = [
        "## 5. Scale model",
        "",
        "From the measured batches above (batch of the largest size, results discarded). Assumptions: one "
        f"function instance = the measured client CPU; Lambda gives {LAMBDA_MEMORY_MB} MB "
        f"{share:.2f} of a vCPU ({MB_PER_VCPU} MB = 1 vCPU), so a concurrent handler's wall time at "
        f"{LAMBDA_MEMORY_MB} MB is max(measured, CPU / {share:.2f}) and a sequential one's grows by its CPU x "
        f"({1 / share:.2f} - 1); an arm64 vCPU is taken as fast as this machine's core (not verified); the "
        f"endpoint has capacity for every in-flight request (at the event source mapping's maximum of "
        f"{ESM_MAX_CONCURRENCY} instances that is {ESM_MAX_CONCURRENCY} x MAX_CONCURRENCY); prices arm64 "
        f"${ARM64_PRICE_PER_GB_S:.10f} per GB-s and $0.20 per million requests; SQS, SageMaker and CloudWatch "
        "Logs ingestion are not included.",
        "",
    ]
    out += table(
        [
            "handler",
            "MAX_CONCURRENCY",
            "latency",
            "msg/s per instance (1 vCPU, measured)",
            f"msg/s per instance ({LAMBDA_MEMORY_MB} MB, modelled)",
            f"msg/s at {ESM_MAX_CONCURRENCY} instances ({LAMBDA_MEMORY_MB} MB)",
            "endpoint in-flight needed",
            f"Lambda $ per million messages ({LAMBDA_MEMORY_MB} MB)",
            "Lambda $ per million (1,769 MB)",
        ],
        [
            [
                "invoker" if r.side == "invoker" else "textbook",
                str(r.concurrency),
                f"{r.latency_ms} ms",
                f"{r.msgs_per_s_1vcpu:,.0f}",
                f"{r.msgs_per_s_512mb:,.0f}",
                f"{r.fleet_msgs_per_s_512mb:,.0f}",
                f"{r.endpoint_in_flight_at_fleet:,}",
                f"${r.cost_per_million_512mb:.2f}",
                f"${r.cost_per_million_1769mb:.2f}",
            ]
            for r in rows
        ],
    )
    return out
