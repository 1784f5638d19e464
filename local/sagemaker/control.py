"""The emulator's HTTP control API (`/_emulator/...`): server-side dispatch, a client, and a child-process runner.

Routes (JSON in and out; endpoint names URL-encoded):
  GET  /_emulator/health                         {"status": "ok", "endpoints": [...]}
  GET  /_emulator/stats                          global rejections and per-endpoint counters
  POST /_emulator/reset                          clear every counter, record and scripted fault
  GET  /_emulator/endpoints                      status of every endpoint
  POST /_emulator/endpoints                      add an endpoint (EndpointSpec fields)
  GET|DELETE /_emulator/endpoints/{name}         status / remove
  GET  /_emulator/endpoints/{name}/stats         counters by outcome
  GET  /_emulator/endpoints/{name}/requests      recorded requests (body base64)
  GET  /_emulator/endpoints/{name}/faults        current FaultSpec
  POST /_emulator/endpoints/{name}/faults        replace the FaultSpec (?merge=1: change only given fields)
  POST /_emulator/endpoints/{name}/inject        {"kind", "count", "original_status_code", "message"}
  POST /_emulator/endpoints/{name}/not-ready     {"seconds"}: /ping fails, ModelNotReadyException
  POST /_emulator/endpoints/{name}/throttle      {"seconds"}: ThrottlingException for every request
  POST /_emulator/endpoints/{name}/reset         clear its counters, records and scripted faults
  POST /_emulator/endpoints/{name}/kill          kill its container process (restarted by the emulator)
  GET  /_emulator/endpoints/{name}/ready?timeout=S   200 once ready, 503 if not ready within S seconds
  GET  /_emulator/endpoints/{name}/log           the container's log
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from local.sagemaker.emulator import RecordedRequest
from local.sagemaker.spec import EndpointSpec, FaultSpec

if TYPE_CHECKING:
    from collections.abc import Iterable

    from local.sagemaker.emulator import SageMakerEmulator

PREFIX = "/_emulator/"


def dispatch(
    emulator: SageMakerEmulator, method: str, path: str, query: dict[str, list[str]], body: bytes
) -> tuple[int, Any]:
    parts = [unquote(part) for part in path[len(PREFIX) :].strip("/").split("/")]
    data: Any = json.loads(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("the request body must be a JSON object")
    match (method, parts):
        case ("GET", ["health"]):
            return 200, {"status": "ok", "endpoints": emulator.endpoint_names()}
        case ("GET", ["stats"]):
            per_endpoint = {name: emulator.stats(name) for name in emulator.endpoint_names()}
            return 200, {"global": emulator.global_stats(), "endpoints": per_endpoint}
        case ("POST", ["reset"]):
            emulator.reset()
            return 200, {}
        case ("GET", ["endpoints"]):
            return 200, {"endpoints": [emulator.status(name) for name in emulator.endpoint_names()]}
        case ("POST", ["endpoints"]):
            spec = EndpointSpec.from_dict(data)
            emulator.add_endpoint(spec)
            return 201, emulator.status(spec.name)
        case ("GET", ["endpoints", name]):
            return 200, emulator.status(name)
        case ("DELETE", ["endpoints", name]):
            emulator.remove_endpoint(name)
            return 200, {}
        case ("GET", ["endpoints", name, "stats"]):
            return 200, emulator.stats(name)
        case ("GET", ["endpoints", name, "requests"]):
            return 200, {"requests": [request.to_json() for request in emulator.requests(name)]}
        case ("GET", ["endpoints", name, "faults"]):
            return 200, emulator.faults(name).to_dict()
        case ("POST" | "PUT", ["endpoints", name, "faults"]):
            if query.get("merge", ["0"])[0] in ("1", "true"):
                return 200, emulator.update_faults(name, **data).to_dict()
            emulator.set_faults(name, FaultSpec.from_dict(data))
            return 200, emulator.faults(name).to_dict()
        case ("POST", ["endpoints", name, "inject"]):
            emulator.inject(
                name,
                str(data["kind"]),
                count=int(data.get("count", 1)),
                original_status_code=int(data.get("original_status_code", 500)),
                message=data.get("message"),
            )
            return 200, {"scripted_pending": emulator.stats(name)["scripted_pending"]}
        case ("POST", ["endpoints", name, "not-ready"]):
            emulator.not_ready_for(name, float(data.get("seconds", 0)))
            return 200, {}
        case ("POST", ["endpoints", name, "throttle"]):
            emulator.throttle_for(name, float(data.get("seconds", 0)))
            return 200, {}
        case ("POST", ["endpoints", name, "reset"]):
            emulator.reset(name)
            return 200, {}
        case ("POST", ["endpoints", name, "kill"]):
            emulator.kill_container(name)
            return 200, {}
        case ("GET", ["endpoints", name, "ready"]):
            timeout = float(query.get("timeout", ["0"])[0])
            try:
                emulator.wait_ready(name, timeout=timeout)
            except TimeoutError:
                return 503, {"ready": False}
            return 200, {"ready": True}
        case ("GET", ["endpoints", name, "log"]):
            return 200, {"log": emulator.container_log(name)}
    return 404, {"error": f"no control route {method} {path}"}


class ControlError(RuntimeError):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(f"HTTP {status}: {payload}")
        self.status = status
        self.payload = payload


class EmulatorClient:
    """The control API from another process (the same methods as SageMakerEmulator where it makes sense)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, payload: Any = None, timeout: float | None = None) -> Any:
        split = urlsplit(self.url)
        # http.client, not urllib: a proxy from the environment must never see loopback control calls.
        conn = http.client.HTTPConnection(
            split.hostname or "127.0.0.1", split.port, timeout=timeout or self.timeout
        )
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, PREFIX + path, body, headers)
            response = conn.getresponse()
            data = json.loads(response.read() or b"null")
        finally:
            conn.close()
        if response.status >= 400:
            raise ControlError(response.status, data)
        return data

    @staticmethod
    def _ep(name: str, suffix: str = "") -> str:
        return f"endpoints/{quote(name, safe='')}" + (f"/{suffix}" if suffix else "")

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def endpoint_names(self) -> list[str]:
        return list(self.health()["endpoints"])

    def status(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", self._ep(name))
        return result

    def add_endpoint(self, spec: EndpointSpec) -> None:
        self._call("POST", "endpoints", spec.to_dict())

    def remove_endpoint(self, name: str) -> None:
        self._call("DELETE", self._ep(name))

    def wait_ready(self, name: str | None = None, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for each in [name] if name is not None else self.endpoint_names():
            remaining = max(0.0, deadline - time.monotonic())
            try:
                self._call("GET", self._ep(each, f"ready?timeout={remaining}"), timeout=remaining + 10)
            except ControlError as exc:
                if exc.status == 503:
                    raise TimeoutError(f"endpoint {each} not ready after {timeout}s") from exc
                raise

    def inject(
        self,
        name: str,
        kind: str,
        count: int = 1,
        original_status_code: int = 500,
        message: str | None = None,
    ) -> None:
        payload = {
            "kind": kind,
            "count": count,
            "original_status_code": original_status_code,
            "message": message,
        }
        self._call("POST", self._ep(name, "inject"), payload)

    def set_faults(self, name: str, faults: FaultSpec) -> None:
        self._call("POST", self._ep(name, "faults"), faults.to_dict())

    def update_faults(self, name: str, **changes: Any) -> FaultSpec:
        return FaultSpec.from_dict(self._call("POST", self._ep(name, "faults?merge=1"), changes))

    def faults(self, name: str) -> FaultSpec:
        return FaultSpec.from_dict(self._call("GET", self._ep(name, "faults")))

    def not_ready_for(self, name: str, seconds: float) -> None:
        self._call("POST", self._ep(name, "not-ready"), {"seconds": seconds})

    def throttle_for(self, name: str, seconds: float) -> None:
        self._call("POST", self._ep(name, "throttle"), {"seconds": seconds})

    def stats(self, name: str) -> dict[str, int]:
        return {key: int(value) for key, value in self._call("GET", self._ep(name, "stats")).items()}

    def global_stats(self) -> dict[str, int]:
        return {key: int(value) for key, value in self._call("GET", "stats")["global"].items()}

    def requests(self, name: str) -> list[RecordedRequest]:
        return [
            RecordedRequest.from_json(item)
            for item in self._call("GET", self._ep(name, "requests"))["requests"]
        ]

    def reset(self, name: str | None = None) -> None:
        self._call("POST", self._ep(name, "reset") if name is not None else "reset")

    def kill_container(self, name: str) -> None:
        self._call("POST", self._ep(name, "kill"))

    def container_log(self, name: str) -> str:
        return str(self._call("GET", self._ep(name, "log"))["log"])


class EmulatorProcess(EmulatorClient):
    """Runs the emulator as a child process (`python -m local.sagemaker`), e.g. so that a benchmark's client
    and the emulator do not share one interpreter lock. Controlled over HTTP; stopped on exit and, through
    its stdin, when this process dies."""

    def __init__(
        self,
        endpoints: Iterable[EndpointSpec] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_key: str = "testing",
        secret_key: str = "testing",  # noqa: S107 - the local stack's documented dummy credentials
        log_level: str = "WARNING",
        start_timeout: float = 30.0,
    ) -> None:
        super().__init__("http://unstarted")
        self._config = {
            "host": host,
            "port": port,
            "access_key": access_key,
            "secret_key": secret_key,
            "endpoints": [spec.to_dict() for spec in endpoints],
        }
        self._log_level = log_level
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._config_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> EmulatorProcess:
        self._config_dir = tempfile.TemporaryDirectory(prefix="sm-emulator-config-")
        config_path = Path(self._config_dir.name) / "emulator.json"
        config_path.write_text(json.dumps(self._config))
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
        command = [sys.executable, "-m", "local.sagemaker", "--config", str(config_path)]
        command += ["--exit-on-stdin-eof", "--log-level", self._log_level]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=root
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._proc.stdout], [], [], 0.1)
            if ready:
                line = self._proc.stdout.readline().decode().strip()
                if line.startswith("http://"):
                    self.url = line
                    return self
            if self._proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the emulator process did not print its URL")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._config_dir is not None:
            self._config_dir.cleanup()
            self._config_dir = None
