"""`invoker dlq redrive` against a route whose function fails every message again: each run ends by itself,
moves each letter at most once, and letters redriven --max-redrives times are held back; dead letters
whose body is kept in S3 go back as their original bytes."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqs_sagemaker_invoker.cli.dlq.letters import MAX_READ_COUNT, DeadLetter
from tests.support.cli_stack import (
    DUMMY_ENV,
    ORDERED_ROUTE,
    REPO_ROOT,
    FailingConsumer,
)
from tests.support.polling import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.cli_stack import CliStack


# Far longer than a run over 5 letters takes; a redrive that feeds its own loop never ends by itself.
RUN_TIMEOUT_S = 45


def _redrive(stack: CliStack, *args: str) -> tuple[int, dict[str, Any], str]:
    """One `invoker dlq redrive --json` in its own process; fails the test if it does not end."""
    try:
        done = subprocess.run(
            stack.subprocess_command("dlq", "redrive", "--json", "-q", *args),
            cwd=REPO_ROOT,
            env={**os.environ, **DUMMY_ENV},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
        pytest.fail(f"redrive did not end within {RUN_TIMEOUT_S} s: {exc.stderr!r}")
    return done.returncode, json.loads(done.stdout), done.stderr


def _consumed(consumer: FailingConsumer, expected: int) -> bool:
    return consumer.total() == expected


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_redrive_against_a_route_that_fails_again_ends_and_moves_each_letter_once(
    make_cli_stack: Callable[..., CliStack], fifo: bool
) -> None:
    # GIVEN five invalid letters in the DLQ of a route whose consumer dead-letters every message again
    stack = make_cli_stack([ORDERED_ROUTE] if fifo else None)
    route = "ordered" if fifo else "demo"
    dlq = stack.route(route).dead_letter_queue_url
    bodies = [f"not json {i}" for i in range(5)]
    for i, body in enumerate(bodies):
        stack.dead_letter(body, reason="invalid_message", request_id=f"bad-{i}", route=route, group_id="g")
    consumer = FailingConsumer(stack, route=route).start()
    try:
        for run in (1, 2, 3):
            # WHEN the DLQ is redriven while the copies fail again as fast as they arrive
            code, report, stderr = _redrive(stack)

            # THEN the run ends by itself and moved each letter exactly once, with its redrive count
            assert code == 0, stderr
            assert report["moved"] == 5, report
            assert report["heldBack"] == 0
            wait_for(functools.partial(_consumed, consumer, 5 * run), what=f"run {run}'s copies consumed")
            wait_for(lambda: stack.counts(dlq) == (5, 0), what="the copies dead-lettered again")
            assert consumer.received == dict.fromkeys(bodies, run)
            assert all(counts[-1] == str(run) for counts in consumer.redrive_counts.values())

        # AND WHEN a fourth run finds every letter redriven 3 times (the default --max-redrives)
        code, report, stderr = _redrive(stack)

        # THEN it holds them all back: nothing moved, all still in the DLQ, and it says so
        assert code == 0, stderr
        assert (report["moved"], report["heldBack"]) == (0, 5)
        assert "held back 5" in stderr
        assert stack.counts(dlq) == (5, 0)
        assert consumer.total() == 15

        # AND --force moves them once more, counting on
        code, report, stderr = _redrive(stack, "--force")
        assert code == 0, stderr
        assert report["moved"] == 5
        wait_for(lambda: consumer.total() == 20, what="the forced copies consumed")
        assert all(counts == ["1", "2", "3", "4"] for counts in consumer.redrive_counts.values())
    finally:
        consumer.stop()


def test_move_task_is_refused_when_it_would_move_letters_that_must_be_held_back(cli_stack: CliStack) -> None:
    # GIVEN letters redriven 3 times already, next to one never redriven
    number = {"DataType": "Number", "StringValue": "3"}
    for i in range(2):
        cli_stack.dead_letter(
            f"tired {i}", reason="model_error", request_id=f"t-{i}", extra={"invoker.redrive_count": number}
        )
    cli_stack.dead_letter("fresh", reason="model_error", request_id="f-0")
    route = cli_stack.route()

    # WHEN the native move task is asked for (it can neither filter nor count)
    refused = cli_stack.invoke("dlq", "redrive", "--move-task")

    # THEN it is refused before anything moves, naming why and the way out
    assert refused.exit_code == 1
    assert "2 of 3 dead letter(s) were redriven 3 time(s) already" in refused.stderr
    assert cli_stack.counts(route.dead_letter_queue_url) == (3, 0)
    assert cli_stack.counts(route.request_queue_url) == (0, 0)

    # AND WHEN forced (moto has no move task: the message-by-message fallback runs, forced too)
    forced = cli_stack.invoke("dlq", "redrive", "--move-task", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert cli_stack.counts(route.request_queue_url) == (3, 0)


def _pointer_letter(stack: CliStack, request_id: str, key: str, body: bytes | None) -> str:
    """A dead letter whose body did not fit next to its reason, as the function writes it: the original
    bytes in the route's bucket (unless `body` is None: the object is missing), a pointer in the DLQ."""
    bucket = stack.route().results_bucket
    assert bucket is not None
    uri = f"s3://{bucket}/{key}"
    if body is not None:
        stack.s3().put_object(Bucket=bucket, Key=key, Body=body)
    return stack.dead_letter(
        json.dumps({"invokerBodyS3Uri": uri}),
        reason="model_error",
        request_id=request_id,
        extra={"invoker.body_s3_uri": {"DataType": "String", "StringValue": uri}},
    )


