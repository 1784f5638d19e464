"""One Lambda instance of the benchmark, in its own process: `python -m bench.probes.lambda_instance`.

It pins itself to the client CPU(s) before anything else (one Lambda vCPU), imports the handler under
test once (a cold start with the environment it was given), then serves requests from its parent as
JSON lines (bench.protocol): requests on stdin, answers on a duplicate of the original stdout. File
descriptor 1 itself goes to a log file, because the function logs to stdout as Lambda functions do (and,
as Lambda's runtime does, unbuffered). Only the handler call is timed; building events and reading the
log are not.

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
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from typing import TYPE_CHECKING, Any, cast  # noqa: E402

from bench.function_log import LogReader  # noqa: E402
from bench.protocol import LAMBDA_TIMEOUT_MS  # noqa: E402

# The shared Lambda context from its defining module, which imports nothing this program has not: through
# sqs_sagemaker_invoker.local.stand_ins, modules the handler's timed import needs would be loaded already.
from sqs_sagemaker_invoker.local.lambda_runtime import LambdaContext  # noqa: E402

if TYPE_CHECKING:
    from bench.protocol import (
        BareAnswer,
        BareRequest,
        BatchAnswer,
        BatchRequest,
        CallResult,
        CallWithLog,
        DrainAnswer,
        DrainRequest,
        Ready,
        RssAnswer,
    )


class Instance:
    """The handler under test, imported once. bench.profiling finds the timed call by this class's and
    this file's names (`Instance._call`): keep them in step."""

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
    def batch(self, request: BatchRequest) -> BatchAnswer:
        # bench.messages is imported on first use, here and below: not in the idle RSS.
        from bench.messages import MessageSpec, event, records  # noqa: PLC0415

        spec = MessageSpec.from_wire(request["messages"])
        warmup = request["warmup"]
        if warmup:
            self._call(event(records(MessageSpec(warmup, spec.size, spec.seed + 10_000))))
            self.log.collect()
        reps: list[CallWithLog] = []
        for rep in range(request["reps"]):
            batch = event(records(MessageSpec(spec.count, spec.size, spec.seed + rep)))
            result, _ = self._call(batch)
            reps.append({**result, **self.log.collect()})
        return {"ok": True, "reps": reps}

    def drain(self, request: DrainRequest) -> DrainAnswer:
        """The event source mapping's loop over one batch: what the function reports as failed comes
        back (receive count + 1) in the next round, until nothing fails or `max_rounds`. The backoff the
        function asked for is not waited for; the delays are returned instead."""
        from bench.messages import MessageSpec, event, records, redelivered  # noqa: PLC0415

        pending = records(MessageSpec.from_wire(request["messages"]))
        acknowledged: set[str] = set()
        rounds: list[CallWithLog] = []
        for _ in range(request["max_rounds"]):
            if not pending:
                break
            result, failed_ids = self._call(event(pending))
            failed = set(failed_ids)
            acknowledged.update(r["messageId"] for r in pending if r["messageId"] not in failed)
            pending = [redelivered(r) for r in pending if r["messageId"] in failed]
            rounds.append({**result, **self.log.collect()})
        return {"ok": True, "rounds": rounds, "acknowledged": len(acknowledged), "pending": len(pending)}

    def bare(self, request: BareRequest) -> BareAnswer:
        """A bare loop of boto3 invoke_endpoint calls with the invoker's client settings: the cost of the
        SDK call alone. Payloads are the bodies the handlers send for the same messages. With `threads`
        above 1, the same calls from a thread pool sharing one client (the least a concurrent client does)."""
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        from bench.messages import ENDPOINT_NAME, MessageSpec, payload_of, records  # noqa: PLC0415

        spec = MessageSpec.from_wire(request["messages"])
        threads = request["threads"]
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

        def call(payload: bytes) -> int:
            response = client.invoke_endpoint(
                EndpointName=ENDPOINT_NAME, Body=payload, ContentType="application/json"
            )
            return len(response["Body"].read())

        pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
        warmup = payloads[: max(request["warmup"], 2 * threads if pool else 0)]
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
            "ok": True,
            "calls": len(payloads),
            "threads": threads,
            "wall_s": wall,
            "cpu_s": cpu,
            "user_s": after.ru_utime - usage.ru_utime,
            "sys_s": after.ru_stime - usage.ru_stime,
        }

    def rss(self) -> RssAnswer:
        return {"ok": True, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}

    # -- the timed call ----------------------------------------------------------------------------------
    def _call(self, batch: dict[str, Any]) -> tuple[CallResult, list[str]]:
        """One handler call; the result and the ids the function reported in batchItemFailures."""
        if self.module is None:
            raise ValueError("a bare instance has no handler")
        context = LambdaContext.starting_now(
            LAMBDA_TIMEOUT_MS,
            function_name="invoker-bench",
            request_id="00000000-0000-4000-8000-000000000000",
            log_stream_name="bench",
        )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = time.process_time()
        started = time.perf_counter()
        response = self.module.lambda_handler(batch, context)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        failed = [item["itemIdentifier"] for item in response.get("batchItemFailures", [])]
        result: CallResult = {
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
        return result, failed

    def serve(self, request: dict[str, Any]) -> object:
        """The answer to one request line from the driver (bench.instances writes them)."""
        op = request.get("op")
        if op == "batch":
            return self.batch(cast("BatchRequest", request))
        if op == "drain":
            return self.drain(cast("DrainRequest", request))
        if op == "bare":
            return self.bare(cast("BareRequest", request))
        if op == "rss":
            return self.rss()
        raise ValueError(f"unknown op {op!r}")


def main() -> int:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    log_path = os.environ["BENCH_LOG"]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.close(log_fd)

    def answer(payload: object) -> None:
        answers.write(json.dumps(payload) + "\n")
        answers.flush()

    try:
        instance = Instance(os.environ["BENCH_KIND"], LogReader(log_path))
    except Exception:
        answer({"ok": False, "error": traceback.format_exc()})
        return 1
    ready: Ready = {
        "ok": True,
        "pid": os.getpid(),
        "import_s": instance.import_s,
        "import_cpu_s": instance.import_cpu_s,
        "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    answer(ready)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        try:
            answer(instance.serve(request))
        except Exception:
            answer({"ok": False, "error": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
