"""The worker side of the event source emulator: a tiny stand-in for the Lambda Python runtime.

Run as a script (not ``-m``) so that nothing but the function's code root is on ``sys.path``, like
``/var/task``. It imports the handler once (the init phase) and then serves invocations read as JSON lines
from a control pipe, so module state stays warm across invocations. The handler's stdout and stderr are the
function's log, exactly as in Lambda; the control pipe is separate so a ``print`` can never corrupt it.
Standard library only: the cold start measured here is the function's own.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback
from typing import IO, Any


class LambdaContext:
    """The attributes and method of ``awslambdaric``'s context object.

    The one stand-in for it: the runtime here builds it from Lambda's environment variables
    (``from_runtime_environment``), tests and benchmarks call ``starting_now``. A plain class, not a
    dataclass: importing ``dataclasses`` here would take its cost out of the function's measured init."""

    def __init__(  # noqa: PLR0913 - a record's fields, by keyword, like a dataclass's constructor
        self,
        *,
        aws_request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        function_name: str | None,
        function_version: str | None = "$LATEST",
        memory_limit_in_mb: int | str | None = None,
        log_group_name: str | None = None,
        log_stream_name: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb  # awslambdaric passes the environment's string
        self.aws_request_id = aws_request_id
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        # Epoch milliseconds, as the Runtime API's Lambda-Runtime-Deadline-Ms header gives it.
        self._epoch_deadline_time_in_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._epoch_deadline_time_in_ms - int(time.time() * 1000))

    @classmethod
    def from_runtime_environment(
        cls, request_id: str, deadline_ms: int, invoked_function_arn: str
    ) -> LambdaContext:
        """The context of one invocation, the function described by Lambda's AWS_LAMBDA_* variables."""
        return cls(
            aws_request_id=request_id,
            deadline_ms=deadline_ms,
            invoked_function_arn=invoked_function_arn,
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            function_version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
            memory_limit_in_mb=os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        )

    @classmethod
    def starting_now(
        cls,
        timeout_ms: int = 180_000,
        *,
        function_name: str = "invoker-test",
        request_id: str = "00000000-0000-0000-0000-000000000000",
        log_stream_name: str = "stream",
    ) -> LambdaContext:
        """An invocation that starts now with `timeout_ms` to run, of a 512 MB function in 123456789012."""
        return cls(
            aws_request_id=request_id,
            deadline_ms=int(time.time() * 1000) + timeout_ms,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
            function_name=function_name,
            memory_limit_in_mb=512,
            log_group_name=f"/aws/lambda/{function_name}",
            log_stream_name=log_stream_name,
        )


def _send(channel: IO[bytes], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message).encode() + b"\n")
    channel.flush()


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _log_error(request_id: str | None, error: dict[str, Any]) -> None:
    # Lambda writes an unhandled error as one log event: newlines become carriage returns.
    text = f"[ERROR] {error['errorType']}: {error['errorMessage']}\rTraceback (most recent call last):\r"
    text += "".join(error["stackTrace"]).replace("\n", "\r")
    if request_id:
        text = f"{text}\rRequestId: {request_id}"
    sys.stdout.write(text.rstrip("\r") + "\n")
    sys.stdout.flush()


def _max_memory_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _enter_task_root(task_root: str) -> None:
    # Like Lambda: the task root, then the runtime's own libraries. This script's directory and
    # anything an editable install of the project added (the repo itself) are dropped, so the function
    # cannot import the local stack, the tests or the infrastructure by accident.
    prefixes = tuple(os.path.realpath(p) for p in {sys.prefix, sys.base_prefix})
    libraries = [p for p in sys.path[1:] if p and os.path.realpath(p).startswith(prefixes)]
    sys.path[:] = [task_root, *libraries]
    os.chdir(task_root)


def main() -> int:
    control_in = os.fdopen(int(sys.argv[1]), "rb")
    control_out = os.fdopen(int(sys.argv[2]), "wb")
    _enter_task_root(os.environ["LAMBDA_TASK_ROOT"])

    init_started = time.perf_counter()
    try:
        module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:
        error = _error(exc)
        error["errorType"] = f"Runtime.ImportModuleError: {error['errorType']}"
        _log_error(None, error)
        _send(control_out, {"type": "init_error", **error})
        return 1
    init_ms = (time.perf_counter() - init_started) * 1000
    _send(control_out, {"type": "ready", "initMs": init_ms})

    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    first = True
    for line in control_in:
        request = json.loads(line)
        request_id = request["requestId"]
        context = LambdaContext.from_runtime_environment(
            request_id, request["deadlineMs"], request["invokedFunctionArn"]
        )
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.perf_counter()
        reply: dict[str, Any] = {"type": "result", "requestId": request_id}
        try:
            response = handler(request["event"], context)
        except Exception as exc:
            error = _error(exc)
            _log_error(request_id, error)
            reply.update(ok=False, **error)
        else:
            try:
                reply.update(ok=True, payload=json.dumps(response))
            except (TypeError, ValueError) as exc:
                error = _error(exc)
                error["errorType"] = "Runtime.MarshalError"
                _log_error(request_id, error)
                reply.update(ok=False, **error)
        duration_ms = (time.perf_counter() - started) * 1000
        sys.stdout.flush()
        sys.stderr.flush()
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {_max_memory_mb()} MB"
        )
        if first:
            report += f"\tInit Duration: {init_ms:.2f} ms"
            first = False
        print(f"END RequestId: {request_id}", flush=True)
        print(report, flush=True)
        reply["durationMs"] = duration_ms
        _send(control_out, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
