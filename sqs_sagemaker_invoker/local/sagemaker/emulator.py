"""The SageMaker Runtime emulator in this process: `SageMakerEmulator` starts the HTTP server (`server`), owns
the endpoints (`endpoint`) and is an `EmulatorControl` for tests and the local stack."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqs_sagemaker_invoker.local.sagemaker.endpoint import Endpoint
from sqs_sagemaker_invoker.local.sagemaker.server import EmulatorServer, Rejections
from sqs_sagemaker_invoker.local.sagemaker.sigv4 import SigV4Verifier
from sqs_sagemaker_invoker.local.sagemaker.spec import (
    DEFAULT_ACCOUNT_ID,
    EndpointSpec,
    FaultSpec,
    SpecError,
    fault_kind,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sqs_sagemaker_invoker.local.sagemaker.control import RecordedRequest

log = logging.getLogger(__name__)


class SageMakerEmulator:
    """An InvokeEndpoint server on 127.0.0.1 whose endpoints are backed by model containers (or inline).

    Use as a context manager; `stop()` stops the server, drops open connections and stops every container.
    The control methods (faults, counters, records) are those of `EmulatorControl`, documented there.
    """

    def __init__(  # noqa: PLR0913 - the endpoints, then keyword-only options that all have defaults
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
        self._endpoints: dict[str, Endpoint] = {}
        self._endpoints_lock = threading.Lock()
        self._rejections = Rejections()
        self._log_dir_setting = Path(log_dir) if log_dir is not None else None
        # Container logs (one file per endpoint, like its CloudWatch log group); a temporary directory
        # removed on stop unless log_dir is given.
        self.log_dir = self._log_dir_setting or Path(tempfile.gettempdir())
        self._created_log_dir: Path | None = None
        self._server: EmulatorServer | None = None
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
        server = EmulatorServer(
            (self.host, self._requested_port),
            verifier=self._verifier,
            account_id=self.account_id,
            find_endpoint=self._find_endpoint,
            control=self,
            rejections=self._rejections,
        )
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
        endpoint = Endpoint(spec, self.account_id, self.log_dir)
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

    def _find_endpoint(self, name: str) -> Endpoint | None:
        # The request path: the dict is replaced on every change, so reading it needs no lock.
        return self._endpoints.get(name)

    def _endpoint(self, name: str) -> Endpoint:
        try:
            return self._endpoints[name]
        except KeyError:
            raise KeyError(f"no endpoint {name!r} (have: {', '.join(self._endpoints) or 'none'})") from None

    def is_ready(self, name: str) -> bool:
        return self._endpoint(name).is_ready()

    def wait_ready(self, name: str | None = None, timeout: float = 30.0) -> None:
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
        self._endpoint(name).kill_container()

    # faults --------------------------------------------------------------------------------------
    def inject(
        self,
        name: str,
        kind: str,
        count: int = 1,
        original_status_code: int = 500,
        message: str | None = None,
    ) -> None:
        self._endpoint(name).inject(fault_kind(kind), count, original_status_code, message)

    def set_faults(self, name: str, faults: FaultSpec) -> None:
        self._endpoint(name).apply_faults(faults)

    def update_faults(self, name: str, **changes: Any) -> FaultSpec:
        endpoint = self._endpoint(name)
        faults = replace(endpoint.faults, **changes)
        endpoint.apply_faults(faults)
        return faults

    def faults(self, name: str) -> FaultSpec:
        return self._endpoint(name).faults

    def not_ready_for(self, name: str, seconds: float) -> None:
        self._endpoint(name).not_ready_for(seconds)

    def throttle_for(self, name: str, seconds: float) -> None:
        self._endpoint(name).throttle_for(seconds)

    # capacity ------------------------------------------------------------------------------------
    def set_capacity(self, name: str, instances: int, provisioning_s: float = 0.0) -> dict[str, Any]:
        return self._endpoint(name).set_capacity(instances, provisioning_s)

    def capacity(self, name: str) -> dict[str, Any]:
        return self._endpoint(name).capacity_status()

    # observation ---------------------------------------------------------------------------------
    def stats(self, name: str) -> dict[str, int]:
        return self._endpoint(name).stats()

    def global_stats(self) -> dict[str, int]:
        return self._rejections.snapshot()

    def requests(self, name: str) -> list[RecordedRequest]:
        return self._endpoint(name).records()

    def reset(self, name: str | None = None) -> None:
        for each in [name] if name is not None else list(self._endpoints):
            self._endpoint(each).reset()
        if name is None:
            self._rejections.reset()
