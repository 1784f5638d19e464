"""``python -m sqs_sagemaker_invoker.local demo|up|down``: the local stack's entry points (``make demo``/``make up`` call these)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from types import FrameType

    from rich.console import Console

from sqs_sagemaker_invoker.local.stack import ROOT, STATE_DIR_NAME, pid_alive

PID_FILE = "up.pid"
Container = Literal["sklearn", "echo"]
Scenario = Literal["mixed", "scaling", "job"]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _state_dir(given: str | Path | None) -> Path:
    # Absolute: a detached stack runs from the repository root.
    return Path(given).resolve() if given else ROOT / STATE_DIR_NAME


def demo(  # noqa: PLR0913 - the command's options, one each
    state_dir: Path | None = None,
    *,
    requests: int | None = None,
    rate: float | None = None,
    timeout_s: float | None = None,
    route: str | None = None,
    scenario: Scenario = "mixed",
) -> int:
    """Run a demo scenario on a fresh local stack, print its summary; the exit code.

    mixed (the default): a mixed workload with faults. scaling: a burst at an endpoint with no copies that
    the local autoscaler scales out and back to zero. job: a JSON Lines file through a job, its output
    checked line by line."""
    if scenario == "job":
        return _job_demo(state_dir, lines=requests, timeout_s=timeout_s)
    from sqs_sagemaker_invoker.local.demo import (  # noqa: PLC0415 - rich and the stack only when needed
        Demo,
        DemoConfig,
        ScalingDemo,
        ScalingDemoConfig,
    )

    config: DemoConfig | ScalingDemoConfig = (
        ScalingDemoConfig() if scenario == "scaling" else DemoConfig(route=route)
    )
    for name, value in (("requests", requests), ("rate", rate), ("timeout_s", timeout_s)):
        if value is not None:
            setattr(config, name, value)
    return _run_to_the_end(
        ScalingDemo(config, state_dir=_state_dir(state_dir))
        if isinstance(config, ScalingDemoConfig)
        else Demo(config, state_dir=_state_dir(state_dir))
    )


def _job_demo(state_dir: Path | None, *, lines: int | None, timeout_s: float | None) -> int:
    from sqs_sagemaker_invoker.local.demo.job_scenario import JobDemo, JobDemoConfig  # noqa: PLC0415

    config = JobDemoConfig()
    if lines is not None:
        config.lines = lines
    if timeout_s is not None:
        config.timeout_s = timeout_s
    return _run_to_the_end(JobDemo(config, state_dir=_state_dir(state_dir)))


class _Summary(Protocol):
    @property
    def ok(self) -> bool: ...


class _Scenario[S: _Summary](Protocol):
    console: Console

    def run(self) -> S: ...

    def print_summary(self, summary: S, /) -> None: ...


def _run_to_the_end[S: _Summary](runner: _Scenario[S]) -> int:
    """A scenario's exit code: 0 when everything was accounted for, 1 when not, 130 on Ctrl-C (after every
    process the demo started has stopped)."""
    try:
        summary = runner.run()
    except KeyboardInterrupt:
        runner.console.print("[yellow]interrupted: every process the demo started is stopped[/]")
        return 130
    runner.print_summary(summary)
    return 0 if summary.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    if args.scenario == "scaling" and args.route is not None:
        print("--route: the scaling scenario builds its own route", file=sys.stderr)
        return 2
    return demo(
        args.state_dir,
        requests=args.requests,
        rate=args.rate,
        timeout_s=args.timeout_s,
        route=args.route,
        scenario=args.scenario,
    )


def up(  # noqa: PLR0913 - the command's options, one each
    state_dir: Path | None = None,
    *,
    detach: bool = False,
    wait: float = 120.0,
    logs: bool = False,
    container: Container = "sklearn",
    startup_delay: float = 0.0,
) -> int:
    """Start the local stack: in the foreground until Ctrl-C, or detached (stop it with `down`)."""
    resolved = _state_dir(state_dir)
    if detach:
        return _up_detached(resolved, wait=wait, container=container, startup_delay=startup_delay)
    return _up_foreground(resolved, logs=logs, container=container, startup_delay=startup_delay)


def cmd_up(args: argparse.Namespace) -> int:
    return up(
        args.state_dir,
        detach=args.detach,
        wait=args.wait,
        logs=args.logs,
        container=args.container,
        startup_delay=args.startup_delay,
    )


def _up_foreground(state_dir: Path, *, logs: bool, container: Container, startup_delay: float) -> int:
    from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions, export_lines  # noqa: PLC0415

    pid_file = state_dir / PID_FILE
    if pid_file.exists() and pid_alive(int(pid_file.read_text().split()[0] or 0)):
        print(
            f"a local stack is already running (pid {pid_file.read_text().strip()}); stop it with: python -m sqs_sagemaker_invoker.local down"
        )
        return 1
    options = StackOptions(
        state_dir=state_dir,
        startup_delay_s=startup_delay,
        echo_logs=logs,
        default_container=container,
    )
    stack = LocalStack(options)
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        stack.start()
        env_file = state_dir / "env"
        # Written whole, then renamed: whoever sees the file (`up --detach`, a shell) sees all of it.
        partial = state_dir / "env.partial"
        partial.write_text(export_lines(stack.env_for_clients()) + "\n")
        partial.replace(env_file)
        print(json.dumps(stack.outputs, indent=2), flush=True)
        print(
            f"\nLocal stack up. Outputs: {state_dir / 'outputs.json'}; function logs: {state_dir / 'logs'}/\n"
            f"Use it from a shell with: source {env_file}\n"
            "Stop with Ctrl-C (or python -m sqs_sagemaker_invoker.local down).",
            flush=True,
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping the local stack...", flush=True)
        return 0
    finally:
        stack.stop()
        pid_file.unlink(missing_ok=True)
        (state_dir / "env").unlink(missing_ok=True)


def _up_detached(state_dir: Path, *, wait: float, container: Container, startup_delay: float) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    outputs = state_dir / "outputs.json"
    outputs.unlink(missing_ok=True)
    env_file = state_dir / "env"
    env_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "sqs_sagemaker_invoker.local",
        "--state-dir",
        str(state_dir),
        "up",
        "--container",
        container,
    ]
    command += ["--startup-delay", str(startup_delay)]
    log = (state_dir / "up.log").open("w")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        # Both files: the env file is written after outputs.json, and the docs' snippets source it next.
        if outputs.exists() and env_file.exists():
            print(outputs.read_text(), end="")
            print(
                f"local stack running in the background (pid {process.pid}); stop it with: python -m sqs_sagemaker_invoker.local down"
            )
            return 0
        if process.poll() is not None:
            print(f"the local stack failed to start; see {state_dir / 'up.log'}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    print(f"the local stack did not start within {wait} s; see {state_dir / 'up.log'}", file=sys.stderr)
    return 1


def cmd_down(args: argparse.Namespace) -> int:
    return down(args.state_dir, wait=args.wait)


def down(state_dir: Path | None = None, *, wait: float = 60.0) -> int:
    """Stop a local stack started with `up --detach`; the exit code."""
    pid_file = _state_dir(state_dir) / PID_FILE
    if not pid_file.exists():
        print("no local stack is running (no pid file)")
        return 0
    pid = int(pid_file.read_text().split()[0])
    if not pid_alive(pid) or not _is_ours(pid):
        print(f"stale pid file (process {pid} is not a local stack); removed")
        pid_file.unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        print(f"the local stack (pid {pid}) did not stop within {wait} s", file=sys.stderr)
        return 1
    print(f"local stack (pid {pid}) stopped")
    return 0


def _is_ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the pid file
    return b"sqs_sagemaker_invoker.local" in cmdline and b"up" in cmdline


def configure(*, verbose: bool = False) -> None:
    """What every entry point does first: logging, and SIGTERM stopping the stack like Ctrl-C."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sqs_sagemaker_invoker.local", description=__doc__)
    parser.add_argument(
        "--state-dir", help=f"where outputs.json, logs/ and the pid file go (default {STATE_DIR_NAME}/)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the stack's own activity")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a demo scenario end to end and print a summary")
    demo.add_argument(
        "--scenario",
        choices=("mixed", "scaling", "job"),
        default="mixed",
        help="mixed: a mixed workload with faults (default); scaling: a burst at an endpoint scaled from zero "
        "and back; job: a 10,000-line JSON Lines file through a job, its output checked line by line",
    )
    demo.add_argument("--requests", type=int, help="number of requests (default 400; scaling 300)")
    demo.add_argument("--rate", type=float, help="messages sent per second (default 40; scaling: a burst)")
    demo.add_argument(
        "--timeout",
        dest="timeout_s",
        type=float,
        help="give up after this many seconds (default 120; scaling 240)",
    )
    demo.add_argument("--route", help="route name from cdk.json (default: the first standard-queue route)")
    demo.set_defaults(func=cmd_demo)

    up = sub.add_parser("up", help="start the local stack and keep it running until Ctrl-C")
    up.add_argument("--detach", action="store_true", help="run in the background; stop with `down`")
    up.add_argument("--wait", type=float, default=120.0, help="with --detach: seconds to wait for start-up")
    up.add_argument("--logs", action="store_true", help="echo the functions' log lines to the terminal")
    up.add_argument("--container", choices=("sklearn", "echo"), default="sklearn", help="model container")
    up.add_argument("--startup-delay", type=float, default=0.0, help="model container start-up delay (s)")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop a local stack started with `up` (in the background)")
    down.add_argument("--wait", type=float, default=60.0, help="seconds to wait for it to stop")
    down.set_defaults(func=cmd_down)

    args = parser.parse_args(argv)
    configure(verbose=args.verbose)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
