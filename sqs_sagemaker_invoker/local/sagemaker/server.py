"""The emulator's HTTP server: InvokeEndpoint requests read, authenticated (SigV4) and validated as
SageMaker Runtime does before an endpoint sees them, the control plane's Describe* calls (`POST /` with an
X-Amz-Target, answered by `control_plane`), and `/_emulator/...` calls handed to `control_routes`."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from typing import TYPE_CHECKING, Final, Literal, get_args
from urllib.parse import unquote

from sqs_sagemaker_invoker.local.sagemaker import control_plane
from sqs_sagemaker_invoker.local.sagemaker._http import BodyTooLarge, FastHandler, KeepAliveServer
from sqs_sagemaker_invoker.local.sagemaker.control import CONTROL_PREFIX, RecordedRequest
from sqs_sagemaker_invoker.local.sagemaker.control_routes import handle
from sqs_sagemaker_invoker.local.sagemaker.spec import MAX_PAYLOAD_BYTES
from sqs_sagemaker_invoker.local.sagemaker.wire import (
    REQUEST_HEADER_MEMBERS,
    WireResponse,
    endpoint_not_found,
    error_response,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqs_sagemaker_invoker.local.sagemaker.control import EmulatorControl
    from sqs_sagemaker_invoker.local.sagemaker.endpoint import Endpoint
    from sqs_sagemaker_invoker.local.sagemaker.sigv4 import AuthResult, SigV4Verifier

_MEMBER_HEADERS_LOWER: Final = [
    (member, header, header.lower(), limit) for member, (header, limit) in REQUEST_HEADER_MEMBERS.items()
]


type RejectionReason = Literal["auth_rejected", "unknown_endpoint", "payload_too_large"]
_REJECTION_REASONS: Final[tuple[RejectionReason, ...]] = get_args(RejectionReason.__value__)


class Rejections:
    """Requests turned away before they reach an endpoint, by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(_REJECTION_REASONS, 0)

    def count(self, reason: RejectionReason) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(_REJECTION_REASONS, 0)


class EmulatorServer(KeepAliveServer):
    """Serves one emulator on `address`: `find_endpoint` looks a name up in its current endpoints, `control`
    carries out control API calls (the emulator itself, an `EmulatorControl`)."""

    def __init__(  # noqa: PLR0913 - the address, then the parts it serves with, by keyword
        self,
        address: tuple[str, int],
        *,
        verifier: SigV4Verifier,
        account_id: str,
        find_endpoint: Callable[[str], Endpoint | None],
        control: EmulatorControl,
        rejections: Rejections,
    ) -> None:
        self.verifier = verifier
        self.account_id = account_id
        self.find_endpoint = find_endpoint
        self.control = control
        self.rejections = rejections
        super().__init__(address, InvokeHandler)


class InvokeHandler(FastHandler):
    """One connection: InvokeEndpoint requests checked as SageMaker checks them, and control API calls."""

    server: EmulatorServer

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(CONTROL_PREFIX):
            self._control("POST")
            return
        target = self.headers.get("X-Amz-Target")
        if path == "/" and target is not None and target.startswith(control_plane.TARGET_PREFIX):
            self._control_plane(target)
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

    def _signed_body(
        self, as_error: Callable[[WireResponse], WireResponse] = lambda response: response
    ) -> tuple[bytes, AuthResult] | None:
        """The request's body and its checked signature, or None once the refusal is sent (too large, or
        not signed right; `as_error` shapes it for the API's protocol)."""
        server = self.server
        try:
            body = self.read_body()
        except BodyTooLarge as exc:
            server.rejections.count("payload_too_large")
            self._send(as_error(_payload_too_large(int(exc.args[0]))))
            return None
        auth = server.verifier.verify("POST", self.path, self.headers, body)
        if auth.error is not None:
            server.rejections.count("auth_rejected")
            self._send(as_error(auth.error))
            return None
        return body, auth

    def _invoke_endpoint(self, name: str) -> None:
        server = self.server
        signed = self._signed_body()
        if signed is None:
            return
        body, auth = signed
        endpoint = server.find_endpoint(name)
        if endpoint is None:
            server.rejections.count("unknown_endpoint")
            self._send(endpoint_not_found(name, server.account_id))
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
            problem = f"Variant {variant} does not exist for endpoint {name} of account {server.account_id}."

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

    def _control_plane(self, target: str) -> None:
        """DescribeEndpoint / DescribeInferenceComponent, signed like every SageMaker call."""
        server = self.server
        signed = self._signed_body(control_plane.as_json_11)
        if signed is None:
            return
        body, auth = signed
        self._send(
            control_plane.answer(
                target,
                body,
                find_endpoint=server.find_endpoint,
                region=auth.region,
                account=server.account_id,
            )
        )

    def _control(self, method: str) -> None:
        try:
            body = self.read_body()
        except BodyTooLarge:
            self.send_whole(413, [("Content-Type", "application/json")], b'{"error":"body too large"}')
            return
        status, payload = handle(self.server.control, method, self.path, body)
        data = json.dumps(payload).encode()
        self.send_whole(status, [("Content-Type", "application/json")], data)


def _payload_message(size: int) -> str:
    return f"Request payload size of {size} bytes exceeds the maximum of {MAX_PAYLOAD_BYTES} bytes."


def _payload_too_large(size: int) -> WireResponse:
    return error_response("ValidationError", _payload_message(size))
