"""Echo model container: answers the request body with its content type and custom attributes.

Directives in CustomAttributes (comma or semicolon separated) make the container misbehave on purpose:
`echo-status=503` answers that status with the body as the error text, `echo-sleep-ms=250` sleeps first.
Stateful sessions: SessionId `NEW_SESSION` opens one (New-Session-Id header), a body
`{"requestType": "CLOSE"}` with a session id closes it (Closed-Session-Id header).

Run: python -m sqs_sagemaker_invoker.local.sagemaker.containers.echo --port 0
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqs_sagemaker_invoker.local.sagemaker.containers._server import ContainerResponse, serve
from sqs_sagemaker_invoker.local.sagemaker.wire import (
    CLOSED_SESSION_ID_HEADER,
    CUSTOM_ATTRIBUTES_HEADER,
    NEW_SESSION_ID_HEADER,
    SESSION_ID_HEADER,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqs_sagemaker_invoker.local.sagemaker._http import Headers

DEFAULT_CONTENT_TYPE = "application/octet-stream"
SESSION_TTL = dt.timedelta(hours=1)


@dataclass
class EchoPlan:
    sleep_s: float
    response: ContainerResponse


def directives(custom_attributes: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in (custom_attributes or "").replace(";", ",").split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key.startswith("echo-"):
            found[key] = value.strip()
    return found


def plan(
    *, content_type: str | None, custom_attributes: str | None, session_id: str | None, body: bytes
) -> EchoPlan:
    """What the echo model answers (shared by the container process and the emulator's inline backend)."""
    wanted = directives(custom_attributes)
    sleep_s = float(wanted.get("echo-sleep-ms", 0) or 0) / 1000.0
    headers: list[tuple[str, str]] = []
    if custom_attributes is not None:
        headers.append((CUSTOM_ATTRIBUTES_HEADER, custom_attributes))
    status = int(wanted.get("echo-status", 200) or 200)
    if status != 200:
        text = body.decode("utf-8", "replace") or f"echo-status={status}"
        return EchoPlan(sleep_s, ContainerResponse(status, text.encode(), "text/plain", headers))
    if session_id == "NEW_SESSION":
        expires = (dt.datetime.now(dt.UTC) + SESSION_TTL).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers.append((NEW_SESSION_ID_HEADER, f"{uuid.uuid4()}; Expires={expires}"))
    elif session_id and _is_close_request(body):
        headers.append((CLOSED_SESSION_ID_HEADER, session_id))
    return EchoPlan(sleep_s, ContainerResponse(200, body, content_type or DEFAULT_CONTENT_TYPE, headers))


def _is_close_request(body: bytes) -> bool:
    if not body.lstrip().startswith(b"{") or len(body) > 4096:
        return False
    try:
        request = json.loads(body)
    except ValueError:
        return False
    return isinstance(request, dict) and request.get("requestType") == "CLOSE"


class EchoModel:
    def load(self) -> None:
        return

    def invoke(self, headers: Headers, body: bytes) -> ContainerResponse:
        decided = plan(
            content_type=headers.get("Content-Type"),
            custom_attributes=headers.get(CUSTOM_ATTRIBUTES_HEADER),
            session_id=headers.get(SESSION_ID_HEADER),
            body=body,
        )
        if decided.sleep_s:
            time.sleep(decided.sleep_s)
        return decided.response


def main(argv: Sequence[str] | None = None) -> None:
    serve(lambda args: EchoModel(), argv, name="echo")


if __name__ == "__main__":
    main()
