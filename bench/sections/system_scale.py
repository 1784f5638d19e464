"""The system section's scale from zero: copies start at 0 and the route's scaling policy, applied by the
local autoscaler, brings them up while a burst waits."""

from __future__ import annotations

import importlib.util
import threading
import time
from typing import TYPE_CHECKING, Any

from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions
from sqs_sagemaker_invoker.scaling import ScalingConfigError, ScalingPolicy, check_retries_outlast_scale_out

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.plan import Plan
    from bench.system_measurements import CapacitySample, ScaleFromZeroRun

from bench.sections.system_drain import (
    SAMPLE_INTERVAL_S,
    drain_on,
    endpoint_name_of,
    endpoint_spec,
    route_config,
    route_overrides,
)
from bench.sections.system_traffic import Ledger, message_bodies, queue_depth

# -- scale from zero ------------------------------------------------------------------------------------


def scale_retry_settings(plan: Plan, policy: ScalingPolicy) -> tuple[int, int, int]:
    """(retryBaseSeconds, retryMaxSeconds, maxReceiveCount): short backoff bounds, so that a message
    comes back soon after capacity appears, and the fewest deliveries that still pass the synth check
    (the waits of a message finding no capacity outlast detection + provisioning)."""
    base, top = (1, 4) if plan.smoke else (2, 30)
    for count in range(2, 1001):
        try:
            check_retries_outlast_scale_out(
                policy, max_receive_count=count, retry_base_seconds=base, retry_max_seconds=top
            )
        except ScalingConfigError:
            continue
        return base, top, count
    raise ValueError("no maxReceiveCount up to 1000 outlasts the scale-out")


def scale_overrides(plan: Plan) -> tuple[dict[str, Any], int, int, int]:
    policy = ScalingPolicy(
        unit="copies",
        min_capacity=0,
        max_capacity=plan.system_instances,
        target_backlog_per_instance=10,
        # All copies at once: the peak capacity (C) is there after one provisioning time, not several.
        scale_from_zero_step=plan.system_instances,
        provisioning_seconds=plan.system_provisioning_s,
    )
    base, top, count = scale_retry_settings(plan, policy)
    overrides: dict[str, Any] = {
        **route_overrides(plan, "shared"),
        "capacity": {
            "mode": "shared",
            "concurrencyPerInstance": plan.system_concurrency_per_instance,
            # The emulator hosts one component per endpoint counted in copies, named like the endpoint.
            "inferenceComponentName": route_config(route_overrides(plan, "shared")).endpoint_name,
        },
        "scaling": {
            "minCapacity": 0,
            "maxCapacity": plan.system_instances,
            "targetBacklogPerInstance": policy.target_backlog_per_instance,
            "scaleFromZeroStep": policy.scale_from_zero_step,
            "provisioningSeconds": plan.system_provisioning_s,
        },
        "retryBaseSeconds": base,
        "retryMaxSeconds": top,
        "maxReceiveCount": count,
    }
    return overrides, base, top, count


def _skipped_scale(plan: Plan, reason: str, settings: tuple[int, int, int]) -> ScaleFromZeroRun:
    return {
        "messages": plan.system_scale_messages,
        "skipped": reason,
        "max_copies": plan.system_instances,
        "provisioning_s": plan.system_provisioning_s,
        "retry_base_seconds": settings[0],
        "retry_max_seconds": settings[1],
        "max_receive_count": settings[2],
        "first_result_s": None,
        "first_serving_s": None,
        "drain_s": None,
        "endpoint_calls": 0,
        "endpoint_ok": 0,
        "endpoint_no_capacity": 0,
        "endpoint_throttled": 0,
        "results": 0,
        "dead_lettered": 0,
        "duplicates": 0,
        "pending": 0,
        "lost": 0,
        "samples": [],
        "settled_at_s": [],
    }


def scale_from_zero(plan: Plan, progress: Callable[[str], None]) -> ScaleFromZeroRun:
    overrides, base, top, count = scale_overrides(plan)
    settings = (base, top, count)
    if importlib.util.find_spec("sqs_sagemaker_invoker.local.autoscaler") is None:  # before it lands
        return _skipped_scale(
            plan, "no local autoscaler in this checkout (sqs_sagemaker_invoker/local/autoscaler.py)", settings
        )
    try:
        endpoint = endpoint_name_of(overrides)
    except ValueError as exc:
        return _skipped_scale(plan, f"the route does not load: {exc}", settings)
    bodies = message_bodies(plan.system_scale_messages, plan.message_size, seed=0x5F)
    ledger = Ledger()
    options = StackOptions(
        route_overrides=overrides,
        endpoints={endpoint: endpoint_spec(plan, endpoint, instances=0, unit="copies")},
        default_container="inline",
        state_dir=None,
        start_event_sources=False,
        prewarm=True,
    )
    try:
        stack = LocalStack(options).start()
    except ValueError as exc:
        return _skipped_scale(plan, f"{type(exc).__name__}: {exc}", settings)
    samples: list[CapacitySample] = []
    first_serving: list[float] = []
    stop = threading.Event()

    def sample(start: float) -> None:
        """Once a second from the first send: the emulator's copies and moto's backlog, on their own
        thread so that the sends (seconds for a burst against moto) leave no gap at the start."""
        assert stack.emulator is not None
        sqs = stack.sqs()
        url = stack.route().request_queue_url
        while not stop.is_set():
            now = time.time()
            status = stack.emulator.capacity(endpoint)
            visible, hidden = queue_depth(sqs, url)
            serving = int(status["current"])
            if serving and not first_serving:
                first_serving.append(now - start)
                progress(f"system: scale from zero: {serving} copies serving after {now - start:.0f} s")
            samples.append(
                {
                    "t_s": round(now - start, 2),
                    "serving": serving,
                    "desired": int(status["desired"]),
                    "visible": visible,
                    "in_flight": hidden,
                    "settled": ledger.settled(),
                }
            )
            stop.wait(max(0.0, SAMPLE_INTERVAL_S - (time.time() - now)))

    sampler: list[threading.Thread] = []

    def start_sampling(start: float) -> None:
        thread = threading.Thread(target=sample, args=(start,), name="system-sampler", daemon=True)
        thread.start()
        sampler.append(thread)

    try:
        start, end, pending, _, stats = drain_on(
            stack,
            plan,
            bodies,
            ledger,
            timeout_s=plan.system_scale_timeout_s,
            on_start=start_sampling,
            burst=True,
        )
    finally:
        stop.set()
        for thread in sampler:
            thread.join(timeout=10)
        stack.stop()
    drained = ledger.settled() == len(bodies) and pending == 0
    return {
        "messages": len(bodies),
        "max_copies": plan.system_instances,
        "provisioning_s": plan.system_provisioning_s,
        "retry_base_seconds": base,
        "retry_max_seconds": top,
        "max_receive_count": count,
        "first_result_s": ledger.first_result - start if ledger.first_result is not None else None,
        "first_serving_s": first_serving[0] if first_serving else None,
        "drain_s": end - start if drained else None,
        "endpoint_calls": stats.get("total", 0),
        "endpoint_ok": stats.get("ok", 0),
        "endpoint_no_capacity": stats.get("no_capacity", 0),
        "endpoint_throttled": stats.get("throttled", 0),
        "results": len(ledger.results),
        "dead_lettered": len(ledger.dead),
        "duplicates": ledger.duplicates,
        "pending": pending,
        "lost": max(0, len(bodies) - ledger.settled() - pending),
        "samples": samples,
        "settled_at_s": ledger.offsets(start),
    }
