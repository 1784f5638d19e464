"""One Lambda instance of the benchmark, in its own process: `python -m bench.lambda_proc`.

It pins itself to the client CPU(s) before anything else (one Lambda vCPU), imports the handler under
test once (a cold start with the environment it was given), then serves requests from its parent as
JSON lines: requests on stdin, answers on a duplicate of the original stdout. File descriptor 1 itself
goes to a log file, because the function logs to stdout as Lambda functions do (and, as Lambda's runtime
does, unbuffered). Only the handler call is timed; building events and reading the log are not.

BENCH_KIND: `invoker` (the project's `invoker.handler`), `baseline` (bench.baseline), `bare` (no handler:
for bare boto3 loops). BENCH_CPUS: comma-separated CPU ids. BENCH_LOG: the log file."""

from __future__ import annotations

import os
import sys


def _pin() -> None:
    cpus = os.environ.get("BENCH_CPUS")
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})


_pin()  # before any import creates a thread: threads inherit the affinity of their creator

import importlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

_COUNTED = ("Invocations", "InvocationReattempts", "Succeeded", "Retried", "DeadLettered", "BatchSize")


class BenchContext:
    """Enough of a LambdaContext for Powertools and the invoker's deadline checks."""

    function_name = "invoker-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:invoker-bench"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/invoker-bench"
    log_stream_name = "bench"

    def __init__(self, timeout_ms: int) -> None:
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LogReader:
    """Reads what the function logged since the last call, then empties the file (it can grow fast)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> dict[str, Any]:
        sys.stdout.flush()
        with open(self.path, "r+", encoding="utf-8", errors="replace") as log:
            text = log.read()
            log.truncate(0)
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
            if "reason" in doc:
                metrics[f"{name}[{doc['reason']}]"] += int(sum(values))
            elif name in _COUNTED:
                metrics[name] += int(sum(values))
            elif name == "ConcurrencyLimit":
                limits.extend(int(v) for v in values)
            elif name == "InvocationLatency":
                latencies.extend(values)


class Instance:
    def __init__(self, kind: str, log: LogReader) -> None:
        self.kind = kind
        self.log = log
        started, cpu = time.perf_counter(), time.process_time()
        self.module: Any = None
        if kind == "invoker":
            self.module = importlib.import_module("invoker.handler")
        elif kind == "baseline":
            self.module = importlib.import_module("bench.baseline")
        elif kind != "bare":
            raise ValueError(f"unknown BENCH_KIND {kind!r}")
        self.import_s = time.perf_counter() - started
        self.import_cpu_s = time.process_time() - cpu
        log.collect()

    # -- operations ----------------------------------------------------------------------------------
    def op_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        from bench.messages import MessageSpec, event, records  # noqa: PLC0415

        spec = MessageSpec.from_dict(request["messages"])
        timeout_ms = int(request.get("timeout_ms", 900_000))
        warmup = int(request.get("warmup", 0))
        if warmup:
            self._call(event(records(MessageSpec(warmup, spec.size, spec.seed + 10_000))), timeout_ms)
            self.log.collect()
        reps = []
        for rep in range(int(request.get("reps", 1))):
            batch = event(records(MessageSpec(spec.count, spec.size, spec.seed + rep)))
            result = self._call(batch, timeout_ms)
            result.update(self.log.collect())
            reps.append(result)
        return {"reps": reps}

    def op_drain(self, request: dict[str, Any]) -> dict[str, Any]:
        """The event source mapping's loop over one batch: what the function reports as failed comes
        back (receive count + 1) in the next round, until nothing fails or `max_rounds`. The backoff the
        function asked for is not waited for; the delays are returned instead."""
        from bench.messages import MessageSpec, event, records, redelivered  # noqa: PLC0415

        spec = MessageSpec.from_dict(request["messages"])
        timeout_ms = int(request.get("timeout_ms", 900_000))
        pending = records(spec)
        acknowledged: set[str] = set()
        rounds = []
        for _ in range(int(request.get("max_rounds", 10))):
            if not pending:
                break
            result = self._call(event(pending), timeout_ms, keep_failed=True)
            failed = set(result.pop("failed_ids"))
            acknowledged.update(r["messageId"] for r in pending if r["messageId"] not in failed)
            pending = [redelivered(r) for r in pending if r["messageId"] in failed]
            result.update(self.log.collect())
            rounds.append(result)
        return {"rounds": rounds, "acknowledged": len(acknowledged), "pending": len(pending)}

    def op_bare(self, request: dict[str, Any]) -> dict[str, Any]:
        """A bare loop of boto3 invoke_endpoint calls with the invoker's client settings: the cost of the
        SDK call alone. Payloads are the bodies the handlers send for the same messages. With `threads`
        above 1, the same calls from a thread pool sharing one client (the least a concurrent client does)."""
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        from bench.messages import ENDPOINT_NAME, MessageSpec, payload_of, records  # noqa: PLC0415

        spec = MessageSpec.from_dict(request["messages"])
        threads = int(request.get("threads", 1))
        client = boto3.client(
            "sagemaker-runtime",
            config=Config(
                read_timeout=70,
                connect_timeout=5,
                retries={"mode": "standard", "total_max_attempts": 1},
                max_pool_connections=threads + 2,
            ),
        )
        payloads = [payload_of(r["body"]) for r in records(spec)]
        endpoint = request.get("endpoint", ENDPOINT_NAME)

        def call(payload: bytes) -> int:
            response = client.invoke_endpoint(
                EndpointName=endpoint, Body=payload, ContentType="application/json"
            )
            return len(response["Body"].read())

        pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
        warmup = payloads[: max(int(request.get("warmup", 20)), 2 * threads if pool else 0)]
        list(pool.map(call, warmup) if pool else map(call, warmup))
        started, cpu, usage = (
            time.perf_counter(),
            time.process_time(),
            resource.getrusage(resource.RUSAGE_SELF),
        )
        list(pool.map(call, payloads) if pool else map(call, payloads))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        if pool is not None:
            pool.shutdown()
        return {
            "calls": len(payloads),
            "threads": threads,
            "wall_s": wall,
            "cpu_s": cpu,
            "user_s": after.ru_utime - usage.ru_utime,
            "sys_s": after.ru_stime - usage.ru_stime,
        }

    def op_rss(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}

    # -- the timed call ----------------------------------------------------------------------------------
    def _call(self, batch: dict[str, Any], timeout_ms: int, *, keep_failed: bool = False) -> dict[str, Any]:
        if self.module is None:
            raise ValueError("a bare instance has no handler")
        context = BenchContext(timeout_ms)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = time.process_time()
        started = time.perf_counter()
        response = self.module.lambda_handler(batch, context)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        failed = [item["itemIdentifier"] for item in response.get("batchItemFailures", [])]
        result: dict[str, Any] = {
            "messages": len(batch["Records"]),
            "wall_s": wall,
            "cpu_s": cpu,
            "user_s": after.ru_utime - usage.ru_utime,
            "sys_s": after.ru_stime - usage.ru_stime,
            "failures": len(failed),
            "threads": threading.active_count(),
            "voluntary_switches": after.ru_nvcsw - usage.ru_nvcsw,
            "involuntary_switches": after.ru_nivcsw - usage.ru_nivcsw,
        }
        if keep_failed:
            result["failed_ids"] = failed
        return result


def main() -> int:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    log_path = os.environ["BENCH_LOG"]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.close(log_fd)

    def answer(payload: dict[str, Any]) -> None:
        answers.write(json.dumps(payload) + "\n")
        answers.flush()

    try:
        instance = Instance(os.environ["BENCH_KIND"], LogReader(log_path))
    except Exception:
        answer({"ok": False, "error": traceback.format_exc()})
        return 1
    answer(
        {
            "ok": True,
            "pid": os.getpid(),
            "import_s": instance.import_s,
            "import_cpu_s": instance.import_cpu_s,
            "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        }
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.get("op")
        if op == "exit":
            break
        try:
            answer({"ok": True, **getattr(instance, f"op_{op}")(request)})
        except Exception:
            answer({"ok": False, "error": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
