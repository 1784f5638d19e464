"""`invoker dlq list|show|redrive` against a moto server over HTTP, including a redrive killed half-way."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from tests.support.cli_stack import (
    DUMMY_ENV,
    ORDERED_ROUTE,
    REPO_ROOT,
    Fault,
)
from tests.support.polling import stop_process

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.cli_stack import CliStack


MODEL_LOG = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/demo-endpoint:log-stream:AllTraffic/i-0abc"


def _fill(stack: CliStack) -> dict[str, str]:
    """Seven dead letters of three reasons; returns request id -> body."""
    bodies: dict[str, str] = {}
    for i in range(3):
        body = json.dumps({"requestId": f"me-{i}", "body": {"x": i}})
        stack.dead_letter(
            body,
            reason="model_error",
            request_id=f"me-{i}",
            status_code=400 + i % 2,
            log_stream_arn=MODEL_LOG,
        )
        bodies[f"me-{i}"] = body
    for i in range(2):
        body = f"not json {i}"
        stack.dead_letter(body, reason="invalid_message", request_id=f"bad-{i}")
        bodies[f"bad-{i}"] = body
    for i in range(2):
        body = json.dumps({"requestId": f"rx-{i}", "bodyText": "a,b"})
        stack.dead_letter(
            body,
            reason="retries_exhausted",
            request_id=f"rx-{i}",
            extra={"invoker.last_reason": {"DataType": "String", "StringValue": "throttled"}},
        )
        bodies[f"rx-{i}"] = body
    return bodies


def test_list_groups_by_reason_and_consumes_nothing(cli_stack: CliStack) -> None:
    # GIVEN seven dead letters of three reasons
    _fill(cli_stack)
    dlq = cli_stack.route().dead_letter_queue_url

    # WHEN they are listed, as a table and as JSON
    table = cli_stack.invoke("dlq", "list")
    as_json = cli_stack.invoke("dlq", "list", "--json")

    # THEN the table shows each reason's count, status codes, log stream and example ids
    assert table.exit_code == as_json.exit_code == 0, (table.stderr, as_json.stderr)
    rows = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if line.count("│") > 5}
    assert "3" in rows["model_error"]
    assert "400 (2), 401 (1)" in rows["model_error"] or "400 (2)" in rows["model_error"]
    assert "AllTraffic/i-0abc" in rows["model_error"]
    assert "me-0" in rows["model_error"]
    assert "(last: throttled (2))" in table.stdout
    reasons = {r["reason"]: r for r in json.loads(as_json.stdout)["reasons"]}
    assert {name: r["count"] for name, r in reasons.items()} == {
        "model_error": 3,
        "invalid_message": 2,
        "retries_exhausted": 2,
    }
    assert reasons["model_error"]["originalStatusCodes"] == {"400": 2, "401": 1}
    assert reasons["model_error"]["logStreamArns"] == [MODEL_LOG]
    # AND every message is visible again: listing twice consumed nothing
    assert cli_stack.counts(dlq) == (7, 0)


def test_show_finds_a_message_by_request_id_or_message_id(cli_stack: CliStack) -> None:
    # GIVEN dead letters, one with a body whose exact bytes matter
    _fill(cli_stack)
    body = '{"requestId":"exact-1",  "bodyText":"tab\\tnewline\\n ünïcödé"}'
    message_id = cli_stack.dead_letter(body, reason="validation_error", request_id="exact-1")

    # WHEN it is shown by request id, by the DLQ message id (raw), and an unknown id is asked for
    shown = cli_stack.invoke("dlq", "show", "exact-1")
    raw = cli_stack.invoke("dlq", "show", message_id, "--raw")
    as_json = cli_stack.invoke("dlq", "show", "me-1", "--json")
    missing = cli_stack.invoke("dlq", "show", "nope")
    cli_stack.dead_letter("plain [bold]text[/bold]", reason="invalid_message", request_id="brackets-1")
    plain = cli_stack.invoke("dlq", "show", "brackets-1")

    # THEN the attributes and body are shown, --raw is the body byte for byte, and unknown ids fail in one line
    assert shown.exit_code == raw.exit_code == as_json.exit_code == 0
    assert "validation_error" in shown.stdout
    assert "ünïcödé" in shown.stdout
    assert raw.stdout == body
    document = json.loads(as_json.stdout)
    assert document["reason"] == "model_error"
    assert document["messageAttributes"]["invoker.original_status_code"] == "401"
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: no message with request id or message id 'nope'")
    assert "plain [bold]text[/bold]" in plain.stdout  # a body that is not JSON, as it is
    assert cli_stack.counts(cli_stack.route().dead_letter_queue_url) == (9, 0)


def test_dry_run_changes_nothing(cli_stack: CliStack) -> None:
    # GIVEN dead letters
    _fill(cli_stack)
    route = cli_stack.route()

    # WHEN a redrive is rehearsed
    result = cli_stack.invoke("dlq", "redrive", "--dry-run", "--reason", "model_error")

    # THEN it names what would move (the ids on stdout, the report on stderr), and both queues are as before
    assert result.exit_code == 0, result.stderr
    assert "would redrive 3 message(s)" in result.stderr
    assert sorted(result.stdout.splitlines()) == ["me-0", "me-1", "me-2"]
    assert cli_stack.counts(route.dead_letter_queue_url) == (7, 0)
    assert cli_stack.counts(route.request_queue_url) == (0, 0)


def test_redrive_by_reason_and_limit_sends_the_original_bytes_back(cli_stack: CliStack) -> None:
    # GIVEN dead letters, one carrying a producer attribute next to the invoker.* ones
    bodies = _fill(cli_stack)
    tricky = '{"requestId":"me-9", "body": {"ü": [1, 2.50, "\\u00e9"]}}  '
    cli_stack.dead_letter(
        tricky,
        reason="model_error",
        request_id="me-9",
        extra={"tenant": {"DataType": "String", "StringValue": "acme"}},
    )
    bodies["me-9"] = tricky
    route = cli_stack.route()

    # WHEN model errors are redriven, then at most 1 invalid message
    by_reason = cli_stack.invoke("dlq", "redrive", "--reason", "model_error")
    limited = cli_stack.invoke("dlq", "redrive", "--reason", "invalid_message", "--limit", "1")

    # THEN exactly those moved, bodies byte for byte, producer attributes kept, invoker.* dropped but for
    # the redrive count
    assert by_reason.exit_code == limited.exit_code == 0, (by_reason.stderr, limited.stderr)
    assert "redriven 4 message(s)" in by_reason.stderr
    assert sorted(by_reason.stdout.splitlines()) == ["me-0", "me-1", "me-2", "me-9"]
    moved = cli_stack.peek(route.request_queue_url)
    moved_bodies = [m["Body"] for m in moved]
    invalid = [body for body in moved_bodies if body.startswith("not json")]
    assert len(invalid) == 1
    assert invalid[0] in (bodies["bad-0"], bodies["bad-1"])
    assert sorted(b for b in moved_bodies if b not in invalid) == sorted(
        bodies[f"me-{i}"] for i in (0, 1, 2, 9)
    )
    tricky_copy = next(m for m in moved if m["Body"] == tricky)
    assert tricky_copy["MessageAttributes"] == {
        "tenant": {"StringValue": "acme", "DataType": "String"},
        "invoker.redrive_count": {"StringValue": "1", "DataType": "Number"},
    }
    assert all(
        name == "invoker.redrive_count" or not name.startswith("invoker.")
        for m in moved
        for name in m.get("MessageAttributes", {})
    )
    left = Counter(
        m["MessageAttributes"]["invoker.reason"]["StringValue"]
        for m in cli_stack.peek(route.dead_letter_queue_url)
    )
    assert left == {"invalid_message": 1, "retries_exhausted": 2}


def test_redrive_keeps_fifo_groups_in_order(make_cli_stack: Callable[..., CliStack]) -> None:
    # GIVEN a FIFO route's DLQ with two groups of three messages
    stack = make_cli_stack([ORDERED_ROUTE])
    for group in ("g1", "g2"):
        for i in range(3):
            stack.dead_letter(
                f"{group}-{i}",
                reason="model_error",
                request_id=f"{group}-{i}",
                route="ordered",
                group_id=group,
            )

    # WHEN the DLQ is redriven
    result = stack.invoke("dlq", "redrive")

    # THEN each message is back in its group, in the group's order, with a redrive deduplication id
    assert result.exit_code == 0, result.stderr
    moved = stack.peek(stack.route("ordered").request_queue_url)
    by_group: dict[str, list[str]] = {}
    for message in moved:
        by_group.setdefault(message["Attributes"]["MessageGroupId"], []).append(message["Body"])
        assert message["Attributes"]["MessageDeduplicationId"].startswith("redrive-")
    assert by_group == {"g1": ["g1-0", "g1-1", "g1-2"], "g2": ["g2-0", "g2-1", "g2-2"]}
    assert stack.counts(stack.route("ordered").dead_letter_queue_url) == (0, 0)


def test_move_task_falls_back_to_send_and_delete_where_unavailable(cli_stack: CliStack) -> None:
    # GIVEN dead letters on a backend without StartMessageMoveTask (moto answers 500)
    bodies = _fill(cli_stack)
    route = cli_stack.route()

    # WHEN a move task is asked for
    result = cli_stack.invoke("dlq", "redrive", "--move-task")

    # THEN the fallback says so and moves everything, message by message
    assert result.exit_code == 0, result.stderr
    assert "StartMessageMoveTask unavailable" in result.stderr
    assert sorted(cli_stack.bodies(route.request_queue_url)) == sorted(bodies.values())
    assert cli_stack.counts(route.dead_letter_queue_url) == (0, 0)


@pytest.mark.parametrize(
    ("killed_at", "duplicates"),
    [
        ("DeleteMessageBatch", True),  # the second batch was sent to the request queue, not yet deleted
        ("SendMessageBatch", False),  # the second batch was received from the DLQ, not yet sent
    ],
)
def test_an_interrupted_redrive_loses_nothing(
    make_cli_stack: Callable[..., CliStack], killed_at: str, duplicates: bool
) -> None:
    # GIVEN 25 dead letters, and the redrive process killed (SIGKILL) at its second call of `killed_at`
    stack = make_cli_stack(proxy=True)
    assert stack.proxy is not None
    route = stack.route()
    originals = {f"k-{i:02d}": json.dumps({"requestId": f"k-{i:02d}", "bodyText": str(i)}) for i in range(25)}
    for request_id, body in originals.items():
        stack.dead_letter(body, reason="model_error", request_id=request_id)
    stack.proxy.faults.append(Fault(killed_at, call=2, kill=True))

    # WHEN the redrive runs in its own process and is killed there
    process = subprocess.Popen(
        stack.subprocess_command("dlq", "redrive", "--visibility-timeout", "2", "-q"),
        cwd=REPO_ROOT,
        env={**os.environ, **DUMMY_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stack.proxy.victim_pid = process.pid
    try:
        process.wait(timeout=60)
    finally:
        stop_process(process)
    assert process.returncode == -9
    time.sleep(2.5)  # the killed run's hidden messages become visible again

    # THEN every original is in the request queue or the DLQ, none lost; the first batch moved completely
    in_requests = set(stack.bodies(route.request_queue_url))
    in_dlq = set(stack.bodies(route.dead_letter_queue_url))
    assert set(originals.values()) == in_requests | in_dlq
    assert len(in_requests - in_dlq) == 10
    assert bool(in_requests & in_dlq) is duplicates

    # AND WHEN the redrive is run again to the end, the DLQ empties and every original is in the request queue
    again = stack.invoke("dlq", "redrive", "-q")
    assert again.exit_code == 0, again.stderr
    assert stack.counts(route.dead_letter_queue_url) == (0, 0)
    assert set(stack.bodies(route.request_queue_url)) == set(originals.values())
