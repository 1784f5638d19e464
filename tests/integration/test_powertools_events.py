"""Events nobody here wrote (Powertools' own SQS fixtures), and a dead-letter copy at SQS's real size
limit, through the real lambda_handler against moto and the SageMaker Runtime emulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec, SageMakerEmulator
from tests.factories import FakeContext
from tests.integration.function_harness import (
    DEAD_LETTER_BUCKET,
    FunctionRun,
    moto_server,
    reset_moto,
    start_function,
)

ENDPOINT = "demo-classifier"
FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "powertools").glob("*.json"))
SQS_LIMIT = 1_048_576
OUTCOMES = {"delivered", "retry later", "dead-lettered"}


@pytest.fixture(scope="module")
def aws_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def emulator() -> Iterator[SageMakerEmulator]:
    with SageMakerEmulator([EndpointSpec(name=ENDPOINT, container="inline")], port=0) as emu:
        emu.wait_ready(ENDPOINT, timeout=30)
        yield emu


@pytest.fixture
def run_function(
    aws_url: str, emulator: SageMakerEmulator, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., FunctionRun]:
    reset_moto(aws_url)
    emulator.reset(ENDPOINT)

    def start(**kwargs: Any) -> FunctionRun:
        return start_function(monkeypatch, aws_url, emulator.url, **kwargs)

    return start


def emf_totals(stdout: str) -> dict[str, float]:
    """Succeeded/Retried/DeadLettered summed over the batch documents (not the per-reason ones)."""
    totals = {"Succeeded": 0.0, "Retried": 0.0, "DeadLettered": 0.0}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" not in document or "reason" in document:
            continue
        for name in totals:
            value = document.get(name, 0)
            totals[name] += sum(value) if isinstance(value, list) else value
    return totals


def test_the_fixtures_are_here_with_their_licence() -> None:
    assert {path.name for path in FIXTURES} >= {"sqsEvent.json", "sqsDlqTriggerEvent.json"}
    assert "MIT No Attribution" in (FIXTURES[0].parent / "LICENSE").read_text()


@pytest.mark.parametrize("message_format", ["envelope", "raw"])
@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: path.stem)
def test_every_record_of_a_powertools_event_ends_in_a_logged_counted_disposition(
    fixture: Path,
    message_format: str,
    run_function: Callable[..., FunctionRun],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an SQS event as Powertools' own tests have it (foreign queues, odd attributes)
    event = json.loads(fixture.read_text())
    records = event["Records"]
    fn = run_function(MESSAGE_FORMAT=message_format)
    # WHEN the real handler takes it
    response = fn.handler.lambda_handler(event, FakeContext())
    # THEN every record has exactly one outcome line, with a reason unless delivered
    outcomes = [r for r in caplog.records if r.getMessage() in OUTCOMES]
    assert sorted(r.message_id for r in outcomes) == sorted(r["messageId"] for r in records)  # type: ignore[attr-defined]
    for line in outcomes:
        assert line.getMessage() == "delivered" or line.reason  # type: ignore[attr-defined]
    # AND the reported failures are exactly the records logged as coming back
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {r.message_id for r in outcomes if r.getMessage() == "retry later"}  # type: ignore[attr-defined]
    # AND the batch's metrics count every record once
    totals = emf_totals(capsys.readouterr().out)
    assert sum(totals.values()) == len(records)
    # AND whatever was dead-lettered kept its reason on the copy
    for dead in fn.dead_letters():
        assert dead["MessageAttributes"]["invoker.reason"]["StringValue"]


def test_a_body_at_the_size_limit_is_dead_lettered_behind_a_pointer(
    run_function: Callable[..., FunctionRun], emulator: SageMakerEmulator
) -> None:
    # GIVEN a function whose SQS client refuses, as AWS does, a message over 1 MiB counting its
    # attributes (moto counts only the body)
    fn = run_function()
    refused: list[int] = []

    def enforce_limit(params: dict[str, Any], **_: Any) -> None:
        for entry in params.get("Entries", []):
            size = len(entry["MessageBody"].encode())
            for name, value in (entry.get("MessageAttributes") or {}).items():
                data = value.get("StringValue", value.get("BinaryValue", b""))
                size += len(name.encode()) + len(value["DataType"].encode())
                size += len(data.encode() if isinstance(data, str) else data)
            if size > SQS_LIMIT:
                refused.append(size)
                raise ValueError(f"message of {size} bytes refused")

    fn.handler.sqs_client.meta.events.register("provide-client-params.sqs.SendMessageBatch", enforce_limit)
    # AND a request of 1 MiB minus 64 bytes (non-ASCII text) that the model will reject
    head, tail = '{"bodyText": "', '"}'
    room = SQS_LIMIT - 64 - len(head) - len(tail)
    body = head + "é" * (room // 2) + "x" * (room % 2) + tail
    assert len(body.encode()) == SQS_LIMIT - 64
    emulator.inject(ENDPOINT, "model_error", count=1, original_status_code=400)
    message_id = fn.send(body)
    # WHEN processed
    assert fn.poll_once()["batchItemFailures"] == []
    # THEN nothing was ever refused, and the DLQ holds a pointer letter with its reason
    assert refused == []
    [dead] = fn.dead_letters()
    attributes = {name: value.get("StringValue") for name, value in dead["MessageAttributes"].items()}
    assert attributes["invoker.reason"] == "model_error"
    uri = attributes["invoker.body_s3_uri"]
    assert uri == f"s3://{DEAD_LETTER_BUCKET}/dead-letters/{message_id}.body"
    assert json.loads(dead["Body"]) == {"invokerBodyS3Uri": uri}
    # AND the object holds the exact original bytes
    stored = fn.s3.get_object(Bucket=DEAD_LETTER_BUCKET, Key=uri.split("/", 3)[3])["Body"].read()
    assert stored == body.encode()
