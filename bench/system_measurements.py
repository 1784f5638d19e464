"""What the system section measured (raw/results.json's `system`): K function instances draining one
endpoint in each mode, a scale from zero, and moto's own bound."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# shared_small_batches: shared capacity with batches that divide the budget's ceiling (each batch leases
# its slots from the route's budget, so the route's batch size may matter to the shared drain).
SystemMode = Literal["shared", "shared_small_batches", "per_instance", "textbook"]
SYSTEM_MODES: tuple[SystemMode, ...] = ("shared", "shared_small_batches", "per_instance", "textbook")


class SystemRun(TypedDict):
    """One drain of the system section: N messages sent up front, then K event source slots running one
    handler against the endpoint, until every message has a result or a dead-letter copy."""

    mode: SystemMode
    messages: int
    # Why the run did not happen (the mode is missing from this checkout); the figures are then zeros.
    skipped: NotRequired[str]
    # From the moment the slots start polling to the last message settled; None: not drained in time.
    drain_s: float | None
    # Where "settled" is read: the results queue (the result carries the request id) or, for the
    # textbook handler that delivers nothing, the event source's acknowledgement (the message deleted).
    settled_by: Literal["results_queue", "acknowledged"]
    endpoint_calls: int
    endpoint_ok: int
    endpoint_throttled: int
    # Every other outcome the emulator counted (no_capacity, model errors...), by name.
    endpoint_other: dict[str, int]
    results: int
    dead_lettered: int
    duplicates: int
    # Not settled when the run ended: still on the request queue (pending) or nowhere (lost).
    pending: int
    lost: int
    # Send to result (or acknowledgement), per request.
    latency_p50_s: float | None
    latency_p99_s: float | None
    batches: int
    batch_failures: dict[str, int]
    # Seconds from the start of the drain at which each message settled, in order (the drain curve).
    settled_at_s: list[float]
    # Shared capacity: the route's budget item as the drain left it (ceiling, capacity, limit, cutEpoch,
    # version); empty when there is none, i.e. the instances fell back to their own limiters throughout.
    budget: NotRequired[dict[str, float]]


class CapacitySample(TypedDict):
    """The scale-from-zero run, sampled about once a second."""

    t_s: float
    serving: int
    desired: int
    visible: int
    in_flight: int
    settled: int


class ScaleFromZeroRun(TypedDict):
    messages: int
    skipped: NotRequired[str]
    max_copies: int
    provisioning_s: int
    # The route's retry settings: the smallest maxReceiveCount that passes the synth check
    # (scaling.check_retries_outlast_scale_out) with these backoff bounds.
    retry_base_seconds: int
    retry_max_seconds: int
    max_receive_count: int
    first_result_s: float | None
    first_serving_s: float | None
    drain_s: float | None
    endpoint_calls: int
    endpoint_ok: int
    endpoint_no_capacity: int
    endpoint_throttled: int
    results: int
    dead_lettered: int
    duplicates: int
    pending: int
    lost: int
    samples: list[CapacitySample]
    settled_at_s: list[float]


class MotoRate(TypedDict):
    call: str
    calls: int
    messages: int
    seconds: float
    calls_per_s: float
    msgs_per_s: float


class MotoBound(TypedDict):
    """How fast the local stack's moto server takes SQS calls from one client, one call at a time."""

    rates: list[MotoRate]


class SystemSection(TypedDict):
    messages: int
    slots: int
    # The route's batch size (cdk.json): each shared-capacity batch leases its slots from the budget.
    batch_size: int
    # The batch size of the shared_small_batches run.
    small_batch_size: int
    max_concurrency: int
    instances: int
    concurrency_per_instance: int
    capacity: int
    latency_ms: int
    runs: list[SystemRun]
    scale_from_zero: ScaleFromZeroRun
    moto: MotoBound
