"""Per-batch CloudWatch metrics (EMF), emitted once per batch from the handler's thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit, single_metric

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

    from invoker.invoker import BatchState


def emit_batch_metrics(metrics: Metrics, batch: BatchState, batch_size: int, concurrency_limit: int) -> None:
    # Latencies first: Powertools flushes every 100 values of a metric, and the counters added last
    # keep the final flush from being empty (which it would warn about).
    for latency in batch.latencies_ms:
        metrics.add_metric(name="InvocationLatency", unit=MetricUnit.Milliseconds, value=round(latency, 3))
    metrics.add_metric(name="BatchSize", unit=MetricUnit.Count, value=batch_size)
    metrics.add_metric(name="ConcurrencyLimit", unit=MetricUnit.Count, value=concurrency_limit)
    metrics.add_metric(name="Invocations", unit=MetricUnit.Count, value=batch.invocations)
    metrics.add_metric(name="InvocationReattempts", unit=MetricUnit.Count, value=batch.reattempts)
    metrics.add_metric(name="Succeeded", unit=MetricUnit.Count, value=batch.succeeded)
    metrics.add_metric(name="Retried", unit=MetricUnit.Count, value=batch.retried.total())
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=batch.dead_lettered.total())
    # EMF gives one value per dimension name in a document, so each reason is its own document.
    for name, counts in (("Retried", batch.retried), ("DeadLettered", batch.dead_lettered)):
        for reason, count in sorted(counts.items()):
            with single_metric(
                name=name,
                unit=MetricUnit.Count,
                value=count,
                namespace=metrics.namespace,
                default_dimensions=metrics.default_dimensions,
            ) as metric:
                metric.add_dimension(name="reason", value=str(reason))
