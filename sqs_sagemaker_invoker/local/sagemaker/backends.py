"""What answers behind an endpoint: a model container process (hosting contract) or the inline echo."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from sqs_sagemaker_invoker.local.sagemaker.containers import CONTAINER_MODULES
from sqs_sagemaker_invoker.local.sagemaker.containers.echo import plan as echo_plan
from sqs_sagemaker_invoker.local.sagemaker.wire import CUSTOM_ATTRIBUTES_HEADER, SESSION_ID_HEADER

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.local.sagemaker.spec import EndpointSpec

log = logging.getLogger(__name__)

REPO_ROOT: Final = Path(__file__).resolve().parents[3]
START_TIMEOUT_S: Final = 30.0
PING_TIMEOUT_S: Final = 2.0


class ContainerTimeout(Exception):
    """The container did not answer within the model timeout."""


class ContainerUnavailable(Exception):
    """No connection to the container (not started, crashed, refused)."""


class ContainerBroken(Exception):
    """The container accepted the request but the exchange failed (reset, truncated answer)."""


@dataclass
class BackendResult:
    status: int
    body: bytes
    content_type: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)


class InlineBackend:
    """Answers like the echo container inside the emulator: no process, no extra hop (benchmarks)."""

    def __init__(self, spec: EndpointSpec) -> None:
        self._startup_delay_s = spec.startup_delay_s
        self._ready_at = 0.0
        self._unready_until = 0.0
        self.restarts = 0
        self.pid: int | None = None
        self.port: int | None = None

    def start(self) -> None:
        self._ready_at = time.monotonic() + self._startup_delay_s

    def ensure_running(self) -> bool:
        return True

    def ping(self) -> bool:
        now = time.monotonic()
        return now >= self._ready_at and now >= self._unready_until

    def set_not_ready(self, seconds: float) -> None:
        self._unready_until = time.monotonic() + seconds

    def invoke(self, headers: dict[str, str], body: bytes, timeout_s: float) -> BackendResult:
        decided = echo_plan(
            content_type=headers.get("Content-Type"),
            custom_attributes=headers.get(CUSTOM_ATTRIBUTES_HEADER),
            session_id=headers.get(SESSION_ID_HEADER),
            body=body,
        )
        if decided.sleep_s >= timeout_s:
            time.sleep(timeout_s)
            raise ContainerTimeout
        if decided.sleep_s:
            time.sleep(decided.sleep_s)
        response = decided.response
        return BackendResult(response.status, response.body, response.content_type, response.headers)

    def stop(self) -> None:
        return


class ProcessBackend:
    """A model container in a child process, reached over HTTP on 127.0.0.1 with pooled keep-alive."""

    def __init__(self, spec: EndpointSpec, log_path: Path) -> None:
        self._spec = spec
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._idle: list[http.client.HTTPConnection] = []
        self._pool_lock = threading.Lock()
        self._proc_lock = threading.Lock()
        self._stopped = False
        self._started_once = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def port(self) -> int | None:
        return self._port or None

    def start(self) -> None:
        return  # the endpoint's monitor thread calls ensure_running()

    def ensure_running(self) -> bool:
        """Start the container if it is not running; False if it could not be started (logged)."""
        with self._proc_lock:
            if self._stopped:
                return False
            if self._proc is not None and self._proc.poll() is None:
                return True
            if self._proc is not None:
                log.warning(
                    "container of %s exited with %s; restarting", self._spec.name, self._proc.returncode
                )
                self.restarts += 1
                self._reap(self._proc)
            self._drop_pool()
            try:
                self._proc, self._port = self._spawn()
            except Exception as exc:
                log.error("container of %s failed to start: %s", self._spec.name, exc)
                self._proc = None
                return False
            self._started_once = True
            return True

    def _command(self) -> tuple[list[str], int | None]:
        spec = self._spec
        if spec.container == "command":
            assert spec.command is not None
            port = _free_port()
            return [part.replace("{port}", str(port)) for part in spec.command], port
        module = CONTAINER_MODULES[spec.container]
        command = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", "--exit-on-stdin-eof"]
        # A restart (a replaced instance) must load again, but not wait the first start-up delay again.
        delay = spec.startup_delay_s if not self._started_once else 0.0
        return [*command, "--startup-delay", str(delay)], None

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        command, port = self._command()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        if port is not None:
            env["SAGEMAKER_BIND_TO_PORT"] = str(port)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_path, "ab") as log_file:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log_file if port is not None else subprocess.PIPE,
                stderr=log_file,
                env=env,
                cwd=REPO_ROOT,
                # Own process group: Ctrl-C in a terminal reaches the emulator, which stops us cleanly.
                start_new_session=True,
            )
        if port is not None:
            return proc, port
        assert proc.stdout is not None
        try:
            return proc, _read_port(proc, proc.stdout)
        except Exception:
            self._reap(proc)
            raise

    def ping(self) -> bool:
        if self._port == 0 or self._proc is None or self._proc.poll() is not None:
            return False
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=PING_TIMEOUT_S)
        try:
            conn.request("GET", "/ping")
            response = conn.getresponse()
            response.read()
            return response.status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def set_not_ready(self, seconds: float) -> None:
        if self._spec.container == "command" or self._port == 0:
            return
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=PING_TIMEOUT_S)
        try:
            body = json.dumps({"seconds": seconds}).encode()
            conn.request("POST", "/_container/not-ready", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
        except OSError as exc:
            log.warning("could not tell the container of %s to fail /ping: %s", self._spec.name, exc)
        finally:
            conn.close()

    def invoke(self, headers: dict[str, str], body: bytes, timeout_s: float) -> BackendResult:
        for attempt in range(2):
            conn, reused = self._checkout(timeout_s)
            try:
                conn.request("POST", "/invocations", body, headers)
                response = conn.getresponse()
                data = response.read()
            except TimeoutError as exc:
                conn.close()
                raise ContainerTimeout from exc
            except ConnectionRefusedError as exc:
                conn.close()
                raise ContainerUnavailable(str(exc)) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                # An idle pooled connection the container closed: try once on a fresh one.
                if reused and attempt == 0:
                    continue
                raise ContainerBroken(f"{type(exc).__name__}: {exc}") from exc
            if response.will_close:
                conn.close()
            else:
                with self._pool_lock:
                    self._idle.append(conn)
            passthrough = [
                (name, value) for name, value in response.getheaders() if name.lower() != "content-type"
            ]
            return BackendResult(response.status, data, response.getheader("Content-Type"), passthrough)
        raise AssertionError("unreachable")

    def _checkout(self, timeout_s: float) -> tuple[http.client.HTTPConnection, bool]:
        if self._port == 0:
            raise ContainerUnavailable("container not started")
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            return http.client.HTTPConnection("127.0.0.1", self._port, timeout=timeout_s), False
        conn.timeout = timeout_s
        if conn.sock is not None:
            conn.sock.settimeout(timeout_s)
        return conn, True

    def _drop_pool(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def kill(self) -> None:
        """Kill the container abruptly (a crashed instance); the monitor restarts it."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        with self._proc_lock:
            self._stopped = True
            proc, self._proc = self._proc, None
        self._drop_pool()
        if proc is not None:
            self._reap(proc)

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes]) -> None:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _read_port(proc: subprocess.Popen[bytes], stdout: IO[bytes]) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stdout], [], [], 0.1)
        if ready:
            line = stdout.readline().decode("utf-8", "replace").strip()
            if line.startswith("LISTENING "):
                return int(line.rsplit(" ", 1)[1])
            if not line and proc.poll() is not None:
                break
        elif proc.poll() is not None:
            break
    raise RuntimeError(f"container did not report its port (exit code {proc.poll()})")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
