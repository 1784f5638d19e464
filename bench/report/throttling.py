"""RESULTS.md, section 4: throttling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import analysis
from bench.report.table import ms, table

if TYPE_CHECKING:
    from bench.measurements import BenchRun


def section(run: BenchRun) -> list[str]:
    summary = analysis.throttling(run)
    if not summary:
        return []
    measured = summary.section
    out = [
        "## 4. Throttling",
        "",
        f"Endpoint capacity {measured['capacity']} concurrent requests at {measured['latency_ms']} ms "
        f"(over it: ThrottlingException at once), {measured['messages']:,} messages in one batch. The event "
        "source mapping's loop is replayed in the instance: messages reported in `batchItemFailures` come "
        "back with their receive count + 1 until all are acknowledged. Handler time is the sum of the "
        "handler calls; the function's backoff before a message comes back (RETRY_BASE_SECONDS 2) is not "
        "waited for, and shown apart. The first run of each instance starts with a fresh concurrency limit; "
        "later runs keep what the limiter learnt (a warm instance).",
        "",
    ]
    rows = []
    for concurrency in (measured["over"], measured["right"]):
        for index, each in enumerate(measured["runs"][str(concurrency)]):
            rows.append(
                [
                    str(concurrency),
                    str(index + 1),
                    ms(each["handler_wall_s"]),
                    ms(each["first_round_wall_s"]),
                    str(each["rounds"]),
                    str(each["endpoint_throttled"]),
                    str(each["endpoint_requests"] - each["invocations"]),
                    str(each["reattempts"]),
                    str(each["retried"]),
                    str(each["concurrency_limit_min"]),
                    f"{each['backoff_wait_s']:.1f} s",
                    str(each["lost"]),
                ]
            )
    out += table(
        [
            "MAX_CONCURRENCY",
            "run",
            "handler time",
            "first call",
            "rounds",
            "throttled by endpoint",
            "SDK retries (endpoint requests - Invocations)",
            "in-function re-attempts (InvocationReattempts)",
            "reported for retry (Retried)",
            "lowest ConcurrencyLimit",
            "backoff not waited",
            "lost",
        ],
        rows,
    )
    out += [
        f"Median handler time ratio {summary.ratio:.2f}x (first runs {summary.first_ratio:.2f}x; with the "
        f"backoff waits added {summary.with_backoff_ratio:.2f}x). SDK retries are counted as the "
        "endpoint's requests minus the function's `Invocations` metric (every attempt, re-attempts "
        "included): the client is pinned to one attempt per call (`total_max_attempts` 1).",
        "",
    ]
    return out
