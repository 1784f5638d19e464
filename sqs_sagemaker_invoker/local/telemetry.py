"""Ship a function's output the way Lambda does: every line to CloudWatch Logs, EMF lines to metrics too."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from sqs_sagemaker_invoker.local.aws import MAX_ATTEMPTS

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef

    from sqs_sagemaker_invoker.local.worker import LogLine

log = logging.getLogger(__name__)

# PutLogEvents: 10,000 events and 1,048,576 bytes (26 bytes of overhead per event) per call.
_MAX_EVENTS = 10_000
_MAX_BATCH_BYTES = 1_048_576
_EVENT_OVERHEAD = 26
_MAX_EVENT_BYTES = 256 * 1024 - _EVENT_OVERHEAD
# PutMetricData: 1,000 metrics per call, 150 values per metric.
_MAX_DATUMS = 1000
_MAX_VALUES = 150


def emf_to_metric_data(document: dict[str, Any]) -> dict[str, list[MetricDatumTypeDef]]:
    """The metric data an EMF document describes, by namespace (what CloudWatch extracts from the log)."""
    meta = document.get("_aws")
    if not isinstance(meta, dict) or not isinstance(meta.get("CloudWatchMetrics"), list):
        return {}
    timestamp = datetime.fromtimestamp(int(meta.get("Timestamp", time.time() * 1000)) / 1000, tz=UTC)
    by_namespace: dict[str, list[MetricDatumTypeDef]] = defaultdict(list)
    for directive in meta["CloudWatchMetrics"]:
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str):
            continue
        dimension_sets = directive.get("Dimensions") or [[]]
        for definition in directive.get("Metrics", []):
            name = definition.get("Name")
            raw = document.get(name)
            values = raw if isinstance(raw, list) else [raw]
            numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if not numbers:
                continue  # EMF: a metric without a numeric value is ignored
            for dimension_names in dimension_sets:
                # EMF rule: a dimension whose value is missing invalidates that dimension set.
                if not all(isinstance(document.get(d), str) for d in dimension_names):
                    continue
                for start in range(0, len(numbers), _MAX_VALUES):
                    datum: MetricDatumTypeDef = {
                        "MetricName": name,
                        "Dimensions": [{"Name": d, "Value": document[d]} for d in dimension_names],
                        "Timestamp": timestamp,
                        "Values": numbers[start : start + _MAX_VALUES],
                        "Unit": definition.get("Unit", "None"),
                    }
                    if definition.get("StorageResolution") in (1, 60):
                        datum["StorageResolution"] = definition["StorageResolution"]
                    by_namespace[namespace].append(datum)
    return dict(by_namespace)


def parse_emf(message: str) -> dict[str, Any] | None:
    if not message.startswith("{") or '"_aws"' not in message:
        return None
    try:
        document = json.loads(message)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) and "_aws" in document else None


class TelemetryShipper:
    """A background thread batching log lines into PutLogEvents and EMF documents into PutMetricData."""

    def __init__(  # noqa: PLR0913 - keyword-only options, all but the endpoint with defaults
        self,
        *,
        endpoint_url: str,
        region: str = "us-east-1",
        credentials: tuple[str, str] = ("testing", "testing"),
        mirror_dir: Path | None = None,
        interval_s: float = 0.25,
        echo: bool = False,
    ) -> None:
        config = Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS})
        kwargs: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": credentials[0],
            "aws_secret_access_key": credentials[1],
            "config": config,
        }
        self._logs: CloudWatchLogsClient = boto3.client("logs", **kwargs)
        self._cloudwatch: CloudWatchClient = boto3.client("cloudwatch", **kwargs)
        self._queue: queue.Queue[LogLine | None] = queue.Queue()
        self._interval = interval_s
        self._mirror_dir = mirror_dir
        self._echo = echo
        self._streams: set[tuple[str, str]] = set()
        self._groups: set[str] = set()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0
        self.shipped_events = 0
        self.shipped_metrics = 0
        self.errors = 0

    def __call__(self, line: LogLine) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(line)

    def start(self) -> TelemetryShipper:
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every line handed over so far is shipped."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout=timeout)
        self._thread = None

    def _run(self) -> None:
        running = True
        while running:
            lines: list[LogLine] = []
            try:
                first = self._queue.get(timeout=self._interval)
            except queue.Empty:
                continue
            deadline = time.monotonic() + self._interval
            item: LogLine | None = first
            while True:
                if item is None:
                    running = False
                    break
                lines.append(item)
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            try:
                self._ship(lines)
            except Exception:
                self.errors += 1
                log.exception("telemetry: shipping %d lines failed", len(lines))
            finally:
                with self._idle:
                    self._pending -= len(lines)
                    self._idle.notify_all()

    def _ship(self, lines: list[LogLine]) -> None:
        by_stream: dict[tuple[str, str], list[LogLine]] = defaultdict(list)
        metrics: dict[str, list[MetricDatumTypeDef]] = defaultdict(list)
        for line in lines:
            by_stream[(line.log_group, line.log_stream)].append(line)
            document = parse_emf(line.message)
            if document is not None:
                for namespace, data in emf_to_metric_data(document).items():
                    metrics[namespace].extend(data)
        if self._mirror_dir is not None:
            self._mirror(lines)
        for (group, stream), items in by_stream.items():
            self._ensure_stream(group, stream)
            self._put_events(group, stream, items)
        for namespace, data in metrics.items():
            for start in range(0, len(data), _MAX_DATUMS):
                self._cloudwatch.put_metric_data(
                    Namespace=namespace, MetricData=data[start : start + _MAX_DATUMS]
                )
                self.shipped_metrics += len(data[start : start + _MAX_DATUMS])

    def _mirror(self, lines: list[LogLine]) -> None:
        assert self._mirror_dir is not None
        self._mirror_dir.mkdir(parents=True, exist_ok=True)
        by_file: dict[str, list[str]] = defaultdict(list)
        for line in lines:
            stamp = datetime.fromtimestamp(line.timestamp_ms / 1000, tz=UTC).isoformat(
                timespec="milliseconds"
            )
            by_file[line.log_group.rsplit("/", 1)[-1]].append(f"{stamp} {line.log_stream} {line.message}\n")
        for name, text in by_file.items():
            with (self._mirror_dir / f"{name}.log").open("a", encoding="utf-8") as handle:
                handle.writelines(text)
                if self._echo:
                    print("".join(text), end="", flush=True)

    def _ensure_stream(self, group: str, stream: str) -> None:
        if group not in self._groups:
            with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                self._logs.create_log_group(logGroupName=group)
            self._groups.add(group)
        if (group, stream) not in self._streams:
            with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
            self._streams.add((group, stream))

    def _put_events(self, group: str, stream: str, items: list[LogLine]) -> None:
        events: list[InputLogEventTypeDef] = []
        size = 0
        for line in sorted(items, key=lambda item: item.timestamp_ms):
            message = line.message
            if len(message.encode()) > _MAX_EVENT_BYTES:
                message = message.encode()[:_MAX_EVENT_BYTES].decode("utf-8", "ignore")
            event_size = len(message.encode()) + _EVENT_OVERHEAD
            if events and (len(events) >= _MAX_EVENTS or size + event_size > _MAX_BATCH_BYTES):
                self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
                self.shipped_events += len(events)
                events, size = [], 0
            events.append({"timestamp": line.timestamp_ms, "message": message})
            size += event_size
        if events:
            self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            self.shipped_events += len(events)
