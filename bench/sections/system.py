"""The system section: K function instances against one endpoint, as a deployment runs them.

The local stack (`sqs_sagemaker_invoker.local.stack`) provides it all: moto's SQS, the SageMaker Runtime
emulator with its capacity model (instances x concurrency per instance; above that a request is throttled)
and the event source emulator, whose K slots each run the real handler in a worker process. N messages are
sent up front with the slots idle, then the slots start polling and the clock runs until every message has
a result on the results queue (the result carries the request id) or a copy in the dead-letter queue.

The same messages drain through the same endpoint three times, each on a fresh stack: the function with
shared route capacity, the function with per-instance limiting, and the textbook Powertools handler
(`bench/baseline.py`, run by the same slots as the function's worker handler). Then a scale from zero:
copies start at 0, the route's scaling policy asks for them, the emulator serves them after the
provisioning time. Beside them, moto's own bound, so that a reader sees the endpoint is the bottleneck.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from bench.system_measurements import SYSTEM_MODES

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bench.sections.measure import Session
    from bench.system_measurements import SystemRun, SystemSection

from bench.sections.system_drain import drain, route_config, route_overrides
from bench.sections.system_moto import probe_moto
from bench.sections.system_scale import scale_from_zero


def run(session: Session) -> SystemSection:
    plan = session.plan
    capacity = plan.system_instances * plan.system_concurrency_per_instance
    with _all_cpus():
        session.progress(f"system: moto's bound (about {plan.system_moto_probe_s:.0f} s)")
        moto = probe_moto(plan)
        runs: list[SystemRun] = []
        for mode in SYSTEM_MODES:
            session.progress(
                f"system: {mode}, {plan.system_messages} messages, K={plan.system_slots}, C={capacity}, "
                f"L={plan.system_latency_ms} ms"
            )
            runs.append(drain(plan, mode))
            session.progress(f"system: {mode} {_brief(runs[-1])}")
        session.progress(
            f"system: scale from zero (provisioning {plan.system_provisioning_s} s, "
            f"{plan.system_scale_messages} messages)"
        )
        scale = scale_from_zero(plan, session.progress)
    return {
        "messages": plan.system_messages,
        "slots": plan.system_slots,
        "batch_size": route_config(route_overrides(plan, "per_instance")).batch_size,
        "small_batch_size": plan.system_small_batch,
        "max_concurrency": plan.system_concurrency,
        "instances": plan.system_instances,
        "concurrency_per_instance": plan.system_concurrency_per_instance,
        "capacity": capacity,
        "latency_ms": plan.system_latency_ms,
        "runs": runs,
        "scale_from_zero": scale,
        "moto": moto,
    }


def _brief(each: SystemRun) -> str:
    if "skipped" in each:
        return f"skipped: {each['skipped']}"
    drained = f"{each['drain_s']:.1f} s" if each["drain_s"] is not None else "not drained"
    return (
        f"{drained}, {each['endpoint_calls']} calls ({each['endpoint_throttled']} throttled), "
        f"{each['dead_lettered']} dead-lettered, {each['lost']} lost"
    )


@contextlib.contextmanager
def _all_cpus() -> Iterator[None]:
    """The driver is pinned to the servers' CPU(s) by the bench stack; the local stack's processes (moto,
    the emulator's threads, K workers) inherit the mask, so they get every CPU while this section runs."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
