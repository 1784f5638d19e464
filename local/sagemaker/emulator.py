"""SageMaker Runtime emulator: InvokeEndpoint over HTTP/1.1 with SigV4, model containers and fault injection."""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import logging
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from local.sagemaker._http import BodyTooLarge, FastHandler, KeepAliveServer
from local.sagemaker.backends import (
    ContainerBroken,
    ContainerTimeout,
    ContainerUnavailable,
    InlineBackend,
    ProcessBackend,
)
from local.sagemaker.sigv4 import SigV4Verifier
from local.sagemaker.spec import (
    DEFAULT_ACCOUNT_ID,
    MAX_PAYLOAD_BYTES,
    OUTCOMES,
    RATE_FIELDS,
    EndpointSpec,
    FaultKind,
    FaultSpec,
    SpecError,
    fault_kind,
)
from local.sagemaker.wire import (
    INVOKED_VARIANT_HEADER,
    REQUEST_HEADER_MEMBERS,
    RESPONSE_PASSTHROUGH_HEADERS,
    WireResponse,
    endpoint_not_found,
    error_response,
    fault_response,
    model_error,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)

CONTROL_PREFIX: Final = "/_emulator/"
# Faults answered before the model is reached (no latency, no capacity slot).
_IMMEDIATE: Final = frozenset(
    {
        "model_not_ready",
        "throttled",
        "service_unavailable",
        "internal_failure",
        "internal_dependency",
        "validation_error",
    }
)
_PASSTHROUGH_LOWER: Final = {name.lower(): name for name in RESPONSE_PASSTHROUGH_HEADERS}
_MEMBER_HEADERS_LOWER: Final = [
    (member, header, header.lower(), limit) for member, (header, limit) in REQUEST_HEADER_MEMBERS.items()
]


