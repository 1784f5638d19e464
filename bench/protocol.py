"""The JSON lines between the driver (bench.instances) and a Lambda instance (bench.probes.lambda_instance):
one request per line on the instance's stdin, one answer per line on its stdout.

Every answer carries `ok`; a failed request answers `{"ok": false, "error": <traceback>}` instead."""

from __future__ import annotations

from typing import Literal, TypedDict

# Lambda's maximum timeout: the context's deadline never cuts a benchmark batch short.
LAMBDA_TIMEOUT_MS = 900_000


class MessagesRequest(TypedDict):
    """bench.messages.MessageSpec on the wire."""

    count: int
    size: int
    seed: int


class BatchRequest(TypedDict):
    op: Literal["batch"]
    messages: MessagesRequest
    reps: int
    warmup: int


class DrainRequest(TypedDict):
    op: Literal["drain"]
    messages: MessagesRequest
    max_rounds: int


class BareRequest(TypedDict):
    op: Literal["bare"]
    messages: MessagesRequest
    warmup: int
    threads: int


class RssRequest(TypedDict):
    op: Literal["rss"]


class ExitRequest(TypedDict):
    op: Literal["exit"]


Request = BatchRequest | DrainRequest | BareRequest | RssRequest | ExitRequest


class Ready(TypedDict):
    """The first line an instance writes, once the handler under test is imported."""

    ok: bool
    pid: int
    import_s: float
    import_cpu_s: float
    cpus: list[int] | None


class LogSummary(TypedDict):
    """What the function logged during one handler call (bench.function_log)."""

    log_lines: int
    log_bytes: int
    # EMF counters summed over the call; a metric with a `reason` dimension as `Name[reason]`.
    metrics: dict[str, int]
    concurrency_limit_min: int | None
    concurrency_limit_last: int | None
    invocation_latency_ms_median: float | None
    retry_delays_s: list[float]


class CallResult(TypedDict):
    """One timed `lambda_handler` call."""

    messages: int
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    failures: int
    threads: int
    voluntary_switches: int
    involuntary_switches: int


class CallWithLog(CallResult, LogSummary):
    pass


class BatchAnswer(TypedDict):
    ok: bool
    reps: list[CallWithLog]


class DrainAnswer(TypedDict):
    ok: bool
    rounds: list[CallWithLog]
    acknowledged: int
    pending: int


class BareAnswer(TypedDict):
    ok: bool
    calls: int
    threads: int
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float


class RssAnswer(TypedDict):
    ok: bool
    maxrss_kb: int
