"""The job's end (moto in-process): each line's end is counted once on the job's item by the ledger, the
assembler writes one output in input order (results, errors, the input when joined) with a multipart
upload whose parts are at least the part size but the last, and a completion event is published."""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

import pytest
from invoker.config import LedgerSettings
from invoker.contract import JobAttribute as J
from invoker.contract import JobState, LedgerState, Reason
from invoker.envelope import parse_envelope
from invoker.jobs.control import ControlMessage, Kind
from invoker.jobs.multipart import MultipartWriter
from invoker.ledger import Outcome, RequestLedger
from invoker.observability import BatchObservations
from invoker.records import RecordInfo
from invoker.writing import ResultWritten
from moto import mock_aws

from tests.unit.jobs_support import PREFIX, JobsWorld, plenty

if TYPE_CHECKING:
    from collections.abc import Iterator

GOOD = '{"body": {"x": %d}}'


@pytest.fixture
def world() -> Iterator[JobsWorld]:
    with mock_aws():
        yield JobsWorld()


def ledger(world: JobsWorld) -> RequestLedger:
    return RequestLedger(
        LedgerSettings(table="ledger", key_prefix=PREFIX, dedupe_seconds=86_400, expire_days=30),
        world.dynamodb,
        endpoint_name="demo-classifier",
    )


def end_line(
    world: JobsWorld, book: RequestLedger, message: dict[str, Any], outcome: Outcome, *, late: bool = False
) -> None:
    """What the invoker function does with one job request: claim it, then record how it ended (a late
    writer: a delivery whose claim was taken over writes its outcome again)."""
    info = RecordInfo(
        f"m-{message['line']}", 1, "arn", None, message["requestId"], message["jobId"], message["line"]
    )
    observed = BatchObservations("demo-classifier")
    request = parse_envelope(json.dumps(message), info.message_id, None)
    claim = None if late else book.claim(info, request, remaining_ms=60_000, redrive=False, observed=observed)
    book.record(info, outcome, claim=claim, observed=observed)
    book.drain(observed, None)


def delivered(line: int) -> Outcome:
    document = json.dumps({"requestId": f"j:{line}", "body": {"y": line * 2}})
    return Outcome(LedgerState.DELIVERED, result=ResultWritten(queue_message_id="r", document=document))


def failed(reason: Reason) -> Outcome:
    return Outcome(LedgerState.DEAD_LETTERED, reason=reason, error=f"{reason.value} said the model")


def test_a_lines_end_counts_once_on_its_job(world: JobsWorld) -> None:
    # GIVEN a split job of 3 lines
    world.submit("j", [GOOD % n for n in range(3)])
    world.splitter.split("j", plenty)
    sent = world.drain(world.requests)
    book = ledger(world)
    # WHEN the function ends them (one delivered, one model error), and a late writer repeats the first end
    end_line(world, book, sent[0], delivered(1))
    end_line(world, book, sent[1], failed(Reason.MODEL_ERROR))
    end_line(world, book, sent[0], delivered(1), late=True)
    # THEN each end counted once, by outcome
    job = world.table.get("j")
    assert job[J.ENDED] == 2
    assert job[J.COUNTS] == {"succeeded": 1, "model_error": 1}


def test_the_output_is_in_input_order_with_results_errors_and_the_input(world: JobsWorld) -> None:
    # GIVEN a job of 30 lines joined with its input, one of them bad, ended in a shuffled order
    lines = [GOOD % n for n in range(30)]
    lines[6] = "not json"
    world.submit("j", lines, join="input")
    world.splitter.split("j", plenty)
    sent = world.drain(world.requests)
    random.Random(3).shuffle(sent)
    book = ledger(world)
    for message in sent:
        n = message["line"]
        end_line(world, book, message, failed(Reason.MODEL_ERROR) if n % 10 == 0 else delivered(n))
    # WHEN the watch finds every line ended
    world.controller.handle(ControlMessage(Kind.WATCH, "j"), plenty)
    # THEN one output line per input line, in order, each its result or its error, with its input
    output = world.output("j")
    assert [record["line"] for record in output] == list(range(1, 31))
    for record in output:
        n = record["line"]
        if n == 7:
            assert (record["status"], record["reason"], record["input"]) == (
                "failed",
                "invalid_message",
                "not json",
            )
        elif n % 10 == 0:
            assert (record["status"], record["reason"]) == ("failed", "model_error")
            assert record["input"] == {"body": {"x": n - 1}}
        else:
            assert record["status"] == "succeeded"
            assert record["result"]["body"] == {"y": n * 2}
            assert record["input"] == {"body": {"x": n - 1}}
    # AND the job partially failed, with its manifest's counts and one event on the default bus
    job = world.table.get("j")
    assert job[J.STATE] == JobState.PARTIALLY_FAILED
    manifest = json.loads(world.s3.get_object(Bucket="results-bucket", Key=job[J.MANIFEST])["Body"].read())
    assert manifest["counts"] == {"invalid_message": 1, "model_error": 3, "succeeded": 26}


