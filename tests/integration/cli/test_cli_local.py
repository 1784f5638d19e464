"""The CLI walk-through (docs/cli.md) on the real local stack: `invoker local up --detach`, then send -> results -> dlq list ->
trace -> status -> dlq redrive -> results, with the real function and the SageMaker emulator, then down."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from sqs_sagemaker_invoker.cli.main import app
from sqs_sagemaker_invoker.local.stack import pid_alive
from tests.support.cli_stack import DUMMY_ENV, REPO_ROOT
from tests.support.polling import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from typer.testing import Result


ENDPOINT = "demo-classifier"  # cdk.json's route "demo"


def _invoker(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sqs_sagemaker_invoker.cli", *args],
        cwd=cwd,
        env={**os.environ, **DUMMY_ENV, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def running_local_stack(tmp_path: Path) -> Iterator[Path]:
    """`invoker local up --detach` (the local package's entry point) with a state directory relative to
    the working directory; `invoker local down` stops it, and the test makes sure nothing is left."""
    state = tmp_path / "state"
    try:
        up = _invoker("local", "up", "--detach", "--container", "echo", "--state-dir", "state", cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr + (state / "up.log").read_text()
        assert (state / "outputs.json").is_file()
        yield state
        down = _invoker("local", "down", "--state-dir", "state", cwd=tmp_path)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopped" in down.stdout
        assert not (state / "outputs.json").exists()
    finally:
        pid_file = state / "up.pid"
        if pid_file.exists():  # `down` did not stop it: do not leave the stack running
            pid = int(pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not pid_alive(pid), timeout=30, what="the local stack to stop")


def test_walk_through_from_send_to_redrive(running_local_stack: Path, tmp_path: Path) -> None:
    state = running_local_stack
    runner = CliRunner()

    def invoker(*args: str, input: str | None = None) -> Result:
        return runner.invoke(
            app,
            ["--state-dir", str(state), *args],
            input=input,
            env={"COLUMNS": "200"},
            catch_exceptions=False,
        )

    # GIVEN the endpoint answers the next request with a model error (the emulator's control API)
    outputs = json.loads((state / "outputs.json").read_text())
    request = urllib.request.Request(
        f"{outputs['SageMakerRuntimeUrl']}/_emulator/endpoints/{ENDPOINT}/inject",
        data=json.dumps({"kind": "model_error", "count": 1, "original_status_code": 400}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()

    # WHEN a request is sent, it is dead-lettered by the real function with the model's status code
    failing = invoker("send", "--raw-json", "--request-id", "walk-fail", input='{"instances": [[1, 2]]}')
    assert failing.exit_code == 0, failing.stderr

    def dead_lettered() -> bool:
        listed = invoker("dlq", "list", "--json")
        return any(r["reason"] == "model_error" for r in json.loads(listed.stdout)["reasons"])

    wait_for(dead_lettered, timeout=30, what="the model error in the DLQ")
    listed = invoker("dlq", "list")
    assert "model_error" in listed.stdout
    assert "400 (1)" in listed.stdout
    assert "walk-fail" in listed.stdout

    # AND more requests are sent and their results collected
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(json.dumps({"requestId": f"walk-{i}", "body": {"n": i}}) for i in range(3)))
    ids = tmp_path / "ids.txt"
    sent = invoker("send", "--jsonl", str(source), "--ids-out", str(ids))
    assert sent.exit_code == 0, sent.stderr
    got = invoker("results", "--ids", str(ids), "--follow", "--timeout", "30")
    assert got.exit_code == 0, got.stderr
    assert sorted(json.loads(line)["requestId"] for line in got.stdout.splitlines()) == [
        "walk-0",
        "walk-1",
        "walk-2",
    ]
    assert all(json.loads(line)["body"]["n"] in (0, 1, 2) for line in got.stdout.splitlines())

    # THEN the logs tell the failed request's story, and the status shows the route's numbers
    traced: list[Result] = []

    def trace_found() -> bool:
        traced.append(invoker("trace", "walk-fail"))
        return traced[-1].exit_code == 0

    wait_for(trace_found, timeout=30, what="the function's log lines")
    assert "dead-lettered: model_error" in traced[-1].stdout

    def metrics_in() -> bool:
        document = json.loads(invoker("status", "--json").stdout)[0]
        return any(m["label"] == "Invocations" and (m["total"] or 0) >= 4 for m in document["metrics"])

    wait_for(metrics_in, timeout=30, what="the function's metrics")
    assert "model_error" in invoker("status").stdout

    # AND a redrive sends the failed request back, where it now succeeds
    redriven = invoker("dlq", "redrive")
    assert redriven.exit_code == 0, redriven.stderr
    assert "redriven 1 message(s)" in redriven.stderr
    assert redriven.stdout == "walk-fail\n"
    again = invoker("results", "--request-id", "walk-fail", "--follow", "--timeout", "30")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["body"] == {"instances": [[1, 2]]}
    assert json.loads(invoker("dlq", "list", "--json").stdout)["read"] == 0
