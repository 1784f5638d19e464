"""``python -m sqs_sagemaker_invoker.local demo``: the whole pipeline on one machine, with faults, proving nothing is lost.

It starts the local stack (moto, the SageMaker Runtime emulator with the scikit-learn example model, the
event source emulator running the real function), sends a mixed workload while the model is still loading
(not-ready phase), then throttles the endpoint and makes it fail transiently for a few seconds, and reads
every outcome back: results from the results queue, dead letters with their reasons from the DLQ, retries
from the function's metrics in the local CloudWatch. It exits 0 only when every request has exactly one
final place, the one its kind calls for; repeated results (at-least-once delivery) are reported apart.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from invoker.contract import LetterAttribute
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.local.stack import ROOT, LocalStack, StackOptions, read_context

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from sqs_sagemaker_invoker.infra.config import AppConfig, RouteConfig
    from sqs_sagemaker_invoker.local.aws import RouteResources

RESULT = "result"
DLQ = "dlq"
# Messages the queue's redrive policy moved (no reason of the function's attached).
REDRIVE_POLICY = "redrive_policy"

# Kinds of request, their share of the workload and where each must end up.
KINDS: dict[str, tuple[float, str, str | None]] = {
    "json": (0.55, RESULT, None),
    "csv": (0.20, RESULT, None),
    "rejected": (0.10, DLQ, "model_error"),  # the model answers 4xx: ModelError, never retried
    "validation": (0.05, DLQ, "validation_error"),  # an unknown production variant
    "malformed": (0.10, DLQ, "invalid_message"),  # not an envelope at all
}

# Iris feature ranges: sepal length/width, petal length/width (cm).
_FEATURE_RANGES = ((4.3, 7.9), (2.0, 4.4), (1.0, 6.9), (0.1, 2.5))


@dataclass
class Request:
    kind: str
    body: str
    request_id: str | None  # None when the body cannot carry one (the message id is used)
    message_id: str = ""
    sent_at: float = 0.0

    @property
    def expected(self) -> tuple[str, str | None]:
        _, place, reason = KINDS[self.kind]
        return place, reason


def _row(rng: random.Random) -> list[float]:
    return [round(rng.uniform(low, high), 1) for low, high in _FEATURE_RANGES]


def build_workload(count: int, seed: int = 7) -> list[Request]:
    """A deterministic mix of ``count`` requests in shuffled order."""
    rng = random.Random(seed)
    kinds: list[str] = []
    for kind, (share, _, _) in KINDS.items():
        kinds += [kind] * round(count * share)
    kinds = (kinds + ["json"] * count)[:count]
    rng.shuffle(kinds)
    requests: list[Request] = []
    for index, kind in enumerate(kinds):
        rid = f"demo-{index:05d}"
        if kind == "json":
            rows = [_row(rng) for _ in range(rng.randint(1, 3))]
            requests.append(Request(kind, json.dumps({"requestId": rid, "body": {"instances": rows}}), rid))
        elif kind == "csv":
            text = "\n".join(",".join(str(v) for v in _row(rng)) for _ in range(rng.randint(1, 3)))
            envelope: dict[str, Any] = {"requestId": rid, "bodyText": text, "contentType": "text/csv"}
            requests.append(Request(kind, json.dumps(envelope), rid))
        elif kind == "rejected":
            variants: list[dict[str, Any]] = [
                {"requestId": rid, "body": {"instances": [[1.0, 2.0]]}},  # 2 features, the model wants 4
                {"requestId": rid, "bodyText": "\x89PNG", "contentType": "image/png"},  # 415
            ]
            requests.append(Request(kind, json.dumps(variants[index % 2]), rid))
        elif kind == "validation":
            envelope = {
                "requestId": rid,
                "body": {"instances": [_row(rng)]},
                "targetVariant": "NoSuchVariant",
            }
            requests.append(Request(kind, json.dumps(envelope), rid))
        else:
            bodies = [
                "this is not JSON {",
                json.dumps([1, 2, 3]),
                json.dumps({"payload": {"instances": [_row(rng)]}}),
                json.dumps({"body": {"instances": [_row(rng)]}, "bodyText": "both"}),
            ]
            requests.append(Request(kind, bodies[index % 4], None))
    return requests


@dataclass
class Outcome:
    place: str
    reason: str | None
    latency_ms: float | None = None
    end_to_end_ms: float | None = None
    receive_count: int | None = None


@dataclass
class Ledger:
    """Every outcome read back, by SQS message id (one request = one message)."""

    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def add(self, message_id: str, outcome: Outcome) -> None:
        self.outcomes.setdefault(message_id, []).append(outcome)

    def settled(self) -> int:
        return len(self.outcomes)


def _drain(sqs: SQSClient, url: str, handle: Callable[[dict[str, Any]], None]) -> int:
    """Read and delete everything visible now; returns how many messages were read."""
    total = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["SentTimestamp"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not messages:
            return total
        for message in messages:
            handle(dict(message))
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        total += len(messages)


def _attribute(message: dict[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    return value.get("StringValue") if value else None


@dataclass
class DemoConfig:
    requests: int = 400
    rate: float = 40.0  # messages per second
    startup_delay_s: float = 2.0
    # The one setting the demo changes (cdk.json's default is 900 s): the backoff cap, so that a message
    # retried five times during the fault phases is not parked for minutes.
    retry_max_seconds: int = 8
    throttle_s: float = 3.0
    error_burst_s: float = 3.0
    timeout_s: float = 120.0
    route: str | None = None
    seed: int = 7


@dataclass
class Summary:
    sent: dict[str, int]
    delivered: int
    duplicates: dict[str, int]
    dead_lettered: dict[str, int]
    retried: dict[str, int]
    problems: list[str]
    latency_ms: dict[str, float]
    end_to_end_ms: dict[str, float]
    event_source: dict[str, Any]
    endpoint: dict[str, int]
    log_events: int
    metric_data_points: int
    elapsed_s: float
    timeline: list[tuple[float, str]]

    @property
    def ok(self) -> bool:
        return not self.problems


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


class Demo:
    def __init__(
        self, config: DemoConfig, console: Console | None = None, state_dir: Path | None = None
    ) -> None:
        self.config = config
        self.console = console or Console()
        self.state_dir = state_dir
        self.ledger = Ledger()
        self.requests = build_workload(config.requests, config.seed)
        self.phase = "starting"
        self.timeline: list[tuple[float, str]] = []
        self._t0 = time.monotonic()
        self._by_message: dict[str, Request] = {}
        self._lock = threading.Lock()
        self._sent = 0
        self._stop = threading.Event()

    # -- workload ---------------------------------------------------------------------------------

    def _send_all(self, sqs: SQSClient, route: RouteResources, fifo: bool) -> None:
        started = time.monotonic()
        for start in range(0, len(self.requests), 10):
            if self._stop.is_set():
                return
            chunk = self.requests[start : start + 10]
            entries: list[SendMessageBatchRequestEntryTypeDef] = []
            for i, request in enumerate(chunk):
                entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(i), "MessageBody": request.body}
                if fifo:
                    entry["MessageGroupId"] = f"group-{(start + i) % 16}"
                    # Content-based deduplication would drop repeated bodies (the malformed ones).
                    entry["MessageDeduplicationId"] = f"demo-{start + i}-{self.config.seed}"
                entries.append(entry)
            response = sqs.send_message_batch(QueueUrl=route.request_queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"SendMessageBatch failed: {response['Failed']}")
            now = time.time()
            with self._lock:
                for entry_result in response["Successful"]:
                    request = chunk[int(entry_result["Id"])]
                    request.message_id = entry_result["MessageId"]
                    request.sent_at = now
                    self._by_message[request.message_id] = request
                self._sent += len(chunk)
            # Pace the sends so the workload overlaps the fault phases.
            due = started + (start + len(chunk)) / self.config.rate
            self._stop.wait(max(0.0, due - time.monotonic()))
        self.timeline.append((time.monotonic() - self._t0, "all sent"))

    def _mark(self, phase: str) -> None:
        self.phase = phase
        self.timeline.append((time.monotonic() - self._t0, phase))

    def _phases(self, stack: LocalStack, endpoint: str) -> None:
        from sqs_sagemaker_invoker.local.sagemaker import FaultSpec  # noqa: PLC0415

        assert stack.emulator is not None
        emulator = stack.emulator
        self._mark("model loading (not ready)")
        while not self._stop.is_set() and not emulator.is_ready(endpoint):
            self._stop.wait(0.1)
        self._mark("serving")
        if self._stop.wait(1.5):
            return
        self._mark("throttling")
        emulator.throttle_for(endpoint, self.config.throttle_s)
        if self._stop.wait(self.config.throttle_s + 1.0):
            return
        self._mark("transient errors")
        emulator.set_faults(
            endpoint,
            FaultSpec(
                service_unavailable_rate=0.15,
                internal_failure_rate=0.1,
                internal_dependency_rate=0.05,
                seed=3,
            ),
        )
        stopped = self._stop.wait(self.config.error_burst_s)
        emulator.set_faults(endpoint, FaultSpec())
        if not stopped:
            self._mark("serving")

    # -- read back --------------------------------------------------------------------------------

    def _on_result(self, message: dict[str, Any]) -> None:
        document = json.loads(message["Body"])
        arrived = int(message.get("Attributes", {}).get("SentTimestamp", time.time() * 1000)) / 1000
        with self._lock:
            request = self._by_message.get(document.get("messageId", ""))
        end_to_end = (arrived - request.sent_at) * 1000 if request else None
        self.ledger.add(
            document.get("messageId", "?"),
            Outcome(RESULT, None, document.get("latencyMs"), end_to_end, document.get("receiveCount")),
        )

    def _on_dead_letter(self, message: dict[str, Any]) -> None:
        reason = _attribute(message, LetterAttribute.REASON)
        # The redrive policy moves a message without the function's attributes (same message id).
        message_id = _attribute(message, LetterAttribute.MESSAGE_ID) or message["MessageId"]
        self.ledger.add(message_id, Outcome(DLQ, reason or REDRIVE_POLICY))

    def _queue_empty(self, sqs: SQSClient, url: str) -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())

    # -- run --------------------------------------------------------------------------------------

    def pick_route(self, app: AppConfig) -> RouteConfig:
        if self.config.route is not None:
            return app.route(self.config.route)
        return next((r for r in app.routes if not r.fifo), app.routes[0])

    def run(self) -> Summary:
        from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec  # noqa: PLC0415

        started = self._t0 = time.monotonic()
        route_config = self.pick_route(load_app_config(read_context(ROOT / "cdk.json")))
        endpoint = route_config.endpoint_name
        retry_max = min(
            route_config.retry_max_seconds,
            max(route_config.retry_base_seconds, self.config.retry_max_seconds),
        )
        options = StackOptions(
            endpoints={
                endpoint: EndpointSpec(
                    name=endpoint, container="sklearn", startup_delay_s=self.config.startup_delay_s
                )
            },
            default_container="echo",
            prewarm=True,
            route_overrides={"retryMaxSeconds": retry_max},
        )
        if self.state_dir is not None:
            options.state_dir = self.state_dir
        self.console.print(
            f"[bold]Starting the local stack[/] (route [cyan]{route_config.name}[/], endpoint [cyan]{endpoint}[/]; "
            f"demo setting: retryMaxSeconds={retry_max}, cdk.json says "
            f"{route_config.retry_max_seconds})"
        )
        with LocalStack(options) as stack:
            self.console.print(
                f"  moto {stack.moto.url} · SageMaker Runtime emulator {stack.outputs['SageMakerRuntimeUrl']} · "
                f"started in {time.monotonic() - started:.1f} s"
            )
            route = stack.route(route_config.name)
            sqs = stack.sqs()
            sender = threading.Thread(
                target=self._send_all, args=(stack.sqs(), route, route_config.fifo), daemon=True
            )
            phases = threading.Thread(target=self._phases, args=(stack, endpoint), daemon=True)
            sender.start()
            phases.start()
            try:
                self._follow(stack, sqs, route, started)
            finally:
                self._stop.set()
                sender.join(timeout=10)
                phases.join(timeout=10)
            assert stack.esm is not None
            stack.esm.stop(kill=False, timeout=5)
            assert stack.telemetry is not None
            stack.telemetry.flush()
            # Anything that arrived while stopping (a batch finishing) counts too.
            _drain(sqs, route.results_queue_url or "", self._on_result) if route.results_queue_url else None
            _drain(sqs, route.dead_letter_queue_url, self._on_dead_letter)
            return self._summarise(stack, route, route_config, time.monotonic() - started)

    def _follow(self, stack: LocalStack, sqs: SQSClient, route: RouteResources, started: float) -> None:
        total = len(self.requests)
        deadline = started + self.config.timeout_s
        columns = (
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            sent_task = progress.add_task("sent    ", total=total, status="")
            done_task = progress.add_task("settled ", total=total, status="")
            while True:
                try:
                    if route.results_queue_url:
                        _drain(sqs, route.results_queue_url, self._on_result)
                    _drain(sqs, route.dead_letter_queue_url, self._on_dead_letter)
                    empty = self._queue_empty(sqs, route.request_queue_url)
                except (BotoCoreError, ClientError) as exc:
                    # moto answers 500 now and then under concurrency: read again on the next tick
                    self.console.print(f"[dim]read-back failed ({exc}); retrying[/]")
                    empty = False
                assert stack.esm is not None
                stats = stack.esm.stats(route.route.name)
                delivered = sum(1 for o in self.ledger.outcomes.values() if o[0].place == RESULT)
                status = (
                    f"[yellow]{self.phase}[/] · delivered {delivered} · "
                    f"dead-lettered {self.ledger.settled() - delivered} · "
                    f"returned to queue {stats.item_failures} · batches {stats.batches}"
                )
                progress.update(sent_task, completed=self._sent)
                progress.update(done_task, completed=self.ledger.settled(), status=status)
                if self._sent == total and self.ledger.settled() >= total and empty:
                    self.timeline.append((time.monotonic() - self._t0, "all settled"))
                    return
                if time.monotonic() > deadline:
                    self.console.print(f"[red]timed out after {self.config.timeout_s:.0f} s[/]")
                    return
                time.sleep(0.3)

    def _summarise(
        self, stack: LocalStack, route: RouteResources, route_config: RouteConfig, elapsed: float
    ) -> Summary:
        problems: list[str] = []
        duplicates: dict[str, int] = {}
        dead: Counter[str] = Counter()
        delivered = 0
        latencies: list[float] = []
        end_to_end: list[float] = []
        with self._lock:
            by_message = dict(self._by_message)
        for request in self.requests:
            if not request.message_id:
                problems.append(f"{request.request_id or request.kind}: never sent")
                continue
            outcomes = self.ledger.outcomes.get(request.message_id, [])
            label = request.request_id or request.message_id
            if not outcomes:
                problems.append(f"{label} ({request.kind}): no result and not in the DLQ (lost)")
                continue
            places = {(o.place, o.reason) for o in outcomes}
            if len(places) > 1:
                problems.append(
                    f"{label} ({request.kind}): in more than one place: {sorted(places, key=str)}"
                )
                continue
            place, reason = outcomes[0].place, outcomes[0].reason
            if (place, reason) != request.expected:
                problems.append(
                    f"{label} ({request.kind}): ended in {place} {reason or ''}, expected {request.expected}"
                )
            if len(outcomes) > 1:
                duplicates[label] = len(outcomes)
            if place == RESULT:
                delivered += 1
                latencies += [o.latency_ms for o in outcomes[:1] if o.latency_ms is not None]
                end_to_end += [o.end_to_end_ms for o in outcomes[:1] if o.end_to_end_ms is not None]
            else:
                dead[reason or "?"] += 1
        unknown = set(self.ledger.outcomes) - set(by_message)
        problems += [f"message {m}: an outcome for a message the demo did not send" for m in sorted(unknown)]

        retried, dead_metric, points = self._metrics(stack, route_config)
        for reason, count in dead.items():
            if dead_metric.get(reason, 0) < count and reason != REDRIVE_POLICY:
                problems.append(
                    f"DeadLettered metric for {reason} is {dead_metric.get(reason, 0)}, DLQ holds {count}"
                )
        assert stack.esm is not None
        assert stack.emulator is not None
        stats = stack.esm.stats(route_config.name)
        summary = Summary(
            sent=dict(Counter(r.kind for r in self.requests)),
            delivered=delivered,
            duplicates=duplicates,
            dead_lettered=dict(dead),
            retried=retried,
            problems=problems,
            latency_ms={"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
            end_to_end_ms={"p50": percentile(end_to_end, 50), "p99": percentile(end_to_end, 99)},
            event_source={
                "batches": stats.batches,
                "records": stats.records,
                "returned_to_queue": stats.item_failures,
                "failed_batches": dict(stats.batch_failures),
                "cold_starts": stats.cold_starts,
            },
            endpoint={k: v for k, v in stack.emulator.stats(route_config.endpoint_name).items() if v},
            log_events=self._log_events(stack, route),
            metric_data_points=points,
            elapsed_s=elapsed,
            timeline=sorted(self.timeline),
        )
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "demo-summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
        return summary

    def _metrics(self, stack: LocalStack, route: RouteConfig) -> tuple[dict[str, int], dict[str, int], int]:
        """Retried and DeadLettered by reason, as the function's EMF metrics say (local CloudWatch)."""
        cloudwatch = stack.cloudwatch()
        namespace = stack.app.metrics_namespace
        now = datetime.now(UTC)
        found: dict[str, dict[str, int]] = {"Retried": {}, "DeadLettered": {}}
        points = 0
        for name, by_reason in found.items():
            for metric in cloudwatch.list_metrics(Namespace=namespace, MetricName=name)["Metrics"]:
                dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                if "reason" not in dimensions or dimensions.get("endpoint") != route.endpoint_name:
                    continue
                datapoints = cloudwatch.get_metric_statistics(
                    Namespace=namespace,
                    MetricName=name,
                    Dimensions=metric["Dimensions"],
                    StartTime=now - timedelta(hours=1),
                    EndTime=now + timedelta(minutes=5),
                    Period=3600,
                    Statistics=["Sum", "SampleCount"],
                )["Datapoints"]
                by_reason[dimensions["reason"]] = int(sum(p.get("Sum", 0) for p in datapoints))
                points += int(sum(p.get("SampleCount", 0) for p in datapoints))
        return found["Retried"], found["DeadLettered"], points

    def _log_events(self, stack: LocalStack, route: RouteResources) -> int:
        logs = stack.logs()
        group = f"/aws/lambda/{route.function_name}"
        total = 0
        for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": group,
                    "logStreamName": stream["logStreamName"],
                    "startFromHead": True,
                }
                if token:
                    kwargs["nextToken"] = token
                page = logs.get_log_events(**kwargs)
                total += len(page["events"])
                if not page["events"] or page.get("nextForwardToken") == token:
                    break
                token = page.get("nextForwardToken")
        return total

    # -- report -----------------------------------------------------------------------------------

    def print_summary(self, summary: Summary) -> None:
        console = self.console
        table = Table(title="Demo summary", show_header=True, header_style="bold")
        table.add_column("what")
        table.add_column("count / value", justify="right")
        table.add_row("requests sent", str(sum(summary.sent.values())))
        for kind, count in sorted(summary.sent.items()):
            place, reason = KINDS[kind][1:]
            table.add_row(f"  {kind} (expected: {place}{' ' + reason if reason else ''})", str(count))
        table.add_row("[green]delivered[/] (results queue)", str(summary.delivered))
        for reason, count in sorted(summary.dead_lettered.items()):
            table.add_row(f"[red]dead-lettered[/]: {reason}", str(count))
        for reason, count in sorted(summary.retried.items()):
            table.add_row(f"[yellow]retried[/]: {reason}", str(count))
        table.add_row(
            "model call latency p50 / p99",
            f"{summary.latency_ms['p50']:.1f} / {summary.latency_ms['p99']:.1f} ms",
        )
        table.add_row(
            "end to end (send -> result) p50 / p99",
            f"{summary.end_to_end_ms['p50'] / 1000:.2f} / {summary.end_to_end_ms['p99'] / 1000:.2f} s",
        )
        source = summary.event_source
        table.add_row(
            "event source: batches / records / returned",
            f"{source['batches']} / {source['records']} / {source['returned_to_queue']}",
        )
        table.add_row("endpoint answers", ", ".join(f"{k}={v}" for k, v in sorted(summary.endpoint.items())))
        table.add_row(
            "function log events / metric values (local CloudWatch)",
            f"{summary.log_events} / {summary.metric_data_points}",
        )
        table.add_row("repeated results (at-least-once, not a loss)", str(len(summary.duplicates)))
        table.add_row("timeline", " · ".join(f"{t:.1f} s {what}" for t, what in summary.timeline))
        table.add_row("elapsed", f"{summary.elapsed_s:.1f} s")
        console.print(table)
        if summary.ok:
            console.print(
                f"[bold green]OK[/]: all {sum(summary.sent.values())} requests accounted for, each exactly once where expected."
            )
        else:
            console.print(f"[bold red]FAILED[/]: {len(summary.problems)} problem(s):")
            for problem in summary.problems[:30]:
                console.print(f"  - {problem}")
