"""The request ledger through the real handler: moto's DynamoDB server, the SageMaker Runtime emulator,
messages received and deleted as the event source mapping does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from invoker.contract import LedgerAttribute as A

from tests.support.function_harness import ENDPOINT, REGION

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from sqs_sagemaker_invoker.local.sagemaker import SageMakerEmulator
    from sqs_sagemaker_invoker.local.stand_ins import MotoServer
    from tests.support.function_harness import FunctionRun

TABLE = "function-ledger"


def _ledger(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.url)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": A.KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": A.KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def test_a_resent_request_is_invoked_once_and_answered_once(
    run_function: Callable[..., FunctionRun],
    moto: MotoServer,
    emulator: SageMakerEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the real handler on a route with a ledger
    dynamodb = _ledger(moto, monkeypatch)
    run = run_function(LEDGER_TABLE=TABLE, LEDGER_KEY_PREFIX="demo/")
    # WHEN a request is delivered, then the producer sends it again, and SQS delivers that one twice
    run.send({"requestId": "order-1", "body": {"instances": [[1, 2, 3, 4]]}, "jobId": "job-1", "line": 3})
    assert run.poll_once()["batchItemFailures"] == []
    resent = {"requestId": "order-1", "body": {"instances": [[1, 2, 3, 4]]}}
    run.send(resent)
    run.send(resent)
    assert run.poll_once()["batchItemFailures"] == []
    # THEN the endpoint was called once, one result is on the results queue, nothing waits on the queue
    assert emulator.stats(ENDPOINT)["total"] == 1
    [result] = run.results()
    assert result["requestId"] == "order-1"
    assert run.remaining() == 0
    # AND the ledger says delivered, with the result's message id and the job
    item = dynamodb.get_item(TableName=TABLE, Key={A.KEY: {"S": "demo/order-1"}})["Item"]
    assert item[A.STATE]["S"] == "delivered"
    assert item[A.RESULT_MESSAGE_ID]["S"]
    assert (item[A.JOB_ID]["S"], item[A.LINE]["N"]) == ("job-1", "3")
    assert [e["M"]["s"]["S"] for e in item[A.TIMELINE]["L"]] == ["invoking", "delivered"]


def test_without_a_ledger_table_the_function_still_delivers(
    run_function: Callable[..., FunctionRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a route whose ledger table is missing (deleted, or a wrong name): every ledger call fails
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")  # nothing listens there
    run = run_function(LEDGER_TABLE="no-such-table", LEDGER_KEY_PREFIX="demo/")
    # WHEN a request comes
    run.send({"requestId": "order-2", "bodyText": "x", "contentType": "text/plain"})
    # THEN it is delivered all the same
    assert run.poll_once()["batchItemFailures"] == []
    assert [r["requestId"] for r in run.results()] == ["order-2"]