def test_the_watch_waits_until_every_line_has_ended(world: JobsWorld) -> None:
    # GIVEN a split job with one line still in flight
    world.submit("j", [GOOD % n for n in range(2)])
    world.splitter.split("j", plenty)
    sent = world.drain(world.requests)
    end_line(world, ledger(world), sent[0], delivered(1))
    # WHEN the watch looks
    world.controller.handle(ControlMessage(Kind.WATCH, "j"), plenty)
    # THEN nothing is assembled; it will look again later (after JOB_WATCH_SECONDS)
    assert world.table.get("j")[J.STATE] == JobState.RUNNING
    time.sleep(1.1)
    assert world.drain(world.control) == [{"kind": "watch", "jobId": "j"}]


class FakeS3:
    def __init__(self) -> None:
        self.parts: list[int] = []
        self.completed: list[dict[str, Any]] = []
        self.aborted = 0

    def create_multipart_upload(self, **_kw: Any) -> dict[str, Any]:
        return {"UploadId": "u"}

    def upload_part(self, *, Body: bytes, PartNumber: int, **_kw: Any) -> dict[str, Any]:
        self.parts.append(len(Body))
        return {"ETag": f"e{PartNumber}"}

    def complete_multipart_upload(self, *, MultipartUpload: dict[str, Any], **_kw: Any) -> None:
        self.completed.append(MultipartUpload)

    def abort_multipart_upload(self, **_kw: Any) -> None:
        self.aborted += 1


def test_parts_are_at_least_the_part_size_but_the_last() -> None:
    # GIVEN a writer with 100-byte parts
    s3: Any = FakeS3()
    # WHEN 57 lines of 9 bytes are written
    with MultipartWriter(s3, "b", "k", part_bytes=100, content_type="x") as writer:
        for _ in range(57):
            writer.write(b"12345678\n")
    # THEN every part but the last is at least 100 bytes, nothing is lost, the parts are numbered in order
    assert all(size >= 100 for size in s3.parts[:-1])
    assert sum(s3.parts) == 57 * 9
    assert [p["PartNumber"] for p in s3.completed[0]["Parts"]] == list(range(1, len(s3.parts) + 1))


def test_a_failed_assembly_aborts_its_upload() -> None:
    # GIVEN a writer that has uploaded a part
    s3: Any = FakeS3()

    def write_then_fail() -> None:
        with MultipartWriter(s3, "b", "k", part_bytes=10, content_type="x") as writer:
            writer.write(b"x" * 20)
            raise RuntimeError("boom")

    # WHEN the writing fails, THEN the upload is aborted, never completed
    with pytest.raises(RuntimeError):
        write_then_fail()
    assert (s3.aborted, s3.completed) == (1, [])


def test_a_jobid_that_is_no_job_of_the_route_counts_nothing_and_fails_nothing(world: JobsWorld) -> None:
    # GIVEN a producer's own request carrying a jobId that names no job of the route
    book = ledger(world)
    message = {"requestId": "own-1", "jobId": "not-ours", "line": 1, "body": {"x": 1}}
    info = RecordInfo("m-own", 1, "arn", None, "own-1", "not-ours", 1)
    observed = BatchObservations("demo-classifier")
    claim = book.claim(
        info,
        parse_envelope(json.dumps(message), "m-own", None),
        remaining_ms=60_000,
        redrive=False,
        observed=observed,
    )
    # WHEN it is delivered
    book.record(info, delivered(1), claim=claim, observed=observed)
    counts = book.drain(observed, None)
    # THEN no job item appears and no ledger failure is counted
    assert counts["failures"] == 0
    assert "Item" not in world.dynamodb.get_item(
        TableName="ledger", Key={"pk": {"S": PREFIX + "job/not-ours"}}
    )