def test_a_letter_whose_body_is_in_s3_is_shown_and_redriven_as_its_original_bytes(
    cli_stack: CliStack,
) -> None:
    # GIVEN a pointer letter whose original body (close to 1 MiB, with bytes that must survive exactly)
    # is in S3, a second one whose object is gone, and an ordinary letter
    original = ('{"requestId": "big-1",  "bodyText": "ünï\\tcödé ' + "x" * 1_000_000 + '"}\n').encode()
    _pointer_letter(cli_stack, "big-1", "dead-letters/big-1", original)
    _pointer_letter(cli_stack, "gone-1", "dead-letters/gone-1", None)
    cli_stack.dead_letter('{"requestId": "small-1"}', reason="model_error", request_id="small-1")
    route = cli_stack.route()

    # WHEN they are shown
    raw = cli_stack.invoke("dlq", "show", "big-1", "--raw")
    as_json = cli_stack.invoke("dlq", "show", "big-1", "--json")
    gone = cli_stack.invoke("dlq", "show", "gone-1")

    # THEN the original body is shown, byte for byte; the missing one fails clearly and stays in the DLQ
    assert raw.exit_code == as_json.exit_code == 0, (raw.stderr, as_json.stderr)
    assert raw.stdout_bytes == original
    assert json.loads(as_json.stdout)["body"].encode() == original
    assert gone.exit_code == 1
    assert "dead-letters/gone-1" in gone.stderr
    assert "unreadable" in gone.stderr
    assert "invokerBodyS3Uri" in gone.stdout  # the letter as it is
    assert cli_stack.counts(route.dead_letter_queue_url) == (3, 0)

    # AND WHEN the DLQ is redriven
    result = cli_stack.invoke("dlq", "redrive", "--json")

    # THEN the original bytes went back (not the pointer); the unreadable letter stays, skipped with why
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["moved"], report["skipped"]) == (2, 1)
    assert "gone-1" in result.stderr
    assert "unreadable" in result.stderr
    moved = sorted(cli_stack.bodies(route.request_queue_url), key=len)
    assert [body.encode() for body in moved] == [b'{"requestId": "small-1"}', original]
    left = cli_stack.peek(route.dead_letter_queue_url)
    assert [m["MessageAttributes"]["invoker.request_id"]["StringValue"] for m in left] == ["gone-1"]


def test_move_task_is_refused_for_letters_whose_body_is_in_s3(cli_stack: CliStack) -> None:
    # GIVEN a pointer letter
    _pointer_letter(cli_stack, "big-2", "dead-letters/big-2", b"original")

    # WHEN the native move task is asked for, even forced
    result = cli_stack.invoke("dlq", "redrive", "--move-task", "--force")

    # THEN it is refused: the task would send the pointer, not the body
    assert result.exit_code == 1
    assert "keep their body in S3" in result.stderr
    assert cli_stack.counts(cli_stack.route().dead_letter_queue_url) == (1, 0)


@given(text=st.text())
def test_any_redrive_count_attribute_reads_as_a_count(text: str) -> None:
    # GIVEN a letter whose invoker.redrive_count holds any text at all (a producer may set it)
    letter = DeadLetter(
        {
            "MessageId": "m",
            "MessageAttributes": {"invoker.redrive_count": {"DataType": "Number", "StringValue": text}},
        }
    )

    # WHEN its count is read, THEN it never raises and is a count
    assert 0 <= letter.redrive_count <= MAX_READ_COUNT


def test_a_huge_redrive_count_reads_at_once_as_the_cap() -> None:
    # GIVEN a count with a billion digits, written in a few characters
    letter = DeadLetter(
        {
            "MessageId": "m",
            "MessageAttributes": {
                "invoker.redrive_count": {"DataType": "Number", "StringValue": "1e999999999"}
            },
        }
    )

    # WHEN it is read, THEN it is the cap (held back), computed at once
    assert letter.redrive_count == MAX_READ_COUNT


@given(
    count=st.integers(min_value=0, max_value=10**9), spelling=st.sampled_from(["{}", "{}.0", " {} ", "{}e0"])
)
def test_every_spelling_of_a_number_reads_as_that_count(count: int, spelling: str) -> None:
    # GIVEN a count written in any of the forms SQS accepts for a Number
    letter = DeadLetter(
        {
            "MessageId": "m",
            "MessageAttributes": {
                "invoker.redrive_count": {"DataType": "Number", "StringValue": spelling.format(count)}
            },
        }
    )

    # WHEN it is read, THEN it is that count (so "3.0" is held back like "3")
    assert letter.redrive_count == count
