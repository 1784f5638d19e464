"""What the function under test logged: its EMF metrics and its "retry later" lines, read from the log
file a Lambda instance's stdout goes to."""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from invoker.contract import Dimension, Metric

if TYPE_CHECKING:
    from bench.protocol import LogSummary

_COUNTED = (
    Metric.INVOCATIONS,
    Metric.INVOCATION_REATTEMPTS,
    Metric.SUCCEEDED,
    Metric.RETRIED,
    Metric.DEAD_LETTERED,
    Metric.BATCH_SIZE,
)


class LogReader:
    """Reads what the function logged since the last call, then empties the file (it can grow fast)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> LogSummary:
        sys.stdout.flush()
        with open(self.path, "r+", encoding="utf-8", errors="replace") as log:
            text = log.read()
            log.truncate(0)
        return summarize_log(text)


def summarize_log(text: str) -> LogSummary:
    metrics: Counter[str] = Counter()
    limits: list[int] = []
    latencies: list[float] = []
    delays: list[float] = []
    lines = 0
    for line in text.splitlines():
        lines += 1
        if '"_aws"' not in line and '"retry later"' not in line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if "_aws" in doc:
            _read_emf(doc, metrics, limits, latencies)
        elif doc.get("message") == "retry later" and "delay_seconds" in doc:
            delays.append(float(doc["delay_seconds"]))
    return {
        "log_lines": lines,
        "log_bytes": len(text.encode()),
        "metrics": dict(metrics),
        "concurrency_limit_min": min(limits) if limits else None,
        "concurrency_limit_last": limits[-1] if limits else None,
        "invocation_latency_ms_median": statistics.median(latencies) if latencies else None,
        "retry_delays_s": delays,
    }


def _values(value: Any) -> list[float]:
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


def _read_emf(doc: dict[str, Any], metrics: Counter[str], limits: list[int], latencies: list[float]) -> None:
    for directive in doc["_aws"].get("CloudWatchMetrics", []):
        for metric in directive.get("Metrics", []):
            name = metric["Name"]
            if name not in doc:
                continue
            values = _values(doc[name])
            if Dimension.REASON in doc:
                metrics[f"{name}[{doc[Dimension.REASON]}]"] += int(sum(values))
            elif name in _COUNTED:
                metrics[name] += int(sum(values))
            elif name == Metric.CONCURRENCY_LIMIT:
                limits.extend(int(v) for v in values)
            elif name == Metric.INVOCATION_LATENCY:
                latencies.extend(values)
