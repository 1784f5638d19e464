"""What the function tells its operators: each message's outcome as a log line and a count, and once per
batch the CloudWatch metrics (EMF) and a summary line.

Lines are buffered and written by the handler's thread (`flush`): from 64 threads at once, the logging
handler's lock (held across each write) costs more CPU than the lines themselves."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from invoker.contract import Dimension, Disposition, Metric, Reason

if TYPE_CHECKING:
    import logging

    from aws_lambda_powertools import Metrics

    from invoker.outcomes import InvocationError
    from invoker.records import RecordInfo
    from invoker.shared_capacity import RouteReport


# Each disposition's log line: its level and its message.
_OUTCOME_LINES = {
    Disposition.DELIVER: ("info", "delivered"),
    Disposition.RETRY: ("warning", "retry later"),
    Disposition.DEAD_LETTER: ("error", "dead-lettered"),
}


@dataclass(slots=True)
class BatchObservations:
    """Counts and log lines of one batch; shared by the threads working on it."""

    endpoint_name: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    invocations: int = 0
    reattempts: int = 0
    succeeded: int = 0
    retried: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    lines: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def invocation(self, latency_ms: float | None = None) -> None:
        """One InvokeEndpoint call; its latency when it succeeded."""
        with self.lock:
            self.invocations += 1
            if latency_ms is not None:
                self.latencies_ms.append(latency_ms)

    def reattempt(self) -> None:
        with self.lock:
            self.reattempts += 1

    def outcome(
        self,
        info: RecordInfo,
        disposition: Disposition,
        reason: Reason | None,
        fields: dict[str, Any],
        *,
        level: str | None = None,
    ) -> None:
        """A message's disposition: counted, and logged with what identifies the message."""
        default_level, message = _OUTCOME_LINES[disposition]
        line = {
            "request_id": info.request_id,
            "message_id": info.message_id,
            "endpoint": self.endpoint_name,
            "disposition": disposition.value,
            "reason": reason.value if reason else None,
            "receive_count": info.receive_count,
            **fields,
        }
        with self.lock:
            if disposition is Disposition.DELIVER:
                self.succeeded += 1
            elif disposition is Disposition.RETRY:
                self.retried[reason or Reason.UNEXPECTED_ERROR] += 1
            else:
                self.dead_lettered[reason or Reason.UNEXPECTED_ERROR] += 1
            self.lines.append((level or default_level, message, line))

    def line(self, level: str, message: str, fields: dict[str, Any]) -> None:
        with self.lock:
            self.lines.append((level, message, fields))

    def flush(self, logger: logging.Logger | Any) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
        for level, message, fields in lines:
            try:
                getattr(logger, level)(message, extra=fields)
            except Exception as exc:  # a line that cannot be written must not fail the batch
                logger.error(
                    "log line not written",
                    extra={
                        "line": message,
                        "message_id": fields.get("message_id"),
                        "disposition": fields.get("disposition"),
                        "reason": fields.get("reason"),
                        "exception_type": type(exc).__name__,
                    },
                )


def error_fields(error: InvocationError, *, log_payloads: bool) -> dict[str, Any]:
    """What a log line says about an error: codes, statuses and the payload-free summary; the message
    (which may quote the request) only with LOG_PAYLOADS."""
    fields: dict[str, Any] = {"error": error.message if log_payloads else error.summary}
    if error.error_code:
        fields["error_code"] = error.error_code
    if error.http_status is not None:
        fields["http_status"] = error.http_status
    if error.original_status_code is not None:
        fields["original_status_code"] = error.original_status_code
    if error.log_stream_arn:
        fields["log_stream_arn"] = error.log_stream_arn
    if log_payloads and error.original_message is not None:
        fields["original_message"] = error.original_message
    return fields


def report_batch(  # noqa: PLR0913 - the observations, then what the batch reports, by keyword
    observed: BatchObservations,
    *,
    batch_size: int,
    concurrency_limit: int,
    logger: logging.Logger | Any,
    metrics: Metrics | None,
    route: RouteReport | None = None,
) -> None:
    """Once per batch, from the handler's thread: the metrics, then the summary line. `route`: the shared
    budget as the batch saw it (None: per-instance mode, or the table could not be used)."""
    if metrics is not None:
        emit_batch_metrics(metrics, observed, batch_size, concurrency_limit)
        if route is not None:
            emit_route_metrics(metrics, route)
    fields: dict[str, Any] = {
        "batch_size": batch_size,
        "succeeded": observed.succeeded,
        "retried": dict(observed.retried),
        "dead_lettered": dict(observed.dead_lettered),
        "invocations": observed.invocations,
        "concurrency_limit": concurrency_limit,
    }
    if route is not None:
        fields["route"] = {
            "capacity": route.capacity,
            "ceiling": route.ceiling,
            "limit": round(route.limit, 3),
            "leased_slots": route.leased_slots,
            "waited_ms": route.waited_ms,
        }
    logger.info("batch done", extra=fields)


def emit_route_metrics(metrics: Metrics, route: RouteReport) -> None:
    # EndpointCapacity feeds the stack's scaling policy: every shared-mode batch reports it, those handed
    # back for no capacity included (a zero is what starts a scale-out from zero).
    metrics.add_metric(name=Metric.ENDPOINT_CAPACITY, unit=MetricUnit.Count, value=route.capacity)
    metrics.add_metric(name=Metric.ROUTE_CEILING, unit=MetricUnit.Count, value=route.ceiling)
    metrics.add_metric(name=Metric.ROUTE_LIMIT, unit=MetricUnit.Count, value=round(route.limit, 3))
    metrics.add_metric(name=Metric.LEASED_SLOTS, unit=MetricUnit.Count, value=route.leased_slots)


def emit_batch_metrics(
    metrics: Metrics, observed: BatchObservations, batch_size: int, concurrency_limit: int
) -> None:
    # Latencies first: Powertools flushes every 100 values of a metric, and the counters added last
    # keep the final flush from being empty (which it would warn about).
    for latency in observed.latencies_ms:
        metrics.add_metric(
            name=Metric.INVOCATION_LATENCY, unit=MetricUnit.Milliseconds, value=round(latency, 3)
        )
    counts = (
        (Metric.BATCH_SIZE, batch_size),
        (Metric.CONCURRENCY_LIMIT, concurrency_limit),
        (Metric.INVOCATIONS, observed.invocations),
        (Metric.INVOCATION_REATTEMPTS, observed.reattempts),
        (Metric.SUCCEEDED, observed.succeeded),
        (Metric.RETRIED, observed.retried.total()),
        (Metric.DEAD_LETTERED, observed.dead_lettered.total()),
    )
    for name, value in counts:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    # EMF gives one value per dimension name in a document, so each reason is its own document.
    for name, by_reason in (
        (Metric.RETRIED, observed.retried),
        (Metric.DEAD_LETTERED, observed.dead_lettered),
    ):
        for reason, count in sorted(by_reason.items()):
            with single_metric(
                name=name,
                unit=MetricUnit.Count,
                value=count,
                namespace=metrics.namespace,
                default_dimensions=metrics.default_dimensions,
            ) as metric:
                metric.add_dimension(name=Dimension.REASON, value=str(reason))
