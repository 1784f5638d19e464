"""What one benchmark run measures, and how often: the full run (`make bench`) and the CI smoke."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

# Lambda allocates CPU in proportion to memory: 1,769 MB is one full vCPU.
MB_PER_VCPU = 1769
LAMBDA_MEMORY_MB = 512
ARM64_PRICE_PER_GB_S = 0.0000133334
PRICE_PER_MILLION_REQUESTS = 0.20
ESM_MAX_CONCURRENCY = 1000


@dataclass(frozen=True)
class Plan:
    smoke: bool = False
    message_size: int = 1024
    # The headline configuration of the function (MAX_CONCURRENCY) for the matrix and the CPU targets.
    concurrency: int = 64
    latencies_ms: tuple[int, ...] = (20, 100)
    batches: tuple[int, ...] = (10, 100, 1000)
    # Repetitions by batch size; the median is reported.
    handler_reps: dict[int, int] = field(default_factory=lambda: {10: 20, 100: 10, 1000: 5})
    baseline_reps: dict[int, int] = field(default_factory=lambda: {10: 5, 100: 2, 1000: 1})
    # None: the textbook handler runs every batch in full (1,000 at 100 ms is 100 s). A number: batches
    # above it run that many messages and the wall time is extrapolated linearly, flagged in the report.
    baseline_max_messages: int | None = None
    extra_latencies_ms: tuple[int, ...] = (0, 5, 50, 200)
    extra_reps: int = 3
    sweep_concurrency: tuple[int, ...] = (1, 4, 16, 64, 128, 256)
    sweep_latencies_ms: tuple[int, ...] = (20, 100)
    sweep_batch: int = 1000
    # Sweep points whose ideal time is longer than this are skipped (1 x 1,000 at 100 ms = 100 s).
    sweep_max_ideal_s: float = 30.0
    bare_calls: int = 2000
    cpu_batch: int = 1000
    # Rounds over every configuration in turn (bare loop included), so that drift hits all alike.
    cpu_rounds: int = 7
    cpu_concurrency: tuple[int, ...] = (1, 16, 64)
    cold_runs: int = 15
    rss_messages: int = 1000
    throttle_messages: int = 1000
    throttle_latency_ms: int = 20
    throttle_capacity: int = 16
    throttle_concurrency: tuple[int, int] = (64, 16)
    throttle_reps: int = 3
    delivery_batches: tuple[int, ...] = (100, 1000)
    delivery_latency_ms: int = 20
    # Delivery against an SQS whose every call takes round_trip_sqs_ms (bench.slow_sqs), by calls in flight.
    round_trip_messages: int = 2000
    round_trip_sqs_ms: int = 20
    round_trip_in_flight: tuple[int, ...] = (1, 2, 4, 8)
    profile_batch: int = 1000
    profile_reps: int = 5
    # The system section: K function instances (event source slots) against one endpoint of capacity
    # C = instances x concurrency per instance at latency L, draining N messages sent up front. The
    # endpoint is the bottleneck by design: C / L = 16 calls/s, far below what moto's SQS takes (measured
    # by the probe, about system_moto_probe_s). K x MAX_CONCURRENCY = 64 >= 4 x C, the target's condition.
    system_messages: int = 400
    system_slots: int = 4
    system_concurrency: int = 16
    system_instances: int = 4
    system_concurrency_per_instance: int = 2
    system_latency_ms: int = 500
    # Shared capacity once more with batches that divide C (cdk.json's 10 does not divide 8).
    system_small_batch: int = 4
    # A run that has not drained by then is called off (its messages count as pending, not as drained).
    system_timeout_s: float = 600.0
    system_moto_probe_s: float = 20.0
    # Scale from zero: copies start at 0 and may grow to system_instances (peak capacity C); a new copy
    # serves system_provisioning_s after it is asked for (the target: 2 minutes).
    system_scale_messages: int = 400
    system_provisioning_s: int = 120
    system_scale_timeout_s: float = 900.0

    @classmethod
    def smoke_plan(cls) -> Plan:
        """Tiny sizes (well under a minute): every section runs, so the benchmark cannot rot."""
        return replace(
            cls(),
            smoke=True,
            concurrency=16,
            latencies_ms=(20,),
            batches=(10, 50),
            handler_reps={10: 2, 50: 1},
            baseline_reps={10: 1, 50: 1},
            extra_latencies_ms=(0,),
            extra_reps=1,
            sweep_concurrency=(4, 16),
            sweep_latencies_ms=(20,),
            sweep_batch=50,
            bare_calls=100,
            cpu_batch=100,
            cpu_rounds=1,
            cpu_concurrency=(16,),
            cold_runs=2,
            rss_messages=100,
            throttle_messages=100,
            throttle_capacity=4,
            throttle_concurrency=(16, 4),
            throttle_reps=1,
            delivery_batches=(20,),
            round_trip_messages=200,
            round_trip_in_flight=(4,),
            profile_batch=100,
            profile_reps=1,
            system_messages=40,
            system_slots=2,
            system_concurrency=8,
            system_instances=2,
            system_concurrency_per_instance=2,
            system_latency_ms=100,
            system_small_batch=2,
            system_timeout_s=120.0,
            system_moto_probe_s=1.5,
            system_scale_messages=20,
            system_provisioning_s=3,
            system_scale_timeout_s=180.0,
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Plan:
        """The plan as raw/results.json holds it (`dataclasses.asdict`, through JSON: tuples became lists
        and the repetition tables' keys strings)."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in record:
                continue
            value = record[item.name]
            if isinstance(value, list):
                value = tuple(value)
            elif isinstance(value, dict):
                value = {int(key): count for key, count in value.items()}
            values[item.name] = value
        return cls(**values)

    def reps_for(self, messages: int, *, baseline: bool) -> int:
        table = self.baseline_reps if baseline else self.handler_reps
        return table.get(messages, 1)