@dataclass
class RecordedRequest:
    """One InvokeEndpoint request as received. `headers` has lower-case names; `members` maps InvokeEndpoint
    member names (EndpointName, ContentType, CustomAttributes, ...) to the values that arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    members: dict[str, str]
    received_at: float
    outcome: str = ""
    status: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "members": self.members,
            "body_base64": base64.b64encode(self.body).decode(),
            "received_at": self.received_at,
            "outcome": self.outcome,
            "status": self.status,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedRequest:
        return cls(
            method=data["method"],
            path=data["path"],
            headers=dict(data["headers"]),
            body=base64.b64decode(data["body_base64"]),
            members=dict(data["members"]),
            received_at=float(data["received_at"]),
            outcome=data["outcome"],
            status=int(data["status"]),
        )


@dataclass(frozen=True)
class _Scripted:
    kind: FaultKind
    original_status_code: int
    message: str | None


@dataclass
class _Outcome:
    name: str
    response: WireResponse


class _Endpoint:
    def __init__(self, spec: EndpointSpec, account: str, log_dir: Path) -> None:
        self.spec = spec
        self.account = account
        self.log_path = log_dir / f"{spec.name}.log"
        self.backend: InlineBackend | ProcessBackend = (
            InlineBackend(spec) if spec.container == "inline" else ProcessBackend(spec, self.log_path)
        )
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._in_flight = 0
        self._max_in_flight = 0
        self._busy = 0
        self._scripted: deque[_Scripted] = deque()
        self._records: deque[RecordedRequest] = deque(maxlen=spec.record_limit or None)
        self._ready = False
        self._not_ready_until = 0.0
        self._throttle_until = 0.0
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.faults = FaultSpec()
        self._rng = random.Random(0)
        self._thresholds: list[tuple[float, FaultKind]] = []

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        self.backend.start()
        self.apply_faults(self.spec.faults)
        if isinstance(self.backend, ProcessBackend):
            self._monitor = threading.Thread(
                target=self._monitor_loop, name=f"monitor-{self.spec.name}", daemon=True
            )
            self._monitor.start()

    def _monitor_loop(self) -> None:
        # Like SageMaker's health checks: the container takes traffic only while GET /ping answers 200.
        while not self._stop.is_set():
            if not self.backend.ensure_running():
                self._ready = False
                self._stop.wait(1.0)
                continue
            healthy = self.backend.ping()
            self._ready = healthy
            self._stop.wait(0.5 if healthy else 0.05)

    def stop(self) -> None:
        self._stop.set()
        self.backend.stop()
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    def healthy(self) -> bool:
        if isinstance(self.backend, InlineBackend):
            return self.backend.ping()
        return self._ready

    def is_ready(self) -> bool:
        return time.monotonic() >= self._not_ready_until and self.healthy()

    # configuration -------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self.faults.capacity if self.faults.capacity is not None else self.spec.capacity

    @property
    def model_timeout_s(self) -> float:
        return (
            self.faults.model_timeout_s
            if self.faults.model_timeout_s is not None
            else self.spec.model_timeout_s
        )

    def apply_faults(self, faults: FaultSpec) -> None:
        thresholds: list[tuple[float, FaultKind]] = []
        cumulative = 0.0
        for name, kind in RATE_FIELDS.items():
            rate = float(getattr(faults, name))
            if rate > 0:
                cumulative += rate
                thresholds.append((cumulative, kind))
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self._thresholds = thresholds
        if faults.not_ready_for_s > 0:
            self.not_ready_for(faults.not_ready_for_s)
        if faults.throttle_for_s > 0:
            self.throttle_for(faults.throttle_for_s)

    def not_ready_for(self, seconds: float) -> None:
        self._not_ready_until = time.monotonic() + seconds
        self.backend.set_not_ready(seconds)

    def throttle_for(self, seconds: float) -> None:
        self._throttle_until = time.monotonic() + seconds

    def inject(self, kind: FaultKind, count: int, original_status_code: int, message: str | None) -> None:
        if count < 1:
            raise SpecError("count must be at least 1")
        if kind == "model_error" and not 400 <= original_status_code <= 599:
            raise SpecError("original_status_code must be a 4xx or 5xx status")
        with self._lock:
            self._scripted.extend([_Scripted(kind, original_status_code, message)] * count)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(OUTCOMES, 0)
            self._max_in_flight = self._in_flight
            self._scripted.clear()
            self._records.clear()

    # observation ---------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
            counts["total"] = sum(self._counts.values())
            counts["in_flight"] = self._in_flight
            counts["max_in_flight"] = self._max_in_flight
            counts["scripted_pending"] = len(self._scripted)
            counts["container_restarts"] = self.backend.restarts
        return counts

    def records(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "ready": self.is_ready(),
            "container": self.spec.container,
            "pid": self.backend.pid,
            "port": self.backend.port,
            "log": str(self.log_path) if isinstance(self.backend, ProcessBackend) else None,
            "capacity": self.capacity,
            "model_timeout_s": self.model_timeout_s,
            "spec": self.spec.to_dict(),
            "faults": self.faults.to_dict(),
            "not_ready_remaining_s": max(0.0, self._not_ready_until - time.monotonic()),
            "throttle_remaining_s": max(0.0, self._throttle_until - time.monotonic()),
            "stats": self.stats(),
        }

    def record(self, request: RecordedRequest) -> None:
        if self.spec.record_requests and self.spec.record_limit:
            with self._lock:
                self._records.append(request)

    def count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    # the request path ----------------------------------------------------------------------------
    def invoke(self, headers: dict[str, str], body: bytes, region: str) -> _Outcome:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            scripted = self._scripted.popleft() if self._scripted else None
        try:
            if scripted is not None:
                outcome = self._scripted_outcome(scripted, region)
            else:
                outcome = self._invoke(headers, body, region)
        except Exception:
            # A bug here must still answer the client (as AWS would: InternalFailure) and be counted.
            log.exception("endpoint %s failed to handle a request", self.spec.name)
            outcome = self._fault("internal_failure", region)
        with self._lock:
            self._in_flight -= 1
            self._counts[outcome.name] += 1
        return outcome

    def _fault(self, kind: str, region: str, status: int = 500, message: str | None = None) -> _Outcome:
        response = fault_response(
            kind,
            region=region,
            account=self.account,
            endpoint_name=self.spec.name,
            original_status=status,
            message=message,
        )
        return _Outcome(kind, response)

    def _scripted_outcome(self, scripted: _Scripted, region: str) -> _Outcome:
        if scripted.kind == "model_timeout":
            time.sleep(self.model_timeout_s)
        return self._fault(scripted.kind, region, scripted.original_status_code, scripted.message)

    def _draw(self) -> FaultKind | None:
        if not self._thresholds:
            return None
        draw = self._rng.random()
        for threshold, kind in self._thresholds:
            if draw < threshold:
                return kind
        return None

    def _invoke(self, headers: dict[str, str], body: bytes, region: str) -> _Outcome:
        now = time.monotonic()
        if now < self._throttle_until:
            return self._fault("throttled", region)
        if now < self._not_ready_until or not self.healthy():
            return self._fault("model_not_ready", region)
        kind = self._draw()
        if kind in _IMMEDIATE:
            return self._fault(kind, region)
        with self._lock:
            if self._busy >= self.capacity:
                full = True
            else:
                full = False
                self._busy += 1
        if full:
            return self._fault("throttled", region)
        try:
            return self._at_model(kind, headers, body, region)
        finally:
            with self._lock:
                self._busy -= 1

    def _latency_s(self) -> float:
        faults = self.faults
        latency_ms = self.spec.latency_ms + faults.latency_ms
        if faults.latency_jitter_ms:
            latency_ms += self._rng.uniform(0.0, faults.latency_jitter_ms)
        return latency_ms / 1000.0

    def _at_model(
        self, kind: FaultKind | None, headers: dict[str, str], body: bytes, region: str
    ) -> _Outcome:
        timeout = self.model_timeout_s
        latency = self._latency_s()
        # Added latency stands for the model's processing time, so it counts against the model timeout.
        if latency >= timeout:
            time.sleep(timeout)
            return self._fault("model_timeout", region)
        if latency:
            time.sleep(latency)
        if kind == "model_error":
            return self._fault("model_error", region, self.faults.model_error_status)
        if kind == "model_timeout":
            time.sleep(timeout - latency)
            return self._fault("model_timeout", region)
        try:
            result = self.backend.invoke(headers, body, timeout - latency)
        except ContainerTimeout:
            return self._fault("model_timeout", region)
        except ContainerUnavailable:
            self._ready = False
            return self._fault("model_not_ready", region)
        except ContainerBroken as exc:
            return self._fault("model_error", region, 0, f"The container closed the connection: {exc}")
        if 200 <= result.status < 300:
            out_headers: list[tuple[str, str]] = []
            if result.content_type:
                out_headers.append(("Content-Type", result.content_type))
            out_headers.append((INVOKED_VARIANT_HEADER, self.spec.variant))
            for name, value in result.headers:
                canonical = _PASSTHROUGH_LOWER.get(name.lower())
                if canonical is not None:
                    out_headers.append((canonical, value))
            return _Outcome("ok", WireResponse(200, out_headers, result.body))
        text = result.body.decode("utf-8", "replace")
        response = model_error(
            region=region,
            account=self.account,
            endpoint_name=self.spec.name,
            original_status=result.status,
            original_message=text,
        )
        return _Outcome("model_error", response)


class _Handler(FastHandler):
    server: _Server

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(CONTROL_PREFIX):
            self._control("POST")
            return
        parts = path.split("/")
        if len(parts) == 4 and parts[0] == "" and parts[1] == "endpoints" and parts[3] == "invocations":
            self._invoke_endpoint(unquote(parts[2]))
            return
        self._drain_and_send(error_response("UnknownOperationException", "Unknown operation"))

    def do_GET(self) -> None:
        if self.path.startswith(CONTROL_PREFIX):
            self._control("GET")
        else:
            self._drain_and_send(error_response("UnknownOperationException", "Unknown operation"))

    def do_DELETE(self) -> None:
        if self.path.startswith(CONTROL_PREFIX):
            self._control("DELETE")
        else:
            self._drain_and_send(error_response("UnknownOperationException", "Unknown operation"))

    def do_PUT(self) -> None:
        if self.path.startswith(CONTROL_PREFIX):
            self._control("PUT")
        else:
            self._drain_and_send(error_response("UnknownOperationException", "Unknown operation"))

    def _drain_and_send(self, response: WireResponse) -> None:
        with contextlib.suppress(BodyTooLarge):
            self.read_body()
        self._send(response)

    def _send(self, response: WireResponse) -> None:
        headers = [*response.headers, ("x-amzn-RequestId", str(uuid.uuid4()))]
        self.send_whole(response.status, headers, response.body)

    def _invoke_endpoint(self, name: str) -> None:
        emulator = self.server.emulator
        try:
            body = self.read_body()
        except BodyTooLarge as exc:
            emulator._count_global("payload_too_large")
            self._send(_payload_too_large(int(exc.args[0])))
            return
        auth = emulator._verifier.verify("POST", self.path, self.headers, body)
        if auth.error is not None:
            emulator._count_global("auth_rejected")
            self._send(auth.error)
            return
        endpoint = emulator._endpoints.get(name)
        if endpoint is None:
            emulator._count_global("unknown_endpoint")
            self._send(endpoint_not_found(name, emulator.account_id))
            return

        received = self.headers.lower_dict()
        forward: dict[str, str] = {}
        members = {"EndpointName": name}
        problem: str | None = None
        for member, header, lower, limit in _MEMBER_HEADERS_LOWER:
            value = received.get(lower)
            if value is None:
                continue
            forward[header] = value
            members[member] = value
            if len(value) > limit and problem is None:
                field_name = member[0].lower() + member[1:]
                shown = "[SENSITIVE]" if member == "CustomAttributes" else value
                problem = (
                    f"1 validation error detected: Value '{shown}' at '{field_name}' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {limit}"
                )
        if problem is None and len(body) > MAX_PAYLOAD_BYTES:
            problem = _payload_message(len(body))
        if problem is None and not members.get("CustomAttributes", "").isascii():
            problem = (
                "1 validation error detected: Value '[SENSITIVE]' at 'customAttributes' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: \\p{ASCII}*"
            )
        variant = members.get("TargetVariant")
        if problem is None and variant is not None and variant != endpoint.spec.variant:
            problem = (
                f"Variant {variant} does not exist for endpoint {name} of account {emulator.account_id}."
            )

        record = RecordedRequest("POST", self.path, received, body, members, time.time())
        endpoint.record(record)
        if problem is not None:
            endpoint.count("validation_error")
            record.outcome, response = "validation_error", error_response("ValidationError", problem)
        else:
            outcome = endpoint.invoke(forward, body, auth.region)
            record.outcome, response = outcome.name, outcome.response
        record.status = response.status
        self._send(response)

    def _control(self, method: str) -> None:
        try:
            body = self.read_body()
        except BodyTooLarge:
            self.send_whole(413, [("Content-Type", "application/json")], b'{"error":"body too large"}')
            return
        status, payload = self.server.emulator._control(method, self.path, body)
        data = json.dumps(payload).encode()
        self.send_whole(status, [("Content-Type", "application/json")], data)


def _payload_message(size: int) -> str:
    return f"Request payload size of {size} bytes exceeds the maximum of {MAX_PAYLOAD_BYTES} bytes."


def _payload_too_large(size: int) -> WireResponse:
    return error_response("ValidationError", _payload_message(size))


class _Server(KeepAliveServer):
    emulator: SageMakerEmulator


class SageMakerEmulator:
    """An InvokeEndpoint server on 127.0.0.1 whose endpoints are backed by model containers (or inline).

    Use as a context manager; `stop()` stops the server, drops open connections and stops every container.
    """

    def __init__(
        self,
        endpoints: Iterable[EndpointSpec] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_key: str = "testing",
        secret_key: str = "testing",  # noqa: S107 - the local stack's documented dummy credentials
        credentials: Mapping[str, str] | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
        log_dir: str | Path | None = None,
    ) -> None:
        self._specs = list(endpoints)
        names = [spec.name for spec in self._specs]
        if len(set(names)) != len(names):
            raise SpecError(f"duplicate endpoint names in {names}")
        self.host = host
        self._requested_port = port
        self.account_id = account_id
        self._verifier = SigV4Verifier({access_key: secret_key, **(credentials or {})})
        self._endpoints: dict[str, _Endpoint] = {}
        self._endpoints_lock = threading.Lock()
        self._global = {"auth_rejected": 0, "unknown_endpoint": 0, "payload_too_large": 0}
        self._global_lock = threading.Lock()
        self._log_dir_setting = Path(log_dir) if log_dir is not None else None
        # Container logs (one file per endpoint, like its CloudWatch log group); a temporary directory
        # removed on stop unless log_dir is given.
        self.log_dir = self._log_dir_setting or Path(tempfile.gettempdir())
        self._created_log_dir: Path | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> SageMakerEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SageMakerEmulator:
        if self._server is not None:
            return self
        server = _Server((self.host, self._requested_port), _Handler)
        server.emulator = self
        self._server = server
        if self._log_dir_setting is None:
            self.log_dir = self._created_log_dir = Path(tempfile.mkdtemp(prefix="sm-emulator-"))
        atexit.register(self.stop)
        try:
            for spec in self._specs:
                self.add_endpoint(spec)
        except Exception:
            self.stop()
            raise
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sagemaker-emulator",
            daemon=True,
        )
        self._thread.start()
        log.info(
            "SageMaker Runtime emulator on %s with %s", self.url, ", ".join(self._endpoints) or "no endpoint"
        )
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        atexit.unregister(self.stop)
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._endpoints_lock:
            endpoints, self._endpoints = list(self._endpoints.values()), {}
        # In parallel (each container may take a moment to exit), except at interpreter exit (atexit),
        # where no thread can start.
        stoppers: list[threading.Thread] = []
        for endpoint in endpoints:
            stopper = threading.Thread(target=endpoint.stop, daemon=True)
            try:
                stopper.start()
            except RuntimeError:
                endpoint.stop()
            else:
                stoppers.append(stopper)
        for stopper in stoppers:
            stopper.join(timeout=10)
        if self._created_log_dir is not None:
            shutil.rmtree(self._created_log_dir, ignore_errors=True)
            self._created_log_dir = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # endpoints -----------------------------------------------------------------------------------
    def add_endpoint(self, spec: EndpointSpec) -> None:
        endpoint = _Endpoint(spec, self.account_id, self.log_dir)
        with self._endpoints_lock:
            if spec.name in self._endpoints:
                raise SpecError(f"endpoint {spec.name} already exists")
            # Copy on write: the request path reads the dict without a lock.
            self._endpoints = {**self._endpoints, spec.name: endpoint}
        endpoint.start()

    def remove_endpoint(self, name: str) -> None:
        with self._endpoints_lock:
            endpoints = dict(self._endpoints)
            endpoint = endpoints.pop(name, None)
            self._endpoints = endpoints
        if endpoint is None:
            raise KeyError(name)
        endpoint.stop()

    def endpoint_names(self) -> list[str]:
        return list(self._endpoints)

    def _endpoint(self, name: str) -> _Endpoint:
        try:
            return self._endpoints[name]
        except KeyError:
            raise KeyError(f"no endpoint {name!r} (have: {', '.join(self._endpoints) or 'none'})") from None

    def is_ready(self, name: str) -> bool:
        return self._endpoint(name).is_ready()

    def wait_ready(self, name: str | None = None, timeout: float = 30.0) -> None:
        """Block until the endpoint (or every endpoint) passes its health check; TimeoutError otherwise."""
        names = [name] if name is not None else list(self._endpoints)
        deadline = time.monotonic() + timeout
        for each in names:
            endpoint = self._endpoint(each)
            while not endpoint.is_ready():
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"endpoint {each} not ready after {timeout}s; container log tail:\n"
                        f"{self.container_log(each)[-2000:]}"
                    )
                time.sleep(0.02)

    def status(self, name: str) -> dict[str, Any]:
        return self._endpoint(name).status()

    def container_log(self, name: str) -> str:
        path = self._endpoint(name).log_path
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def kill_container(self, name: str) -> None:
        """Kill the endpoint's container process (a crashed instance); it is restarted, not ready meanwhile."""
        backend = self._endpoint(name).backend
        if not isinstance(backend, ProcessBackend):
            raise ValueError(f"endpoint {name} has no container process")
        backend.kill()

    # faults --------------------------------------------------------------------------------------
    def inject(
        self,
        name: str,
        kind: str,
        count: int = 1,
        original_status_code: int = 500,
        message: str | None = None,
    ) -> None:
        """The next `count` requests to the endpoint fail with `kind` (queued after earlier injections)."""
        self._endpoint(name).inject(fault_kind(kind), count, original_status_code, message)

    def set_faults(self, name: str, faults: FaultSpec) -> None:
        """Replace the endpoint's fault spec (re-seeds the RNG; windows > 0 start now, running ones stay)."""
        self._endpoint(name).apply_faults(faults)

    def update_faults(self, name: str, **changes: Any) -> FaultSpec:
        endpoint = self._endpoint(name)
        faults = replace(endpoint.faults, **changes)
        endpoint.apply_faults(faults)
        return faults

    def faults(self, name: str) -> FaultSpec:
        return self._endpoint(name).faults

    def not_ready_for(self, name: str, seconds: float) -> None:
        """/ping fails (and the endpoint answers ModelNotReadyException) for `seconds` from now; 0 ends it."""
        self._endpoint(name).not_ready_for(seconds)

    def throttle_for(self, name: str, seconds: float) -> None:
        """Every request is throttled for `seconds` from now; 0 ends the window."""
        self._endpoint(name).throttle_for(seconds)

    # observation ---------------------------------------------------------------------------------
    def stats(self, name: str) -> dict[str, int]:
        """Responses by outcome (ok, model_error, model_timeout, throttled, ...), total, and gauges."""
        return self._endpoint(name).stats()

    def global_stats(self) -> dict[str, int]:
        """Requests rejected before reaching an endpoint."""
        with self._global_lock:
            return dict(self._global)

    def requests(self, name: str) -> list[RecordedRequest]:
        return self._endpoint(name).records()

    def reset(self, name: str | None = None) -> None:
        """Clear counters, recorded requests and pending scripted faults (faults and windows stay)."""
        for each in [name] if name is not None else list(self._endpoints):
            self._endpoint(each).reset()
        if name is None:
            with self._global_lock:
                self._global = dict.fromkeys(self._global, 0)

    def _count_global(self, key: str) -> None:
        with self._global_lock:
            self._global[key] += 1

    # HTTP control API ----------------------------------------------------------------------------
    def _control(self, method: str, raw_path: str, body: bytes) -> tuple[int, Any]:
        from local.sagemaker.control import dispatch  # noqa: PLC0415 - control imports this module

        try:
            return dispatch(self, method, urlsplit(raw_path).path, parse_qs(urlsplit(raw_path).query), body)
        except KeyError as exc:
            return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
        except (SpecError, ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
        except TimeoutError as exc:
            return 503, {"error": str(exc)}
