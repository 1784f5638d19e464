"""`python -m sqs_sagemaker_invoker.local up|down|demo` as a user runs them: real processes, and none left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.polling import process_alive, wait_for

ROOT = Path(__file__).resolve().parents[3]


def _descendants(pid: int) -> set[int]:
    """Every live process whose parent chain leads to ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def _run(*args: str, state_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sqs_sagemaker_invoker.local", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _spawn(*args: str, state_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sqs_sagemaker_invoker.local", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a command run in a terminal
    )


@pytest.mark.skipif(not Path("/proc").exists(), reason="counts processes through /proc")
def test_up_detached_then_down_stops_every_process(tmp_path: Path) -> None:
    # GIVEN the stack started in the background
    up = _run("up", "--detach", "--container", "echo", state_dir=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    pid = int((tmp_path / "up.pid").read_text())
    try:
        outputs = json.loads((tmp_path / "outputs.json").read_text())
        children = _descendants(pid)

        # THEN its outputs name the stack's resources and the local endpoints
        assert outputs["RouteDemoRequestQueueUrl"].startswith(outputs["AwsEndpointUrl"])
        assert outputs["SageMakerRuntimeUrl"].startswith("http://127.0.0.1:")
        assert len(children) >= 2  # moto and the model container at least
        assert "AWS_ENDPOINT_URL_SQS" in (tmp_path / "env").read_text()

        # WHEN it is stopped
        down = _run("down", state_dir=tmp_path)

        # THEN the stack and every process it started are gone, and so are its state files
        assert down.returncode == 0, down.stdout + down.stderr
        assert not process_alive(pid)
        assert wait_for(
            lambda: not [p for p in children if process_alive(p)], timeout=10, what="children gone"
        )
        assert not (tmp_path / "up.pid").exists()
        assert not (tmp_path / "outputs.json").exists()
    finally:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").exists(), reason="counts processes through /proc")
def test_ctrl_c_during_the_demo_stops_every_process(tmp_path: Path) -> None:
    # GIVEN a demo whose stack is up (its outputs file exists) and whose workers are running
    demo = _spawn("demo", "--requests", "2000", "--rate", "20", state_dir=tmp_path)
    try:
        wait_for((tmp_path / "outputs.json").exists, timeout=60, what="the stack to start")
        children = wait_for(
            lambda: len(_descendants(demo.pid)) >= 4 and _descendants(demo.pid), what="processes"
        )

        # WHEN the user presses Ctrl-C (the terminal signals the whole foreground process group)
        os.killpg(demo.pid, signal.SIGINT)
        output, _ = demo.communicate(timeout=60)

        # THEN it says so, exits 130, and leaves no process behind
        assert demo.returncode == 130, output
        assert "interrupted" in output
        assert wait_for(
            lambda: not [p for p in children if process_alive(p)], timeout=10, what="children gone"
        )
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_demo_accounts_for_every_request(tmp_path: Path) -> None:
    # GIVEN a fresh state directory; WHEN a small demo runs to the end
    result = _run("demo", "--requests", "120", "--rate", "60", state_dir=tmp_path, timeout=170)

    # THEN it exits 0 with a summary in which every request has its expected place
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "demo-summary.json").read_text())
    assert summary["problems"] == []
    assert sum(summary["sent"].values()) == 120
    assert summary["delivered"] + sum(summary["dead_lettered"].values()) == 120
    assert summary["retried"].get("model_not_ready", 0) > 0  # the start-up phase was real
    assert summary["retried"].get("throttled", 0) > 0
    assert summary["log_events"] > 0
    assert "OK: all 120 requests accounted for" in result.stdout


def test_scaling_demo_scales_from_zero_and_back_and_loses_nothing(tmp_path: Path) -> None:
    # GIVEN a fresh state directory; WHEN the scaling scenario runs a small burst to the end
    result = _run("demo", "--scenario", "scaling", "--requests", "80", state_dir=tmp_path, timeout=240)

    # THEN it exits 0: every request delivered (none dead-lettered), the endpoint 0 -> peak -> 0
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "demo-summary.json").read_text())
    assert summary["problems"] == []
    assert summary["delivered"] == 80
    assert summary["dead_lettered"] == {}
    scaling = summary["scaling"]
    assert scaling["started_serving"] == 0
    assert scaling["peak_serving"] >= 1
    assert scaling["final"] == {"serving": 0, "desired": 0}
    assert scaling["decisions"][0]["rule"] == "scale_from_zero"
    # Messages that met zero copies waited for one (the function's retry, whatever its capacity mode)
    assert summary["retried"].get("no_capacity", 0) > 0
    assert "OK: all 80 requests accounted for" in result.stdout


def test_job_demo_checks_its_output_line_by_line(tmp_path: Path) -> None:
    # GIVEN a fresh state directory; WHEN the job scenario runs a small file (bad lines and model errors
    # included) to the end
    result = _run("demo", "--scenario", "job", "--requests", "150", state_dir=tmp_path, timeout=240)

    # THEN it exits 0 with every line in order, each its result or its expected reason, and the event seen
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "partially_failed, 150 lines" in result.stdout
    assert "completion event on the default bus: received" in result.stdout
    assert "PASS: every line in order, each its result or its expected error" in result.stdout
