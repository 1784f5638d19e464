"""Events nobody here wrote (Powertools' own SQS fixtures), and a dead-letter copy at SQS's real size
limit, through the real lambda_handler against moto and the SageMaker Runtime emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sqs_sagemaker_invoker.local.stand_ins import LambdaContext
from tests.support.function_harness import DEAD_LETTER_BUCKET, ENDPOINT, FunctionRun

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.local.sagemaker import SageMakerEmulator

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "powertools").glob("*.json"))
SQS_LIMIT = 1_048_576
OUTCOMES = {"delivered", "retry later", "dead-lettered"}


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
    response = fn.handler.lambda_handler(event, LambdaContext.starting_now())
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
