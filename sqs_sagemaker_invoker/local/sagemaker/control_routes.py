"""The server side of the control API: one `/_emulator/...` request (routes in `control`) carried out on
any `EmulatorControl`, answered as (HTTP status, JSON payload)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqs_sagemaker_invoker.local.sagemaker.control import CONTROL_PREFIX
from sqs_sagemaker_invoker.local.sagemaker.spec import EndpointSpec, FaultSpec, SpecError

if TYPE_CHECKING:
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


def dispatch(
    control: EmulatorControl, method: str, path: str, query: dict[str, list[str]], body: bytes
) -> tuple[int, Any]:
    parts = [unquote(part) for part in path[len(CONTROL_PREFIX) :].strip("/").split("/")]
    data: Any = json.loads(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("the request body must be a JSON object")
    match (method, parts):
        case ("GET", ["health"]):
            return 200, {"status": "ok", "endpoints": control.endpoint_names()}
        case ("GET", ["stats"]):
            per_endpoint = {name: control.stats(name) for name in control.endpoint_names()}
            return 200, {"global": control.global_stats(), "endpoints": per_endpoint}
        case ("POST", ["reset"]):
            control.reset()
            return 200, {}
        case ("GET", ["endpoints"]):
            return 200, {"endpoints": [control.status(name) for name in control.endpoint_names()]}
        case ("POST", ["endpoints"]):
            spec = EndpointSpec.from_dict(data)
            control.add_endpoint(spec)
            return 201, control.status(spec.name)
        case ("GET", ["endpoints", name]):
            return 200, control.status(name)
        case ("DELETE", ["endpoints", name]):
            control.remove_endpoint(name)
            return 200, {}
        case ("GET", ["endpoints", name, "stats"]):
            return 200, control.stats(name)
        case ("GET", ["endpoints", name, "requests"]):
            return 200, {"requests": [request.to_json() for request in control.requests(name)]}
        case ("GET", ["endpoints", name, "faults"]):
            return 200, control.faults(name).to_dict()
        case ("POST" | "PUT", ["endpoints", name, "faults"]):
            if query.get("merge", ["0"])[0] in ("1", "true"):
                return 200, control.update_faults(name, **data).to_dict()
            control.set_faults(name, FaultSpec.from_dict(data))
            return 200, control.faults(name).to_dict()
        case ("POST", ["endpoints", name, "inject"]):
            control.inject(
                name,
                str(data["kind"]),
                count=int(data.get("count", 1)),
                original_status_code=int(data.get("original_status_code", 500)),
                message=data.get("message"),
            )
            return 200, {"scripted_pending": control.stats(name)["scripted_pending"]}
        case ("POST", ["endpoints", name, "not-ready"]):
            control.not_ready_for(name, float(data.get("seconds", 0)))
            return 200, {}
        case ("POST", ["endpoints", name, "throttle"]):
            control.throttle_for(name, float(data.get("seconds", 0)))
            return 200, {}
        case ("POST", ["endpoints", name, "reset"]):
            control.reset(name)
            return 200, {}
        case ("POST", ["endpoints", name, "kill"]):
            control.kill_container(name)
            return 200, {}
        case ("GET", ["endpoints", name, "ready"]):
            timeout = float(query.get("timeout", ["0"])[0])
            try:
                control.wait_ready(name, timeout=timeout)
            except TimeoutError:
                return 503, {"ready": False}
            return 200, {"ready": True}
        case ("GET", ["endpoints", name, "log"]):
            return 200, {"log": control.container_log(name)}
    return 404, {"error": f"no control route {method} {path}"}
