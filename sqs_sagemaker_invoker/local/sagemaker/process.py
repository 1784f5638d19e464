"""`EmulatorProcess`: the emulator in a child process (`python -m sqs_sagemaker_invoker.local.sagemaker`), controlled over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqs_sagemaker_invoker.local.sagemaker.control_client import EmulatorClient

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqs_sagemaker_invoker.local.sagemaker.spec import EndpointSpec


class EmulatorProcess(EmulatorClient):
    """Runs the emulator as a child process (`python -m sqs_sagemaker_invoker.local.sagemaker`), e.g. so that a benchmark's client
    and the emulator do not share one interpreter lock. Controlled over HTTP; stopped on exit and, through
    its stdin, when this process dies."""

    def __init__(  # noqa: PLR0913 - the endpoints, then keyword-only options that all have defaults
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
        root = Path(__file__).resolve().parents[3]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
        command = [
            sys.executable,
            "-m",
            "sqs_sagemaker_invoker.local.sagemaker",
            "--config",
            str(config_path),
        ]
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
