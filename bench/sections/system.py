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
import importlib.util
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from bench.analysis import percentile
from bench.measurements import SYSTEM_MODES
from bench.stack import ROOT
from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.local.aws import client_kwargs
from sqs_sagemaker_invoker.local.context import read_context, with_route_overrides
from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions
from sqs_sagemaker_invoker.local.stand_ins import MotoServer
from sqs_sagemaker_invoker.scaling import ScalingConfigError, ScalingPolicy, check_retries_outlast_scale_out

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from mypy_boto3_sqs import SQSClient

    from bench.measurements import (
        CapacitySample,
        MotoBound,
        MotoRate,
        ScaleFromZeroRun,
        SystemMode,
        SystemRun,
        SystemSection,
    )
    from bench.plan import Plan
    from bench.sections.measure import Session
    from sqs_sagemaker_invoker.infra.config import RouteConfig
    from sqs_sagemaker_invoker.local.esm import BatchReport

# The textbook handler is bench/baseline.py, imported by the worker as a top-level module.
TEXTBOOK_HANDLER = "baseline.lambda_handler"
TEXTBOOK_CODE_ROOT = ROOT / "bench"
# How often the driver reads the results queue and the DLQ while a run drains.
FOLLOW_INTERVAL_S = 0.25
SAMPLE_INTERVAL_S = 1.0
_COMPACT = (",", ":")


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
        "batch_size": _route(route_overrides(plan, "per_instance")).batch_size,
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


# -- the messages and what became of them ---------------------------------------------------------------


def message_bodies(count: int, size: int, seed: int) -> list[tuple[str, str]]:
    """(request id, envelope) pairs of about `size` bytes each, the same for every run of a section."""
    out = []
    for index in range(count):
        request_id = f"sys-{seed:x}-{index:05d}"
        envelope = {"requestId": request_id, "body": {"index": index, "pad": ""}}
        pad = max(0, size - len(json.dumps(envelope, separators=_COMPACT)))
        envelope["body"] = {"index": index, "pad": "x" * pad}
        out.append((request_id, json.dumps(envelope, separators=_COMPACT)))
    return out


@dataclass
class Ledger:
    """Every request's send time and where it settled first (a result, a dead-letter copy or, for the
    textbook handler, the acknowledgement), by request id."""

    sent_at: dict[str, float] = field(default_factory=dict)
    request_of: dict[str, str] = field(default_factory=dict)  # SQS message id -> request id
    settled_at: dict[str, float] = field(default_factory=dict)
    results: set[str] = field(default_factory=set)
    dead: set[str] = field(default_factory=set)
    duplicates: int = 0
    first_result: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, request_id: str, message_id: str, at: float) -> None:
        with self.lock:
            self.sent_at[request_id] = at
            self.request_of[message_id] = request_id

    def settle(self, request_id: str | None, at: float, *, dead: bool) -> None:
        if request_id is None or request_id not in self.sent_at:
            return
        with self.lock:
            seen = request_id in self.results or request_id in self.dead
            (self.dead if dead else self.results).add(request_id)
            if seen:
                # A second result (at-least-once delivery) or a result and a dead letter: not a loss.
                self.duplicates += 1
                return
            self.settled_at[request_id] = at
            if not dead and (self.first_result is None or at < self.first_result):
                self.first_result = at

    def settled(self) -> int:
        with self.lock:
            return len(self.settled_at)

    def on_batch(self, report: BatchReport) -> None:
        """The textbook handler delivers nothing: a message is done when the event source deletes it,
        which it does only for records absent from batchItemFailures (a successful call)."""
        for message_id in report.deleted:
            self.settle(self.request_of.get(message_id), report.ended, dead=False)

    def latencies(self) -> list[float]:
        with self.lock:
            return [at - self.sent_at[rid] for rid, at in self.settled_at.items()]

    def offsets(self, start: float) -> list[float]:
        with self.lock:
            return sorted(round(at - start, 3) for at in self.settled_at.values())


def send_all(sqs: SQSClient, queue_url: str, bodies: list[tuple[str, str]], ledger: Ledger) -> None:
    """SendMessageBatch of 10; each request's send time is taken just before its call (a latency counts
    the call, never less)."""
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        at = time.time()
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise RuntimeError(f"moto refused messages: {response['Failed']}")
        for entry in response["Successful"]:
            ledger.sent(chunk[int(entry["Id"])][0], entry["MessageId"], at)


def read_outcomes(sqs: SQSClient, results_url: str | None, dlq_url: str, ledger: Ledger) -> None:
    """Read and delete everything visible on the results queue and the DLQ. A result is settled when it
    reached the results queue (its SentTimestamp), a dead letter when it reached the DLQ."""
    for url, dead in ((results_url, False), (dlq_url, True)):
        if url is None:
            continue
        while True:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["SentTimestamp"],
                VisibilityTimeout=60,
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                at = int(message.get("Attributes", {}).get("SentTimestamp", time.time() * 1000)) / 1000
                ledger.settle(_request_id(message, ledger, dead=dead), at, dead=dead)
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )


