"""The emulator's control interface: one `EmulatorControl` protocol that the in-process emulator
(`emulator.SageMakerEmulator`) and the HTTP client (`control_client.EmulatorClient`) both implement, so code
that drives faults and reads counters runs against either.

Over HTTP the same operations are these routes (JSON in and out; endpoint names URL-encoded), served by
`control_routes`:
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
  GET  /_emulator/endpoints/{name}/capacity      instances (copies) serving and desired, as Describe* shows them
  POST /_emulator/endpoints/{name}/capacity      {"instances", "provisioning_s"}: scale in now, out after the delay
  POST /_emulator/endpoints/{name}/reset         clear its counters, records and scripted faults
  POST /_emulator/endpoints/{name}/kill          kill its container process (restarted by the emulator)
  GET  /_emulator/endpoints/{name}/ready?timeout=S   200 once ready, 503 if not ready within S seconds
  GET  /_emulator/endpoints/{name}/log           the container's log
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.local.sagemaker.spec import EndpointSpec, FaultSpec

CONTROL_PREFIX: Final = "/_emulator/"


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


@runtime_checkable
class EmulatorControl(Protocol):
    """Drive a running emulator's endpoints and read what they saw. An unknown endpoint name raises KeyError
    in process and `ControlError` (status 404) over HTTP; a bad argument ValueError / `ControlError` 400."""

    @property
    def url(self) -> str:
        """Where InvokeEndpoint is served (http://host:port)."""
        ...

    # endpoints
    def endpoint_names(self) -> list[str]: ...
    def status(self, name: str) -> dict[str, Any]: ...
    def add_endpoint(self, spec: EndpointSpec) -> None: ...
    def remove_endpoint(self, name: str) -> None: ...
    def wait_ready(self, name: str | None = None, timeout: float = 30.0) -> None:
        """Block until the endpoint (or every endpoint) passes its health check; TimeoutError otherwise."""
        ...

    def container_log(self, name: str) -> str: ...
    def kill_container(self, name: str) -> None:
        """Kill the endpoint's container process (a crashed instance); it is restarted, not ready meanwhile."""
        ...

    # faults
    def inject(
        self,
        name: str,
        kind: str,
        count: int = 1,
        original_status_code: int = 500,
        message: str | None = None,
    ) -> None:
        """The next `count` requests to the endpoint fail with `kind` (queued after earlier injections)."""
        ...

    def set_faults(self, name: str, faults: FaultSpec) -> None:
        """Replace the endpoint's fault spec (re-seeds the RNG; windows > 0 start now, running ones stay)."""
        ...

    def update_faults(self, name: str, **changes: Any) -> FaultSpec: ...
    def faults(self, name: str) -> FaultSpec: ...
    def not_ready_for(self, name: str, seconds: float) -> None:
        """/ping fails (and the endpoint answers ModelNotReadyException) for `seconds` from now; 0 ends it."""
        ...

    def throttle_for(self, name: str, seconds: float) -> None:
        """Every request is throttled for `seconds` from now; 0 ends the window."""
        ...

    # capacity
    def set_capacity(self, name: str, instances: int, provisioning_s: float = 0.0) -> dict[str, Any]:
        """Scale the endpoint to `instances` instances (or copies): fewer at once, more after `provisioning_s`
        (added ones are not ready meanwhile); 0 makes InvokeEndpoint answer the no-capacity ValidationError.
        Returns what `capacity` returns."""
        ...

    def capacity(self, name: str) -> dict[str, Any]:
        """{"unit": "instances"|"copies", "current", "desired", "concurrency_per_instance", "describe"}, where
        "describe" is DescribeEndpoint's `ProductionVariants[{VariantName, CurrentInstanceCount,
        DesiredInstanceCount}]` or DescribeInferenceComponent's `RuntimeConfig{CurrentCopyCount,
        DesiredCopyCount}`."""
        ...

    # observation
    def stats(self, name: str) -> dict[str, int]:
        """Responses by outcome (ok, model_error, model_timeout, throttled, ...), total, and gauges."""
        ...

    def global_stats(self) -> dict[str, int]:
        """Requests rejected before reaching an endpoint."""
        ...

    def requests(self, name: str) -> list[RecordedRequest]: ...
    def reset(self, name: str | None = None) -> None:
        """Clear counters, recorded requests and pending scripted faults (faults and windows stay)."""
        ...
