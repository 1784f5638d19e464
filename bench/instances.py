"""The driver's handle on one Lambda instance: a `python -m bench.probes.lambda_instance` child, spoken
to in JSON lines (bench.protocol)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pathlib import Path

    from bench.messages import MessageSpec
    from bench.protocol import (
        BareAnswer,
        BatchAnswer,
        DrainAnswer,
        Ready,
        Request,
        RssAnswer,
    )


class BenchError(RuntimeError):
    pass


class LambdaInstance:
    """One warm Lambda execution environment in a child process."""

    def __init__(
        self,
        kind: str,
        env: dict[str, str],
        cpus: frozenset[int],
        log_dir: Path,
        name: str,
        *,
        cwd: Path,
        wrapper: list[str] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self._stderr_path = log_dir / f"{name}.stderr"
        full_env = {
            **env,
            "BENCH_KIND": kind,
            "BENCH_LOG": str(log_dir / f"{name}.log"),
            "BENCH_CPUS": ",".join(map(str, sorted(cpus))),
            "PYTHONUNBUFFERED": "1",  # Lambda's runtime writes each log line through, unbuffered
        }
        with open(self._stderr_path, "wb") as stderr:
            self._proc = subprocess.Popen(
                [*(wrapper or []), sys.executable, "-m", "bench.probes.lambda_instance"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=full_env,
                cwd=cwd,
            )
        self._buffer = b""
        self.ready = cast("Ready", self._read(timeout=120))
        self.pid = self.ready["pid"]

    # -- requests ------------------------------------------------------------------------------------
    def batch(self, spec: MessageSpec, *, reps: int, warmup: int, timeout: float = 600) -> BatchAnswer:
        """A warm-up batch of `warmup` messages (not measured), then `reps` timed batches."""
        answer = self._request(
            {"op": "batch", "messages": spec.to_wire(), "reps": reps, "warmup": warmup}, timeout
        )
        return cast("BatchAnswer", answer)

    def drain(self, spec: MessageSpec, *, max_rounds: int, timeout: float = 600) -> DrainAnswer:
        """The event source mapping's loop over one batch (see the instance's `drain`)."""
        answer = self._request({"op": "drain", "messages": spec.to_wire(), "max_rounds": max_rounds}, timeout)
        return cast("DrainAnswer", answer)

    def bare(self, spec: MessageSpec, *, warmup: int, threads: int = 1) -> BareAnswer:
        """A bare boto3 loop over the messages' payloads, from `threads` threads."""
        answer = self._request(
            {"op": "bare", "messages": spec.to_wire(), "warmup": warmup, "threads": threads}, timeout=600
        )
        return cast("BareAnswer", answer)

    def rss_kb(self) -> int:
        return cast("RssAnswer", self._request({"op": "rss"}, timeout=600))["maxrss_kb"]

    # -- the pipe ------------------------------------------------------------------------------------
    def _request(self, request: Request, timeout: float) -> dict[str, Any]:
        stdin = self._proc.stdin
        assert stdin is not None
        stdin.write((json.dumps(request) + "\n").encode())
        stdin.flush()
        return self._read(timeout)

    def _readline(self, deadline: float) -> str | None:
        # Our own buffer over the raw pipe: select() cannot see lines already buffered by a file object.
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 1 << 16) if readable else b""
            if not chunk:
                return None  # end of file, or the deadline passed
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(deadline)
            if line is None:
                self.close()
                raise BenchError(
                    f"{self.name}: no answer within {timeout:.0f} s; stderr:\n{self.stderr_tail()}"
                )
            if line.startswith("{"):
                break  # anything else is a wrapper's chatter (py-spy prints to the same stdout)
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise BenchError(f"{self.name}: {answer.get('error')}\nstderr:\n{self.stderr_tail()}")
        return answer

    def stderr_tail(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.write(b'{"op": "exit"}\n')
                proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

    def __enter__(self) -> LambdaInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
