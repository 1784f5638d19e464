"""The job splitter (moto in-process): lines become request messages once each, bad lines are ended at
once and never sent, the split checkpoints and continues before its deadline, waits for room in the
request queue, and stops at a cancel."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from invoker.contract import JobAttribute as J
from invoker.contract import JobState, LedgerState
from invoker.contract import LedgerAttribute as A
from invoker.jobs.control import ControlMessage, Kind
from invoker.jobs.lines import read_lines
from invoker.jobs.pacing import Pacer
from invoker.jobs.splitter import Split, Splitter
from moto import mock_aws

from tests.unit.jobs_support import BUCKET, PREFIX, JobsWorld, after, plenty

if TYPE_CHECKING:
    from collections.abc import Iterator

GOOD = '{"body": {"instances": [[5.1, 3.5, 1.4, 0.2]]}}'


@pytest.fixture
def world() -> Iterator[JobsWorld]:
    with mock_aws():
        yield JobsWorld()


def ledger_item(world: JobsWorld, request_id: str) -> dict[str, Any]:
    found = world.dynamodb.get_item(TableName="ledger", Key={A.KEY: {"S": PREFIX + request_id}})
    return dict(found.get("Item", {}))


def test_every_line_becomes_one_message_with_the_jobs_keys(world: JobsWorld) -> None:
    # GIVEN a job of 23 good lines
    world.submit("j1", [GOOD] * 23)
    # WHEN the splitter runs with plenty of time
    report = world.splitter.split("j1", plenty)
    # THEN every line went once, in order, with requestId jobId:line, and the job is running with its total
    sent = world.drain(world.requests)
    assert report.outcome is Split.DONE
    assert sorted(m["line"] for m in sent) == list(range(1, 24))
    assert {m["requestId"] for m in sent} == {f"j1:{n}" for n in range(1, 24)}
    assert all(m["jobId"] == "j1" and m["body"] == {"instances": [[5.1, 3.5, 1.4, 0.2]]} for m in sent)
    job = world.table.get("j1")
    assert (job[J.STATE], job[J.TOTAL], job[J.SENT], job[J.ENDED]) == (JobState.RUNNING, 23, 23, 0)


def test_bad_lines_are_ended_at_once_and_never_sent(world: JobsWorld) -> None:
    # GIVEN lines that are not JSON, not an object, a bad envelope, empty, and one that sets its own id
    lines = [GOOD, "not json", "[1, 2]", '{"bodyText": 5}', "", '{"requestId": "x", "body": 1}', GOOD]
    world.submit("j2", lines)
    # WHEN it is split
    world.splitter.split("j2", plenty)
    # THEN only the good lines were sent; each bad one is dead_lettered as invalid_message with its reason
    assert [m["line"] for m in world.drain(world.requests)] == [1, 7]
    why = {
        2: "is not JSON",
        3: "not a JSON object",
        4: "bodyText must be a string",
        5: "empty",
        6: "requestId",
    }
    for line, words in why.items():
        item = ledger_item(world, f"j2:{line}")
        assert item[A.STATE]["S"] == LedgerState.DEAD_LETTERED
        assert item[A.REASON]["S"] == "invalid_message"
        assert words in item[A.ERROR]["S"]
    job = world.table.get("j2")
    assert job[J.ENDED] == 5
    assert job[J.COUNTS] == {"invalid_message": 5}
    assert job[J.SENT] == 2


def test_the_split_checkpoints_and_continues_before_its_deadline(world: JobsWorld) -> None:
    # GIVEN 25 lines, 3 of them bad
    lines = [GOOD] * 25
    lines[4] = lines[14] = lines[24] = "{oops"
    world.submit("j3", lines)
    # WHEN the first invocation has time for one send batch only
    first = world.splitter.split("j3", after(1))
    # THEN it stopped to be continued, with its checkpoint just after the batch it sent
    assert first.outcome is Split.CONTINUE
    job = world.table.get("j3")
    assert (job[J.STATE], job[J.LINES], job[J.SENT], job[J.ENDED]) == (JobState.SPLITTING, 10, 9, 1)
    assert job[J.OFFSET] == 9 * (len(GOOD) + 1) + len("{oops\n")
    # AND WHEN a new invocation continues it
    second = world.splitter.split("j3", plenty)
    # THEN every good line was sent exactly once and the job is running with all 25 lines
    assert second.outcome is Split.DONE
    numbers = sorted(m["line"] for m in world.drain(world.requests))
    assert numbers == [n for n in range(1, 26) if n not in {5, 15, 25}]
    job = world.table.get("j3")
    assert (job[J.TOTAL], job[J.SENT], job[J.ENDED]) == (25, 22, 3)


def test_the_split_waits_for_room_in_the_request_queue(world: JobsWorld) -> None:
    # GIVEN a request queue already holding 15 messages and a bound of 20
    for _ in range(15):
        world.sqs.send_message(QueueUrl=world.requests, MessageBody="{}")
    world.pacer = Pacer(world.sqs, world.requests, lambda: 20, sleep=world.sleeps.append, refresh_seconds=0)
    world.splitter._pacer = world.pacer
    world.submit("j4", [GOOD] * 30)
    # WHEN the splitter runs with time for a few checks only
    report = world.splitter.split("j4", after(4))
    # THEN it sent nothing (10 more would pass the bound), waited, and will continue from line 1
    assert report.outcome is Split.CONTINUE
    assert world.sleeps
    assert world.table.get("j4")[J.SENT] == 0
    assert len(world.drain(world.requests)) == 15


def test_a_cancel_stops_the_split_before_its_next_send_batch(world: JobsWorld) -> None:
    # GIVEN a job of 40 lines
    world.submit("j5", [GOOD] * 40)
    calls = [0]

    def cancelled_after_the_first_batch() -> int:
        calls[0] += 1
        if calls[0] == 2:  # the split is under way: its first batch has gone
            world.table.update(
                "j5", sets={J.STATE: JobState.CANCELLED.value}, from_states=[JobState.SPLITTING]
            )
        return 600_000

    # WHEN it is cancelled while it splits
    report = world.splitter.split("j5", cancelled_after_the_first_batch)
    # THEN nothing more was sent after the cancel, and the job says how many lines went
    assert report.outcome is Split.STOPPED
    assert len(world.drain(world.requests)) == 10
    job = world.table.get("j5")
    assert (job[J.STATE], job[J.SENT], job[J.LINES]) == (JobState.CANCELLED, 10, 10)


def test_lines_are_read_from_any_offset_in_small_ranged_reads(world: JobsWorld) -> None:
    # GIVEN a file with a CRLF line, a too-long line and no final line break
    data = b'{"a":1}\r\n' + b"x" * 50 + b"\n" + b'{"b":2}\n{"c":3}'
    world.s3.put_object(Bucket=BUCKET, Key="in", Body=data)
    # WHEN it is read 7 bytes at a time, lines longer than 20 bytes refused
    lines = list(read_lines(world.s3, BUCKET, "in", size=len(data), chunk_bytes=7, max_line_bytes=20))
    # THEN every line is there, with its end offset; the long one is flagged, not held
    assert [(x.number, x.text, x.too_long) for x in lines] == [
        (1, b'{"a":1}', False),
        (2, b"", True),
        (3, b'{"b":2}', False),
        (4, b'{"c":3}', False),
    ]
    # AND reading on from a line's end gives the lines after it
    resumed = list(
        read_lines(world.s3, BUCKET, "in", size=len(data), offset=lines[1].end, line=2, chunk_bytes=5)
    )
    assert [x.text for x in resumed] == [b'{"b":2}', b'{"c":3}']
    assert json.loads(resumed[-1].text) == {"c": 3}
    # AND a long line inside one read is flagged too
    whole = list(read_lines(world.s3, BUCKET, "in", size=len(data), chunk_bytes=1024, max_line_bytes=20))
    assert [x.too_long for x in whole] == [False, True, False, False]


def test_a_send_batch_is_ten_calls_of_ten_between_two_checkpoints(world: JobsWorld) -> None:
    # GIVEN the deployed grouping (10 SendMessageBatch calls at once) and 250 lines
    splitter = Splitter(world.config, world.table, world.s3, world.sqs, world.pacer)
    world.submit("j6", [GOOD] * 250)
    # WHEN the first invocation has time for one send batch
    report = splitter.split("j6", after(1))
    # THEN 100 lines went, each once, and the checkpoint is after line 100
    assert report.outcome is Split.CONTINUE
    assert sorted(m["line"] for m in world.drain(world.requests)) == list(range(1, 101))
    assert (world.table.get("j6")[J.LINES], world.table.get("j6")[J.SENT]) == (100, 100)


def test_an_input_that_cannot_be_read_fails_the_job_with_its_reason(world: JobsWorld) -> None:
    # GIVEN a submitted job whose input was deleted before the split began
    world.submit("gone", [GOOD] * 5)
    world.s3.delete_object(Bucket=BUCKET, Key="jobs/gone/input.jsonl")
    # WHEN its control message is handled
    world.controller.handle(ControlMessage(Kind.SPLIT, "gone"), plenty)
    # THEN the job ends failed, saying why, rather than coming back until the control DLQ takes it
    job = world.table.get("gone")
    assert job[J.STATE] == JobState.FAILED
    assert "cannot be read: NoSuchKey" in job[J.ERROR]
    assert J.ENDED_AT in job
    # AND nothing was sent, and no control message asks for it again
    assert world.drain(world.requests) == []
    assert world.drain(world.control) == []
