"""The SageMaker hosting contract for the example containers: GET /ping, POST /invocations on one port.

A container prints `LISTENING <host> <port>` on stdout once bound (so `--port 0` is race-free), serves
/ping with 503 until its model is loaded and its start-up delay has passed, and exits when its parent
goes away (stdin closes) or on SIGTERM. `POST /_container/not-ready {"seconds": N}` makes /ping fail for N
seconds: the emulator's not-ready window (not part of the SageMaker contract).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqs_sagemaker_invoker.local.sagemaker._http import BodyTooLarge, FastHandler, KeepAliveServer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqs_sagemaker_invoker.local.sagemaker._http import Headers

log = logging.getLogger("container")


@dataclass
class ContainerResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


class Model(Protocol):
    def load(self) -> None: ...

    def invoke(self, headers: Headers, body: bytes) -> ContainerResponse: ...


def json_error(status: int, message: str) -> ContainerResponse:
    return ContainerResponse(status, json.dumps({"error": message}).encode())


class _State:
    def __init__(self, model: Model, startup_delay_s: float) -> None:
        self.model = model
        self.loaded = threading.Event()
        self.ready_at = time.monotonic() + startup_delay_s
        self.unready_until = 0.0

    def healthy(self) -> bool:
        now = time.monotonic()
        return self.loaded.is_set() and now >= self.ready_at and now >= self.unready_until


def _handler_for(state: _State) -> type[FastHandler]:
    class Handler(FastHandler):
        def do_GET(self) -> None:
            if self.path == "/ping":
                ok = state.healthy()
                self.send_whole(
                    200 if ok else 503, [("Content-Type", "text/plain")], b"" if ok else b"loading"
                )
            else:
                self.send_whole(404, [("Content-Type", "text/plain")], b"not found")

        def do_POST(self) -> None:
            try:
                body = self.read_body()
            except BodyTooLarge:
                self.send_whole(413, [("Content-Type", "text/plain")], b"payload too large")
                return
            if self.path == "/invocations":
                self._invoke(body)
            elif self.path == "/_container/not-ready":
                seconds = float(json.loads(body or b"{}").get("seconds", 0))
                state.unready_until = time.monotonic() + seconds
                self.send_whole(200, [("Content-Type", "application/json")], b"{}")
            else:
                self.send_whole(404, [("Content-Type", "text/plain")], b"not found")

        def _invoke(self, body: bytes) -> None:
            if not state.loaded.is_set():
                response = json_error(503, "model is still loading")
            else:
                try:
                    response = state.model.invoke(self.headers, body)
                except Exception as exc:
                    log.exception("invocation failed")
                    response = json_error(500, f"{type(exc).__name__}: {exc}")
            headers = [("Content-Type", response.content_type), *response.headers]
            self.send_whole(response.status, headers, response.body)

    return Handler


def _exit_on_stdin_eof(server: KeepAliveServer) -> None:
    # The emulator keeps our stdin open; EOF means it is gone (even after a SIGKILL), so stop too.
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    log.info("stdin closed: parent gone, stopping")
    server.shutdown()


def serve(
    model_factory: Callable[[argparse.Namespace], Model],
    argv: Sequence[str] | None = None,
    *,
    name: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m sqs_sagemaker_invoker.local.sagemaker.containers.{name}"
    )
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--startup-delay", type=float, default=0.0, help="seconds /ping fails after start")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")

    model = model_factory(args)
    state = _State(model, args.startup_delay)
    server = KeepAliveServer((args.host, args.port), _handler_for(state))
    print(f"LISTENING {args.host} {server.port}", flush=True)
    log.info("listening on %s:%d (startup delay %.2fs)", args.host, server.port, args.startup_delay)

    def load() -> None:
        started = time.monotonic()
        try:
            model.load()
        except Exception:
            log.exception("model failed to load; /ping stays unhealthy")
            return
        state.loaded.set()
        log.info("model loaded in %.2fs", time.monotonic() - started)

    threading.Thread(target=load, name="load", daemon=True).start()
    if args.exit_on_stdin_eof:
        threading.Thread(target=_exit_on_stdin_eof, args=(server,), name="stdin", daemon=True).start()

    def on_term(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.close_connections()
        server.server_close()
        log.info("stopped")
