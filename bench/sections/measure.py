"""What every section works with: the stack, the plan and a progress line; and the one measurement of a
handler on a batch that most sections share."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.messages import MessageSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.instances import LambdaInstance
    from bench.measurements import BatchSummary, Measurement
    from bench.plan import Plan
    from bench.protocol import CallWithLog
    from bench.stack import BenchStack


def summarize(reps: list[CallWithLog], messages: int) -> BatchSummary:
    walls = [r["wall_s"] for r in reps]
    cpus = [r["cpu_s"] for r in reps]
    wall = statistics.median(walls)
    latencies = [latency for r in reps if (latency := r["invocation_latency_ms_median"])]
    metrics: dict[str, int] = {}
    for rep in reps:
        for name, value in rep.get("metrics", {}).items():
            metrics[name] = metrics.get(name, 0) + int(value)
    return {
        "messages": messages,
        "reps": len(reps),
        "wall_s": wall,
        "wall_s_min": min(walls),
        "wall_s_max": max(walls),
        "msgs_per_s": messages / wall if wall > 0 else 0.0,
        "cpu_s": statistics.median(cpus),
        "cpu_ms_per_msg": 1000 * statistics.median(cpus) / messages,
        "user_s": statistics.median(r["user_s"] for r in reps),
        "sys_s": statistics.median(r["sys_s"] for r in reps),
        "failures": sum(r["failures"] for r in reps),
        "metrics": metrics,
        "log_bytes_per_msg": statistics.median(r.get("log_bytes", 0) for r in reps) / messages,
        "concurrency_limit_min": min(
            (limit for r in reps if (limit := r["concurrency_limit_min"]) is not None),
            default=None,
        ),
        "involuntary_switches_per_msg": statistics.median(r["involuntary_switches"] for r in reps) / messages,
        "invocation_latency_ms_median": statistics.median(latencies) if latencies else None,
    }


@dataclass
class Session:
    stack: BenchStack
    plan: Plan
    progress: Callable[[str], None]

    def messages(self, count: int, seed: int) -> MessageSpec:
        return MessageSpec(count, self.plan.message_size, seed)

    def invoker(self, concurrency: int, label: str = "", **env: str) -> LambdaInstance:
        return self.stack.instance(
            "invoker", self.stack.function_env(concurrency=concurrency, **env), label or f"c{concurrency}"
        )

    def baseline(self) -> LambdaInstance:
        return self.stack.instance("baseline")

    def measure(
        self, instance: LambdaInstance, messages: int, *, reps: int, warmup: int, seed: int
    ) -> Measurement:
        """Warm-up batch (not measured: connections and threads of a warm instance), then `reps`
        batches; also the endpoint's answers and the servers' CPU over the same time."""
        stats0, cpu0, started = self.stack.endpoint_stats(), self.stack.server_cpu(), time.perf_counter()
        answer = instance.batch(self.messages(messages, seed), reps=reps, warmup=warmup, timeout=1800)
        elapsed, stats1, cpu1 = (
            time.perf_counter() - started,
            self.stack.endpoint_stats(),
            self.stack.server_cpu(),
        )
        summary = summarize(answer["reps"], messages)
        served_ok = stats1["ok"] - stats0["ok"] - warmup
        acknowledged = messages * reps - summary["failures"]
        dead_lettered = summary["metrics"].get("DeadLettered", 0)
        return {
            **summary,
            # An acknowledged message must have been answered by the endpoint (or dead-lettered): any
            # shortfall would be a message deleted without a result.
            "lost": max(0, acknowledged - dead_lettered - served_ok),
            "endpoint_throttled": stats1["throttled"] - stats0["throttled"],
            "server_cpu_util": {k: (cpu1[k] - cpu0[k]) / elapsed for k in cpu0 if k in cpu1},
            "kind": instance.kind,
        }
