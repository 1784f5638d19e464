"""The server side of the control API: one `/_emulator/...` request (routes in `control`) carried out on
any `EmulatorControl`, answered as (HTTP status, JSON payload)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqs_sagemaker_invoker.local.sagemaker.control import CONTROL_PREFIX
from sqs_sagemaker_invoker.local.sagemaker.spec import EndpointSpec, FaultSpec, SpecError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqs_sagemaker_invoker.local.sagemaker.control import EmulatorControl


def handle(control: EmulatorControl, method: str, raw_path: str, body: bytes) -> tuple[int, Any]:
    """Errors become the status a client can act on: 404 unknown endpoint, 400 bad input, 503 not ready."""
    split = urlsplit(raw_path)
    try:
        return dispatch(control, method, split.path, parse_qs(split.query), body)
    except KeyError as exc:
        return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
    except (SpecError, ValueError, TypeError) as exc:
        return 400, {"error": str(exc)}
    except TimeoutError as exc:
        return 503, {"error": str(exc)}


type Reply = tuple[int, Any]
type Query = dict[str, list[str]]
type Data = dict[str, Any]


def dispatch(control: EmulatorControl, method: str, path: str, query: Query, body: bytes) -> Reply:
    parts = [unquote(part) for part in path[len(CONTROL_PREFIX) :].strip("/").split("/")]
    data: Any = json.loads(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("the request body must be a JSON object")
    if len(parts) == 1 and (emulator_route := _EMULATOR_ROUTES.get((method, parts[0]))):
        return emulator_route(control, data)
    if len(parts) in (2, 3) and parts[0] == "endpoints":
        action = parts[2] if len(parts) == 3 else ""
        if endpoint_route := _ENDPOINT_ROUTES.get((method, action)):
            return endpoint_route(control, parts[1], query, data)
    return 404, {"error": f"no control route {method} {path}"}


# -- /_emulator/<what>: the emulator as a whole ------------------------------------------------------


def _health(control: EmulatorControl, data: Data) -> Reply:
    return 200, {"status": "ok", "endpoints": control.endpoint_names()}


def _all_stats(control: EmulatorControl, data: Data) -> Reply:
    per_endpoint = {name: control.stats(name) for name in control.endpoint_names()}
    return 200, {"global": control.global_stats(), "endpoints": per_endpoint}


def _reset_all(control: EmulatorControl, data: Data) -> Reply:
    control.reset()
    return 200, {}


def _list_endpoints(control: EmulatorControl, data: Data) -> Reply:
    return 200, {"endpoints": [control.status(name) for name in control.endpoint_names()]}


def _add_endpoint(control: EmulatorControl, data: Data) -> Reply:
    spec = EndpointSpec.from_dict(data)
    control.add_endpoint(spec)
    return 201, control.status(spec.name)


_EMULATOR_ROUTES: dict[tuple[str, str], Callable[[EmulatorControl, Data], Reply]] = {
    ("GET", "health"): _health,
    ("GET", "stats"): _all_stats,
    ("POST", "reset"): _reset_all,
    ("GET", "endpoints"): _list_endpoints,
    ("POST", "endpoints"): _add_endpoint,
}

# -- /_emulator/endpoints/<name>[/<action>]: one endpoint --------------------------------------------


def _status(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    return 200, control.status(name)


def _remove(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    control.remove_endpoint(name)
    return 200, {}


def _stats(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    return 200, control.stats(name)


def _requests(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    return 200, {"requests": [request.to_json() for request in control.requests(name)]}


def _faults(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    return 200, control.faults(name).to_dict()


def _set_faults(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    if query.get("merge", ["0"])[0] in ("1", "true"):
        return 200, control.update_faults(name, **data).to_dict()
    control.set_faults(name, FaultSpec.from_dict(data))
    return 200, control.faults(name).to_dict()


def _inject(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    control.inject(
        name,
        str(data["kind"]),
        count=int(data.get("count", 1)),
        original_status_code=int(data.get("original_status_code", 500)),
        message=data.get("message"),
    )
    return 200, {"scripted_pending": control.stats(name)["scripted_pending"]}


def _not_ready(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    control.not_ready_for(name, float(data.get("seconds", 0)))
    return 200, {}


def _throttle(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    control.throttle_for(name, float(data.get("seconds", 0)))
    return 200, {}


def _capacity(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    return 200, control.capacity(name)


def _set_capacity(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    if "instances" not in data:
        raise ValueError('set capacity needs {"instances": N}')
    return 200, control.set_capacity(name, int(data["instances"]), float(data.get("provisioning_s", 0)))


def _reset(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    control.reset(name)
    return 200, {}


def _kill(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    control.kill_container(name)
    return 200, {}


def _ready(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    timeout = float(query.get("timeout", ["0"])[0])
    try:
        control.wait_ready(name, timeout=timeout)
    except TimeoutError:
        return 503, {"ready": False}
    return 200, {"ready": True}


def _log(control: EmulatorControl, name: str, query: Query, data: Data) -> Reply:
    return 200, {"log": control.container_log(name)}


_ENDPOINT_ROUTES: dict[tuple[str, str], Callable[[EmulatorControl, str, Query, Data], Reply]] = {
    ("GET", ""): _status,
    ("DELETE", ""): _remove,
    ("GET", "stats"): _stats,
    ("GET", "requests"): _requests,
    ("GET", "faults"): _faults,
    ("POST", "faults"): _set_faults,
    ("PUT", "faults"): _set_faults,
    ("POST", "inject"): _inject,
    ("POST", "not-ready"): _not_ready,
    ("POST", "throttle"): _throttle,
    ("GET", "capacity"): _capacity,
    ("POST", "capacity"): _set_capacity,
    ("POST", "reset"): _reset,
    ("POST", "kill"): _kill,
    ("GET", "ready"): _ready,
    ("GET", "log"): _log,
}
