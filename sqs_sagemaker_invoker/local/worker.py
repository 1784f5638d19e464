"""One warm Lambda execution environment: a worker process running the real handler (see lambda_runtime)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

RUNTIME_SCRIPT = Path(__file__).with_name("lambda_runtime.py")
DEFAULT_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class LogLine:
    log_group: str
    log_stream: str
    timestamp_ms: int
    message: str


@dataclass(frozen=True)
class FunctionSpec:
    """What Lambda knows about a function: its code, handler, environment and limits."""

    name: str
    environment: Mapping[str, str]
    timeout_s: float
    handler: str = "invoker.handler.lambda_handler"
    code_root: Path = Path("functions")
    memory_mb: int = 512
    region: str = "us-east-1"
    account: str = DEFAULT_ACCOUNT
    runtime: str = "python3.12"
    # Lambda's on-demand init limit is 10 s; a loaded 2-core laptop needs more headroom.
    init_timeout_s: float = 30.0
    python: str = sys.executable

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


Status = Literal["ok", "error", "timeout", "crash", "init_error"]


@dataclass
class InvokeOutcome:
    status: Status
    request_id: str
    payload: str | None = None  # the handler's return value, JSON-encoded, when status is "ok"
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    cold_start: bool = False
    worker_pid: int | None = None


@dataclass
class _Process:
    popen: subprocess.Popen[bytes]
    control_in: IO[bytes]  # we write requests
    replies: queue.Queue[dict[str, Any] | None]
    readers: list[threading.Thread] = field(default_factory=list)
    log_stream: str = ""


def lambda_environment(spec: FunctionSpec, log_stream: str) -> dict[str, str]:
    """The variables the Lambda service sets around the function's own environment."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - only a fallback for a missing HOME
        "LAMBDA_TASK_ROOT": str(spec.code_root.resolve()),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        # Lambda writes each stdout line as it comes; the log timestamps depend on it.
        "PYTHONUNBUFFERED": "1",
        # No user config or instance metadata can leak into a local function.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update(spec.environment)
    return env


class WorkerInitError(RuntimeError):
    pass


