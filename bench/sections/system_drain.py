"""The system section's drains: one drain of N messages through K function instances on a fresh local
stack, in one of the modes (shared capacity, per-instance limiting, the textbook handler)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3

from bench.analysis import percentile
from bench.sections.system_traffic import Ledger, message_bodies, queue_depth, read_outcomes, send_all
from bench.stack import ROOT
from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.local.aws import client_kwargs
from sqs_sagemaker_invoker.local.context import read_context, with_route_overrides
from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from bench.plan import Plan
    from bench.system_measurements import SystemMode, SystemRun
    from sqs_sagemaker_invoker.infra.config import RouteConfig


# The textbook handler is bench/baseline.py, imported by the worker as a top-level module.
TEXTBOOK_HANDLER = "baseline.lambda_handler"
TEXTBOOK_CODE_ROOT = ROOT / "bench"
# How often the driver reads the results queue and the DLQ while a run drains.
FOLLOW_INTERVAL_S = 0.25
# How often the scale from zero samples the endpoint's copies and the backlog.
SAMPLE_INTERVAL_S = 1.0

# -- one drain ------------------------------------------------------------------------------------------


def route_overrides(plan: Plan, mode: SystemMode) -> dict[str, Any]:
    """The route's settings for one run (cdk.json spelling): K slots, MAX_CONCURRENCY, results on the
    queue only (the driver reads them there; no S3 copy to load moto with), and the capacity mode."""
    overrides: dict[str, Any] = {
        "maxConcurrency": plan.system_slots,
        "endpointCallsInFlight": plan.system_concurrency,
        "results": {"queue": True, "bucket": False},
        "largePayloads": False,
    }
    if mode == "shared_small_batches":
        overrides["batchSize"] = plan.system_small_batch
    if mode in ("shared", "shared_small_batches"):
        overrides["capacity"] = {
            "mode": "shared",
            "concurrencyPerInstance": plan.system_concurrency_per_instance,
        }
    else:
        # The textbook handler ignores the capacity settings; per instance needs no table.
        overrides["capacity"] = {"mode": "perInstance"}
    return overrides


def endpoint_spec(plan: Plan, name: str, *, instances: int, unit: str) -> Any:
    from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec  # noqa: PLC0415 - the stack's other half

    return EndpointSpec(
        name=name,
        container="inline",
        latency_ms=plan.system_latency_ms,
        instances=instances,
        concurrency_per_instance=plan.system_concurrency_per_instance,
        capacity_unit=unit,  # type: ignore[arg-type]
        record_requests=False,
    )


def route_config(overrides: Mapping[str, Any]) -> RouteConfig:
    """The route the stack will run: the repository's cdk.json with the run's overrides."""
    context = with_route_overrides(read_context(ROOT / "cdk.json"), overrides)
    return load_app_config(context).routes[0]


def endpoint_name_of(overrides: Mapping[str, Any]) -> str:
    return route_config(overrides).endpoint_name


def _skipped_run(mode: SystemMode, messages: int, reason: str) -> SystemRun:
    return {
        "mode": mode,
        "messages": messages,
        "skipped": reason,
        "drain_s": None,
        "settled_by": "acknowledged" if mode == "textbook" else "results_queue",
        "endpoint_calls": 0,
        "endpoint_ok": 0,
        "endpoint_throttled": 0,
        "endpoint_other": {},
        "results": 0,
        "dead_lettered": 0,
        "duplicates": 0,
        "pending": 0,
        "lost": 0,
        "latency_p50_s": None,
        "latency_p99_s": None,
        "batches": 0,
        "batch_failures": {},
        "settled_at_s": [],
    }


def drain(plan: Plan, mode: SystemMode) -> SystemRun:
    bodies = message_bodies(plan.system_messages, plan.message_size, seed=0x5E)
    overrides = route_overrides(plan, mode)
    try:
        endpoint = endpoint_name_of(overrides)
    except ValueError as exc:
        return _skipped_run(mode, len(bodies), f"the route does not load: {exc}")
    ledger = Ledger()
    textbook = mode == "textbook"
    options = StackOptions(
        route_overrides=overrides,
        endpoints={
            endpoint: endpoint_spec(plan, endpoint, instances=plan.system_instances, unit="instances")
        },
        default_container="inline",
        state_dir=None,
        start_event_sources=False,
        prewarm=True,
        on_batch=ledger.on_batch if textbook else None,
    )
    if textbook:
        # The same slots and workers, another handler: the worker imports bench/baseline.py.
        options.handler, options.code_root = TEXTBOOK_HANDLER, TEXTBOOK_CODE_ROOT
    try:
        stack = LocalStack(options).start()
    except ValueError as exc:
        # The mode is not in this checkout (e.g. shared capacity before the stack creates its table).
        return _skipped_run(mode, len(bodies), f"{type(exc).__name__}: {exc}")
    try:
        outcome = drain_on(stack, plan, bodies, ledger, timeout_s=plan.system_timeout_s)
        budget = read_budget(stack) if mode in ("shared", "shared_small_batches") else None
    finally:
        stack.stop()
    start, end, pending, esm_stats, endpoint_stats = outcome
    lost = max(0, len(bodies) - ledger.settled() - pending)
    latencies = ledger.latencies()
    drained = ledger.settled() == len(bodies) and pending == 0
    ok = endpoint_stats.get("ok", 0)
    throttled = endpoint_stats.get("throttled", 0)
    ignored = {
        "ok",
        "throttled",
        "total",
        "in_flight",
        "max_in_flight",
        "scripted_pending",
        "container_restarts",
    }
    result: SystemRun = {
        "mode": mode,
        "messages": len(bodies),
        "drain_s": end - start if drained else None,
        "settled_by": "acknowledged" if textbook else "results_queue",
        "endpoint_calls": endpoint_stats.get("total", 0),
        "endpoint_ok": ok,
        "endpoint_throttled": throttled,
        "endpoint_other": {k: v for k, v in endpoint_stats.items() if k not in ignored and v},
        "results": len(ledger.results),
        "dead_lettered": len(ledger.dead),
        "duplicates": ledger.duplicates,
        "pending": pending,
        "lost": lost,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p99_s": percentile(latencies, 99),
        "batches": esm_stats.batches,
        "batch_failures": dict(esm_stats.batch_failures),
        "settled_at_s": ledger.offsets(start),
    }
    if budget is not None:
        result["budget"] = budget
    return result


def read_budget(stack: LocalStack) -> dict[str, float]:
    """The route's item in the capacity table (its numbers only): whether the shared budget was in use,
    what ceiling it read from Describe*, and where its AIMD limit ended."""
    table = getattr(stack, "capacity_table", None)
    if table is None:
        return {}
    from invoker.contract import CAPACITY_TABLE_PARTITION_KEY  # noqa: PLC0415 - only with a capacity table

    from sqs_sagemaker_invoker.infra.config import capacity_key  # noqa: PLC0415

    dynamodb = boto3.client("dynamodb", **client_kwargs(stack.moto.url))
    key = capacity_key(stack.app.stack_name, stack.route().route.name)
    item = dynamodb.get_item(
        TableName=table, Key={CAPACITY_TABLE_PARTITION_KEY: {"S": key}}, ConsistentRead=True
    ).get("Item", {})
    return {
        name: float(str(value["N"]))
        for name, value in item.items()
        if name in ("ceiling", "capacity", "limit", "cutEpoch", "version") and "N" in value
    }


def drain_on(
    stack: LocalStack,
    plan: Plan,
    bodies: list[tuple[str, str]],
    ledger: Ledger,
    *,
    timeout_s: float,
    on_start: Callable[[float], None] | None = None,
    burst: bool = False,
) -> tuple[float, float, int, Any, dict[str, int]]:
    """Warm the K workers with the slots disabled, send everything, start the clock and the slots,
    follow until every message settled and the queue is empty (or the time is up). `burst`: the slots
    poll first and the clock starts at the first send, as a burst meets an idle route (the autoscaler
    sees the backlog as it arrives, and so do the slots).

    Returns (start, last settled, still pending, the event source's stats, the endpoint's counters)."""
    esm, emulator = stack.esm, stack.emulator
    assert esm is not None
    assert emulator is not None
    route = stack.route()
    name = route.route.name
    sqs = stack.sqs()
    esm.start()
    # Disabled before any slot has finished its worker's init (prewarm): no slot polls until enabled.
    esm.disable(name)
    try:
        deadline = time.monotonic() + 120
        while not all(w.pid is not None for w in esm.workers(name)):
            if time.monotonic() > deadline:
                raise RuntimeError("the function's workers did not start within 120 s")
            time.sleep(0.1)
        if burst:
            esm.enable(name)
            start = time.time()
            if on_start is not None:
                on_start(start)
            send_all(sqs, route.request_queue_url, bodies, ledger)
        else:
            send_all(sqs, route.request_queue_url, bodies, ledger)
            start = time.time()
            if on_start is not None:
                on_start(start)
            esm.enable(name)
        deadline = time.monotonic() + timeout_s
        pending = len(bodies)
        while time.monotonic() < deadline:
            read_outcomes(sqs, route.results_queue_url, route.dead_letter_queue_url, ledger)
            if ledger.settled() >= len(bodies):
                visible, hidden = queue_depth(sqs, route.request_queue_url)
                if visible + hidden == 0:
                    pending = 0
                    break
            time.sleep(FOLLOW_INTERVAL_S)
        else:
            visible, hidden = queue_depth(sqs, route.request_queue_url)
            pending = visible + hidden
    finally:
        esm.stop(kill=True, timeout=10)
    # Anything a batch delivered while the slots stopped counts too.
    read_outcomes(sqs, route.results_queue_url, route.dead_letter_queue_url, ledger)
    with ledger.lock:
        end = max(ledger.settled_at.values(), default=start)
    return start, end, pending, esm.stats(name), emulator.stats(route.route.endpoint_name)
