"""The control API from another process: `EmulatorClient` implements `EmulatorControl` over HTTP."""

from __future__ import annotations

import http.client
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from sqs_sagemaker_invoker.local.sagemaker.control import CONTROL_PREFIX, RecordedRequest
from sqs_sagemaker_invoker.local.sagemaker.spec import FaultSpec

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.local.sagemaker.spec import EndpointSpec


class ControlError(RuntimeError):
    """A control call answered with an HTTP error: 404 unknown endpoint, 400 bad input, 503 not ready."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(f"HTTP {status}: {payload}")
        self.status = status
        self.payload = payload


class EmulatorClient:
    """The control API of the emulator at `url` (an `EmulatorControl`), e.g. one started by `EmulatorProcess`."""

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
            conn.request(method, CONTROL_PREFIX + path, body, headers)
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

    def set_capacity(self, name: str, instances: int, provisioning_s: float = 0.0) -> dict[str, Any]:
        payload = {"instances": instances, "provisioning_s": provisioning_s}
        result: dict[str, Any] = self._call("POST", self._ep(name, "capacity"), payload)
        return result

    def capacity(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", self._ep(name, "capacity"))
        return result

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