def _request_id(message: Mapping[str, Any], ledger: Ledger, *, dead: bool) -> str | None:
    if not dead:
        document = json.loads(message["Body"])
        return str(document.get("requestId")) if document.get("requestId") else None
    attributes = message.get("MessageAttributes", {})
    for name in ("invoker.request_id", "invoker.message_id"):
        value = attributes.get(name, {}).get("StringValue")
        if value and name.endswith("request_id"):
            return str(value)
        if value:
            return ledger.request_of.get(str(value))
    # Moved by the queue's redrive policy: the same message id, none of the function's attributes.
    return ledger.request_of.get(str(message.get("MessageId")))


def queue_depth(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight + delayed): what the scaling policy reads as the backlog."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    visible = int(attributes.get("ApproximateNumberOfMessages", 0))
    hidden = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesDelayed", 0)
    )
    return visible, hidden


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


def _endpoint_spec(plan: Plan, name: str, *, instances: int, unit: str) -> Any:
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


def _route(overrides: Mapping[str, Any]) -> RouteConfig:
    """The route the stack will run: the repository's cdk.json with the run's overrides."""
    context = with_route_overrides(read_context(ROOT / "cdk.json"), overrides)
    return load_app_config(context).routes[0]


def _endpoint_name(overrides: Mapping[str, Any]) -> str:
    return _route(overrides).endpoint_name


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
        endpoint = _endpoint_name(overrides)
    except ValueError as exc:
        return _skipped_run(mode, len(bodies), f"the route does not load: {exc}")
    ledger = Ledger()
    textbook = mode == "textbook"
    options = StackOptions(
        route_overrides=overrides,
        endpoints={
            endpoint: _endpoint_spec(plan, endpoint, instances=plan.system_instances, unit="instances")
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
        outcome = _drain_on(stack, plan, bodies, ledger, timeout_s=plan.system_timeout_s)
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


def _drain_on(
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
            "inferenceComponentName": _route(route_overrides(plan, "shared")).endpoint_name,
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
        endpoint = _endpoint_name(overrides)
    except ValueError as exc:
        return _skipped_scale(plan, f"the route does not load: {exc}", settings)
    bodies = message_bodies(plan.system_scale_messages, plan.message_size, seed=0x5F)
    ledger = Ledger()
    options = StackOptions(
        route_overrides=overrides,
        endpoints={endpoint: _endpoint_spec(plan, endpoint, instances=0, unit="copies")},
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
        start, end, pending, _, stats = _drain_on(
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


# -- moto's bound ---------------------------------------------------------------------------------------


def probe_moto(plan: Plan) -> MotoBound:
    """ReceiveMessage + DeleteMessageBatch, SendMessage and SendMessageBatch against a moto server like
    the local stack's, one call at a time from one client, each for a third of the probe's time. The queue
    is filled to the system section's depth first: moto's per-call cost grows with a queue's depth."""
    server = MotoServer(mode="process")
    server.start()
    try:
        sqs: SQSClient = boto3.client("sqs", **client_kwargs(server.url))
        url = sqs.create_queue(QueueName="bench-moto-probe")["QueueUrl"]
        body = "x" * plan.message_size
        for start in range(0, plan.system_messages, 10):
            entries = min(10, plan.system_messages - start)
            sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(entries)]
            )
        phase = plan.system_moto_probe_s / 3
        rates: list[MotoRate] = []

        def timed(call: str, one: Callable[[], int]) -> None:
            calls = messages = 0
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < phase:
                moved = one()
                calls += 1
                messages += moved
                if moved == 0:
                    break
            elapsed = time.perf_counter() - started
            rates.append(
                {
                    "call": call,
                    "calls": calls,
                    "messages": messages,
                    "seconds": round(elapsed, 3),
                    "calls_per_s": calls / elapsed if elapsed > 0 else 0.0,
                    "msgs_per_s": messages / elapsed if elapsed > 0 else 0.0,
                }
            )

        def send_one() -> int:
            sqs.send_message(QueueUrl=url, MessageBody=body)
            return 1

        def send_batch() -> int:
            sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)]
            )
            return 10

        def receive_delete() -> int:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if messages:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
            return len(messages)

        # Receives first, from the depth the drains start at; the sends then add to what is left.
        timed("ReceiveMessage (10) + DeleteMessageBatch", receive_delete)
        timed("SendMessage", send_one)
        timed("SendMessageBatch (10)", send_batch)
    finally:
        server.stop()
    return {"rates": rates}