class Worker:
    """A warm execution environment: spawned on first use, reused, replaced after a timeout or crash."""

    def __init__(self, spec: FunctionSpec, sink: Callable[[LogLine], None] | None = None) -> None:
        self.spec = spec
        self._sink = sink
        self._process: _Process | None = None
        self._lock = threading.Lock()
        self.invocations = 0
        self.spawns = 0
        self._closed = False
        self.current_request: str | None = None  # the invocation running now, if any

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.popen.pid if process and process.popen.poll() is None else None

    @property
    def log_stream(self) -> str | None:
        return self._process.log_stream if self._process else None

    # -- process lifecycle ------------------------------------------------------------------------

    def _emit(self, stream: str, message: str) -> None:
        if self._sink is not None:
            self._sink(LogLine(self.spec.log_group, stream, int(time.time() * 1000), message))

    def _spawn(self) -> tuple[_Process, dict[str, Any]]:
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            popen = subprocess.Popen(
                [self.spec.python, str(RUNTIME_SCRIPT), str(request_read), str(reply_write)],
                env=lambda_environment(self.spec, stream),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(request_read, reply_write),
                start_new_session=True,  # a terminal's Ctrl-C reaches the stack, which stops us in order
            )
        finally:
            os.close(request_read)
            os.close(reply_write)
        replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        process = _Process(popen, os.fdopen(request_write, "wb"), replies, log_stream=stream)
        assert popen.stdout is not None
        assert popen.stderr is not None
        for pipe in (popen.stdout, popen.stderr):
            reader = threading.Thread(target=self._pump_log, args=(pipe, stream), daemon=True)
            reader.start()
            process.readers.append(reader)
        control = threading.Thread(
            target=_pump_replies, args=(os.fdopen(reply_read, "rb"), replies), daemon=True
        )
        control.start()
        process.readers.append(control)
        self.spawns += 1
        try:
            first = replies.get(timeout=self.spec.init_timeout_s)
        except queue.Empty:
            first = {
                "type": "init_error",
                "errorType": "Runtime.InitTimeout",
                "errorMessage": "init timed out",
            }
        return process, first or {"type": "init_error", "errorType": "Runtime.ExitError", "errorMessage": ""}

    def _pump_log(self, pipe: IO[bytes], stream: str) -> None:
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                self._emit(stream, line)
        pipe.close()

    def start(self) -> float:
        """Spawn and initialise now (Lambda's init phase); returns the init duration in ms."""
        with self._lock:
            return self._ensure_started()

    def _ensure_started(self) -> float:
        if self._process is not None and self._process.popen.poll() is None:
            return 0.0
        if self._closed:
            raise WorkerInitError("Runtime.Stopped: the execution environment was stopped")
        self._discard()
        process, first = self._spawn()
        if first.get("type") != "ready":
            self._process = process
            self._discard(kill=True)
            raise WorkerInitError(f"{first.get('errorType')}: {first.get('errorMessage')}")
        self._process = process
        return float(first.get("initMs", 0.0))

    def _discard(self, *, kill: bool = False) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.control_in.close()  # EOF: the runtime loop ends
        if kill and process.popen.poll() is None:
            process.popen.kill()
        try:
            process.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()
        for reader in process.readers:
            reader.join(timeout=2)

    def stop(self, *, kill: bool = False) -> None:
        """End the process for good: ``kill`` ends a running invocation, otherwise it is waited for."""
        self._closed = True  # no new process after this, whatever a polling thread does next
        if kill:
            self.kill()
        with self._lock:
            self._discard(kill=kill)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the process from outside (tests: a crash mid-batch)."""
        process = self._process
        if process is not None and process.popen.poll() is None:
            process.popen.send_signal(sig)

    # -- invocation -------------------------------------------------------------------------------

    def invoke(self, event: dict[str, Any], timeout_s: float | None = None) -> InvokeOutcome:
        """Invoke once; ``timeout_s`` overrides the function timeout (the context's time budget)."""
        request_id = str(uuid.uuid4())
        timeout = self.spec.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            cold = self._process is None or self._process.popen.poll() is not None
            try:
                self._ensure_started()
            except WorkerInitError as exc:
                error_type, _, message = str(exc).partition(": ")
                return InvokeOutcome("init_error", request_id, error_type=error_type, error_message=message)
            process = self._process
            assert process is not None
            self.invocations += 1
            started = time.time()
            deadline = started + timeout
            request = {
                "requestId": request_id,
                "deadlineMs": int(deadline * 1000),
                "invokedFunctionArn": self.spec.arn,
                "event": event,
            }
            pid = process.popen.pid
            self.current_request = request_id
            try:
                process.control_in.write(json.dumps(request).encode() + b"\n")
                process.control_in.flush()
                reply = process.replies.get(timeout=max(0.0, deadline - time.time()))
            except (BrokenPipeError, ValueError):
                reply = None
            except queue.Empty:
                return self._timed_out(request_id, timeout, started, cold, pid)
            finally:
                self.current_request = None
            duration = (time.time() - started) * 1000
            if reply is None:
                return self._crashed(request_id, started, cold, pid)
            if reply.get("ok"):
                return InvokeOutcome(
                    "ok",
                    request_id,
                    payload=reply["payload"],
                    duration_ms=duration,
                    cold_start=cold,
                    worker_pid=pid,
                )
            return InvokeOutcome(
                "error",
                request_id,
                error_type=reply.get("errorType"),
                error_message=reply.get("errorMessage"),
                duration_ms=duration,
                cold_start=cold,
                worker_pid=pid,
            )

    def _timed_out(
        self, request_id: str, timeout: float, started: float, cold: bool, pid: int
    ) -> InvokeOutcome:
        # Lambda ends the execution environment and starts a fresh one for the next invocation.
        stream = self.log_stream or ""
        self._discard(kill=True)
        duration = (time.time() - started) * 1000
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._emit(stream, f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds")
        self._emit(stream, f"END RequestId: {request_id}")
        self._emit(
            stream,
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {int(duration)} ms\t"
            f"Memory Size: {self.spec.memory_mb} MB\tStatus: timeout",
        )
        return InvokeOutcome(
            "timeout",
            request_id,
            error_type="Sandbox.Timedout",
            error_message=f"Task timed out after {timeout:.2f} seconds",
            duration_ms=duration,
            cold_start=cold,
            worker_pid=pid,
        )

    def _crashed(self, request_id: str, started: float, cold: bool, pid: int) -> InvokeOutcome:
        stream = self.log_stream or ""
        process = self._process
        code: int | None = None
        if process is not None:
            try:
                code = process.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None  # it closed its control pipe but lives on: replaced all the same
        self._discard(kill=True)
        detail = (
            f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
            if code and code < 0
            else f"exit status {code}"
        )
        self._emit(
            stream, f"RequestId: {request_id} Error: Runtime exited with error: {detail}\nRuntime.ExitError"
        )
        self._emit(stream, f"END RequestId: {request_id}")
        return InvokeOutcome(
            "crash",
            request_id,
            error_type="Runtime.ExitError",
            error_message=f"Runtime exited with error: {detail}",
            duration_ms=(time.time() - started) * 1000,
            cold_start=cold,
            worker_pid=pid,
        )


def _pump_replies(pipe: IO[bytes], replies: queue.Queue[dict[str, Any] | None]) -> None:
    for raw in pipe:
        try:
            replies.put(json.loads(raw))
        except json.JSONDecodeError:
            continue
    pipe.close()
    replies.put(None)  # EOF: the process is gone
