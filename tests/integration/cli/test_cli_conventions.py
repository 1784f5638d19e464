"""CLI conventions, through the real `invoker` entry point: stdout carries data only (also when stderr is a
terminal showing a progress bar), --version, shell completion, NO_COLOR, and tables that are not cut when
stdout is not a terminal."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqs_sagemaker_invoker.cli.main import app
from tests.support.cli_stack import DUMMY_ENV, REPO_ROOT

if TYPE_CHECKING:
    from tests.support.cli_stack import CliStack


INVOKER = Path(sys.executable).parent / "invoker"  # the console script users run
LOG_STREAM = (
    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/demo-endpoint"
    ":log-stream:AllTraffic/i-0123456789abcdef0-a-very-long-stream-name-that-no-narrow-column-holds"
)


def _env(**extra: str) -> dict[str, str]:
    """The user's environment as a terminal session has it, without what forces or disables colour."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS", "COLUMNS", "LINES", "TERM", "CI", "GITHUB_ACTIONS")
    }
    return {**env, **DUMMY_ENV, "TERM": "xterm-256color", **extra}


def run_on_terminal(
    argv: list[str], *, env: dict[str, str], stdout_file: Path | None = None, timeout: float = 60
) -> tuple[int, bytes]:
    """Run `argv` with stderr on a pseudo-terminal (and stdout too, unless redirected to `stdout_file`),
    as in an interactive shell; returns the exit code and everything the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    with contextlib.ExitStack() as stack:
        stdout = stack.enter_context(stdout_file.open("wb")) if stdout_file is not None else slave
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=slave, env=env, cwd=REPO_ROOT
        )
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal has closed it
                    break
                if not chunk:
                    break
                received += chunk
            elif process.poll() is not None:
                break
        return process.wait(timeout=max(1.0, deadline - time.monotonic())), bytes(received)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()


def _requests(tmp_path: Path, count: int) -> tuple[Path, list[str]]:
    ids = [f"tty-{i:03d}" for i in range(count)]
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps({"requestId": i, "bodyText": "a,b"}) + "\n" for i in ids))
    return path, ids


# ------------------------------------------------------------------------------------------------
# stdout carries data only


def test_send_to_a_file_from_a_terminal_writes_the_ids_to_the_file_and_only_them(
    cli_stack: CliStack, tmp_path: Path
) -> None:
    # GIVEN 30 requests, and a terminal on stderr (where the progress bar is drawn)
    requests, ids = _requests(tmp_path, 30)
    out = tmp_path / "ids.txt"

    # WHEN `invoker send --jsonl requests.jsonl > ids.txt` runs in it
    code, terminal = run_on_terminal(
        [str(INVOKER), "--state-dir", str(cli_stack.state_dir), "send", "--jsonl", str(requests)],
        env=_env(),
        stdout_file=out,
    )

    # THEN the file holds exactly the ids, one per line; the terminal got the progress and the summary
    assert code == 0, terminal.decode(errors="replace")
    assert out.read_text().splitlines() == ids
    text = terminal.decode(errors="replace")
    assert "send → demo" in text
    assert "sent 30 request(s)" in text
    assert not any(request_id in text for request_id in ids)


def test_redrive_to_a_file_from_a_terminal_writes_the_ids_to_the_file_and_only_them(
    cli_stack: CliStack, tmp_path: Path
) -> None:
    # GIVEN dead letters, and a terminal on stderr
    ids = [f"dl-{i:02d}" for i in range(12)]
    for request_id in ids:
        cli_stack.dead_letter(
            json.dumps({"requestId": request_id}), reason="model_error", request_id=request_id
        )
    out = tmp_path / "redriven.txt"

    # WHEN `invoker dlq redrive > redriven.txt` runs in it
    code, terminal = run_on_terminal(
        [str(INVOKER), "--state-dir", str(cli_stack.state_dir), "dlq", "redrive"], env=_env(), stdout_file=out
    )

    # THEN the file holds exactly the redriven ids; the report went to the terminal
    assert code == 0, terminal.decode(errors="replace")
    assert sorted(out.read_text().splitlines()) == ids
    text = terminal.decode(errors="replace")
    assert "redriven 12 message(s)" in text
    assert not any(request_id in text for request_id in ids)


# ------------------------------------------------------------------------------------------------
# NO_COLOR


def test_no_color_means_no_escape_codes_even_on_a_terminal(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN a dead letter with a model log stream (bold reasons, a hyperlink) and requests to send
    cli_stack.dead_letter(
        "{}", reason="model_error", request_id="nc-1", status_code=400, log_stream_arn=LOG_STREAM
    )
    requests, _ = _requests(tmp_path, 12)
    base = [str(INVOKER), "--state-dir", str(cli_stack.state_dir)]
    commands = [["--help"], ["dlq", "list"], ["dlq", "show", "nc-1"], ["send", "--jsonl", str(requests)]]

    # WHEN the commands run on a terminal (stdout and stderr) with and without NO_COLOR
    plain = [run_on_terminal([*base, *command], env=_env(NO_COLOR="1")) for command in commands]
    styled = run_on_terminal([*base, "dlq", "list"], env=_env())

    # THEN with NO_COLOR not one escape code was written; without it the terminal gets styles
    for command, (code, terminal) in zip(commands, plain, strict=True):
        assert code == 0, (command, terminal)
        assert b"\x1b" not in terminal, (command, terminal)
    assert b"nc-1" in plain[1][1]
    assert b"\x1b[" in styled[1]


# ------------------------------------------------------------------------------------------------
# Tables are not cut when stdout is not a terminal


def test_tables_are_not_cut_when_stdout_is_not_a_terminal(cli_stack: CliStack) -> None:
    # GIVEN dead letters with long request ids, a long log stream and a long error message
    long_ids = [f"request-{i}-" + "x" * 50 for i in range(3)]
    for request_id in long_ids:
        cli_stack.dead_letter("{}", reason="model_error", request_id=request_id, log_stream_arn=LOG_STREAM)
    error = "the model said: " + " ".join(f"word{i}" for i in range(150))
    cli_stack.dead_letter(
        "{}",
        reason="validation_error",
        request_id="long-error",
        extra={"invoker.error": {"DataType": "String", "StringValue": error}},
    )

    # WHEN they are listed and shown into a pipe, with a narrow COLUMNS
    listed = cli_stack.runner.invoke(
        app, ["--state-dir", str(cli_stack.state_dir), "dlq", "list"], env={"COLUMNS": "40"}
    )
    shown = cli_stack.runner.invoke(
        app,
        ["--state-dir", str(cli_stack.state_dir), "dlq", "show", "long-error"],
        env={"COLUMNS": "40"},
    )

    # THEN every value is whole, on one line: nothing wrapped, folded or cut with an ellipsis
    assert listed.exit_code == shown.exit_code == 0, (listed.stderr, shown.stderr)
    assert "…" not in listed.stdout
    assert "…" not in shown.stdout
    assert all(any(request_id in line for line in listed.stdout.splitlines()) for request_id in long_ids)
    assert any(LOG_STREAM.rsplit(":log-stream:", 1)[1] in line for line in listed.stdout.splitlines())
    assert any(error in line for line in shown.stdout.splitlines())


def test_trace_and_status_are_whole_and_not_padded_when_stdout_is_not_a_terminal(cli_stack: CliStack) -> None:
    # GIVEN a log line of the function with a long error message
    logs = cli_stack.logs()
    group = f"/aws/lambda/{cli_stack.route().function_name}"
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    error = "ValidationError: " + " ".join(f"part{i}" for i in range(80))
    document = {
        "message": "dead-lettered",
        "request_id": "cut-1",
        "reason": "validation_error",
        "error": error,
    }
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": int(time.time() * 1000) - 1000, "message": json.dumps(document)}],
    )

    # WHEN the request is traced and the status shown into a pipe, with a narrow COLUMNS
    traced = cli_stack.runner.invoke(
        app,
        ["--state-dir", str(cli_stack.state_dir), "trace", "cut-1", "--method", "filter"],
        env={"COLUMNS": "40"},
    )
    status = cli_stack.runner.invoke(
        app, ["--state-dir", str(cli_stack.state_dir), "status"], env={"COLUMNS": "40"}
    )

    # THEN the error is whole on one line, and nothing is padded out to a "width" a pipe does not have
    assert traced.exit_code == status.exit_code == 0, (traced.stderr, status.stderr)
    assert any(error in line for line in traced.stdout.splitlines())
    assert "route demo → endpoint demo-endpoint" in status.stdout
    assert max(len(line) for line in (traced.stdout + status.stdout).splitlines()) < len(error) + 200


# ------------------------------------------------------------------------------------------------
# --version and shell completion


def test_version_comes_from_the_package_metadata() -> None:
    # WHEN the installed entry point is asked for its version
    done = subprocess.run(
        [str(INVOKER), "--version"], capture_output=True, text=True, timeout=60, check=False
    )

    # THEN it prints the installed distribution's version on stdout
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"invoker {importlib.metadata.version('sqs-sagemaker-invoker')}\n"


def test_shell_completion_is_available_and_completes_commands() -> None:
    # WHEN the completion script is asked for, and the shell's completion protocol is run for "invoker dlq re"
    script = subprocess.run(
        [str(INVOKER), "--show-completion"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(SHELL="/bin/bash"),
        stdin=subprocess.DEVNULL,
    )
    completed = subprocess.run(
        [str(INVOKER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(_INVOKER_COMPLETE="complete_bash", COMP_WORDS="invoker dlq re", COMP_CWORD="2"),
    )

    # THEN the script calls the entry point back, and the protocol completes the subcommand
    assert script.returncode == 0, script.stderr
    assert "_INVOKER_COMPLETE=complete_bash" in script.stdout
    assert (
        "--install-completion"
        in subprocess.run(
            [str(INVOKER), "--help"], capture_output=True, text=True, timeout=60, check=False, env=_env()
        ).stdout
    )
    assert completed.stdout.split() == ["redrive"]
