"""The request ledger: its state machine as DynamoDB evaluates it (moto in-process, no sockets), and what
it does to messages through the whole processor: one invocation and one result per request, duplicates
acknowledged, a request held elsewhere coming back, a dead instance's claim expiring, and a ledger that
fails never costing a message."""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError
from invoker.backoff import Pacing
from invoker.config import load_config
from invoker.contract import LedgerAttribute as A
from invoker.contract import LedgerState
from invoker.envelope import parse_envelope
from invoker.ledger_states import ALLOWED_FROM, Claim, transition_condition
from invoker.observability import BatchObservations
from invoker.processor import Clients, build_processor
from invoker.records import RecordInfo
from moto import mock_aws

from sqs_sagemaker_invoker.local.stand_ins import LambdaContext, sqs_event, sqs_record
from tests.support.factories import function_env
from tests.unit.fakes import FakeRuntime, FakeS3, FakeSqs, ok_response, service_error

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "ledger"
PREFIX = "demo/"
RESULTS = function_env()["RESULTS_QUEUE_URL"]
DLQ = function_env()["DEAD_LETTER_QUEUE_URL"]
DAY = 86_400
_ids = itertools.count()


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    with mock_aws():
        client: DynamoDBClient = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": A.KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": A.KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class LedgerHarness:
    """One function instance (processor) on a route with a ledger, fakes for SageMaker and SQS."""

    def __init__(
        self,
        dynamodb: Any,
        runtime: FakeRuntime | None = None,
        *,
        clock: Clock | None = None,
        sqs: FakeSqs | None = None,
        **env: str,
    ) -> None:
        settings = {"LEDGER_TABLE": TABLE, "LEDGER_KEY_PREFIX": PREFIX, **env}
        self.config = load_config(function_env(**settings))
        self.runtime = runtime or FakeRuntime()
        self.sqs = sqs or FakeSqs()
        self.s3 = FakeS3()
        self.stream: list[tuple[str, dict[str, Any]]] = []
        self.processor = build_processor(
            self.config,
            Clients(runtime=self.runtime, sqs=self.sqs, s3=lambda: self.s3, ledger_dynamodb=dynamodb),  # type: ignore[arg-type,return-value]
            logger=_ListLogger(self.stream),
            pacing=Pacing(random.Random(7), sleep=lambda _s: None),
        )
        self.ledger = self.processor._messages.ledger
        assert self.ledger is not None
        self.clock = clock or Clock()
        self.ledger.clock = self.clock

    def run(self, *records: dict[str, Any], timeout_ms: int = 180_000) -> set[str]:
        response = process_partial_response(
            event=sqs_event(records),
            record_handler=self.processor.handle,
            processor=self.processor,
            context=LambdaContext.starting_now(timeout_ms),  # type: ignore[arg-type]
        )
        return {str(failure["itemIdentifier"]) for failure in response["batchItemFailures"]}

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.sqs.bodies(RESULTS)]

    def lines(self, message: str) -> list[dict[str, Any]]:
        return [fields for text, fields in self.stream if text.startswith(message)]


class _ListLogger:
    def __init__(self, sink: list[tuple[str, dict[str, Any]]]) -> None:
        self._sink = sink

    def __getattr__(self, _level: str) -> Any:
        return lambda message, extra=None, **_kw: self._sink.append((message, dict(extra or {})))


def item(dynamodb: Any, request_id: str) -> dict[str, Any]:
    found = dynamodb.get_item(TableName=TABLE, Key={A.KEY: {"S": PREFIX + request_id}}, ConsistentRead=True)
    found_item: dict[str, Any] = found.get("Item", {})
    return found_item


def state_of(dynamodb: Any, request_id: str) -> str | None:
    state: str | None = item(dynamodb, request_id).get(A.STATE, {}).get("S")
    return state


def timeline(dynamodb: Any, request_id: str) -> list[tuple[str, str | None]]:
    entries = item(dynamodb, request_id).get(A.TIMELINE, {}).get("L", [])
    return [(e["M"]["s"]["S"], e["M"].get("r", {}).get("S")) for e in entries]


def claim_directly(
    harness: LedgerHarness, record: dict[str, Any], request_id: str, *, remaining_ms: int
) -> Claim | None:
    """What an instance does before it calls the endpoint: claim the request (and then, here, die)."""
    assert harness.ledger is not None
    info = RecordInfo.of(SQSRecord(record))
    info.request_id = request_id
    request = parse_envelope(record["body"], record["messageId"], None)
    return harness.ledger.claim(
        info, request, remaining_ms=remaining_ms, redrive=False, observed=BatchObservations()
    )


def envelope(request_id: str, **extra: Any) -> dict[str, Any]:
    return {"requestId": request_id, "body": {"x": 1}, **extra}


def new_id() -> str:
    return f"req-{next(_ids)}"


# -- the state machine, as DynamoDB evaluates the condition -----------------------------------------------

# The starting points, each with what the guards see: (state, claim expired?, claim ours?, ended how long
# before now, in seconds).
_NOW = 1_800_000_000.0
STARTS: dict[str, tuple[LedgerState | None, dict[str, Any]]] = {
    "none": (None, {}),
    "received": (LedgerState.RECEIVED, {}),
    "retrying": (LedgerState.RETRYING, {}),
    "invoking_foreign_live": (LedgerState.INVOKING, {"until": _NOW + 60, "token": "theirs"}),
    "invoking_foreign_expired": (LedgerState.INVOKING, {"until": _NOW - 1, "token": "theirs"}),
    "invoking_ours_live": (LedgerState.INVOKING, {"until": _NOW + 60, "token": "mine"}),
    "delivered_recent": (LedgerState.DELIVERED, {"ended_ago": 60}),
    "delivered_old": (LedgerState.DELIVERED, {"ended_ago": DAY + 1}),
    "dead_lettered_recent": (LedgerState.DEAD_LETTERED, {"ended_ago": 60}),
    "dead_lettered_old": (LedgerState.DEAD_LETTERED, {"ended_ago": DAY + 1}),
}


def expected(start: str, target: LedgerState, *, redrive: bool) -> bool:
    """The rules of docs/function.md, written out independently of the ledger's table."""
    state, facts = STARTS[start]
    if target is LedgerState.RECEIVED:
        return state is None
    if state in (None, LedgerState.RECEIVED, LedgerState.RETRYING):
        return True
    if state is LedgerState.INVOKING:
        return bool(facts["until"] < _NOW or facts["token"] == "mine")
    # ended: only a new invocation, and only after the window (or a dead letter's redrive)
    if target is not LedgerState.INVOKING:
        return False
    if state is LedgerState.DEAD_LETTERED and redrive:
        return True
    return bool(facts["ended_ago"] > DAY)


CASES = [
    (start, target, redrive)
    for start in STARTS
    for target in LedgerState
    for redrive in (False, True)
    if not redrive or target is LedgerState.INVOKING
]


@pytest.mark.parametrize(
    ("start", "target", "redrive"),
    CASES,
    ids=[f"{s}-{t.value}-{'redrive' if r else 'plain'}" for s, t, r in CASES],
)
def test_every_transition_is_allowed_or_refused_by_the_condition(
    dynamodb: Any, start: str, target: LedgerState, redrive: bool
) -> None:
    # GIVEN an item in the starting state (or none)
    state, facts = STARTS[start]
    key = {A.KEY: {"S": f"{PREFIX}{start}"}}
    if state is not None:
        seeded: dict[str, Any] = {**key, A.STATE: {"S": state.value}}
        if "until" in facts:
            seeded[A.CLAIM_UNTIL] = {"N": str(facts["until"])}
            seeded[A.CLAIM_TOKEN] = {"S": facts["token"]}
        if "ended_ago" in facts:
            seeded[A.ENDED_AT] = {"N": str(int((_NOW - facts["ended_ago"]) * 1000))}
        dynamodb.put_item(TableName=TABLE, Item=seeded)
    # WHEN a write to the target state is conditioned as the ledger conditions it
    claim = Claim(key[A.KEY]["S"], "mine", _NOW + 60)
    condition, values = transition_condition(
        target, now=_NOW, dedupe_seconds=DAY, claim=claim, redrive=redrive
    )
    names = {
        token: token[1:]
        for token in ("#pk", "#state", "#claimUntil", "#claimToken", "#endedAt")
        if token in condition
    }
    names["#state"] = A.STATE
    try:
        dynamodb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #state = :target",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":target": {"S": target.value}},
        )
        accepted = True
    except ClientError as exc:
        refused_by: str | None = exc.response["Error"]["Code"]
        accepted = False
    else:
        refused_by = None
    assert refused_by in (None, "ConditionalCheckFailedException")
    # THEN DynamoDB accepts exactly the allowed moves
    assert accepted is expected(start, target, redrive=redrive)


def test_the_table_names_every_state() -> None:
    assert set(ALLOWED_FROM) == set(LedgerState)


# -- through the processor ---------------------------------------------------------------------------------


def test_a_delivered_request_is_recorded_with_its_timeline_job_and_result(dynamodb: Any) -> None:
    # GIVEN a route with a ledger
    harness = LedgerHarness(dynamodb)
    request_id = new_id()
    # WHEN a request of a job is delivered
    failures = harness.run(sqs_record(envelope(request_id, jobId="job-7", line=42), receive_count=1))
    # THEN its item says delivered, where the result is, and which job and line it was
    assert failures == set()
    found = item(dynamodb, request_id)
    assert found[A.STATE]["S"] == "delivered"
    assert timeline(dynamodb, request_id) == [("invoking", None), ("delivered", None)]
    assert found[A.RESULT_MESSAGE_ID]["S"] == "results-0"
    assert found[A.JOB_ID]["S"] == "job-7"
    assert found[A.LINE]["N"] == "42"
    assert found[A.ENDPOINT]["S"] == "demo-classifier"
    assert found[A.RECEIVE_COUNT]["N"] == "1"
    assert A.CLAIM_TOKEN not in found
    assert A.ENDED_AT in found
    assert int(found[A.EXPIRES_AT]["N"]) == int(harness.clock.now) + 30 * DAY


def test_a_duplicate_sqs_delivery_is_acknowledged_without_a_second_invocation_or_result(
    dynamodb: Any,
) -> None:
    # GIVEN a message that was delivered
    harness = LedgerHarness(dynamodb)
    request_id = new_id()
    first = sqs_record(envelope(request_id), message_id="0000000a-0000-4000-8000-00000000000b")
    assert harness.run(first) == set()
    # WHEN SQS delivers the same message again (at least once)
    again = sqs_record(envelope(request_id), message_id=first["messageId"], receive_count=2)
    failures = harness.run(again)
    # THEN it is acknowledged, the endpoint was called once, and there is one result
    assert failures == set()
    assert len(harness.runtime.calls) == 1
    assert len(harness.results()) == 1
    [line] = harness.lines("duplicate")
    assert line["original_state"] == "delivered"
    assert line["result_message_id"] == "results-0"
    assert harness.lines("batch done")


def test_a_producers_resend_after_delivery_is_not_paid_for_twice(dynamodb: Any) -> None:
    # GIVEN a delivered request
    harness = LedgerHarness(dynamodb)
    request_id = new_id()
    assert harness.run(sqs_record(envelope(request_id))) == set()
    # WHEN the producer sends a second message with the same requestId, a minute later
    harness.clock.now += 60
    failures = harness.run(sqs_record(envelope(request_id)))
    # THEN no second invocation and no second result
    assert failures == set()
    assert len(harness.runtime.calls) == 1
    assert len(harness.results()) == 1
    assert state_of(dynamodb, request_id) == "delivered"


def test_after_the_dedupe_window_a_resend_is_a_new_request(dynamodb: Any) -> None:
    # GIVEN a request delivered more than LEDGER_DEDUPE_SECONDS ago
    harness = LedgerHarness(dynamodb, LEDGER_DEDUPE_SECONDS="3600")
    request_id = new_id()
    assert harness.run(sqs_record(envelope(request_id))) == set()
    harness.clock.now += 3601
    # WHEN it is sent again
    assert harness.run(sqs_record(envelope(request_id))) == set()
    # THEN it is invoked and delivered again
    assert len(harness.runtime.calls) == 2
    assert len(harness.results()) == 2
    states = [s for s, _ in timeline(dynamodb, request_id)]
    assert states == ["invoking", "delivered", "invoking", "delivered"]


def test_a_dead_lettered_request_is_a_duplicate_but_its_redrive_is_invoked(dynamodb: Any) -> None:
    # GIVEN a request the model refused (dead-lettered)
    calls = itertools.count()

    def refuse_first(_i: int, _kw: dict[str, Any]) -> dict[str, Any]:
        if next(calls) == 0:
            raise service_error("ModelError", "bad input", OriginalStatusCode=400)
        return ok_response()

    harness = LedgerHarness(dynamodb, FakeRuntime(refuse_first))
    request_id = new_id()
    assert harness.run(sqs_record(envelope(request_id))) == set()
    found = item(dynamodb, request_id)
    assert found[A.STATE]["S"] == "dead_lettered"
    assert found[A.REASON]["S"] == "model_error"
    assert found[A.DEAD_LETTER_MESSAGE_ID]["S"] == "requests-dlq-0"
    # WHEN the producer resends it: a duplicate of the dead-lettered request
    assert harness.run(sqs_record(envelope(request_id))) == set()
    assert len(harness.runtime.calls) == 1
    assert harness.lines("duplicate")[0]["original_reason"] == "model_error"
    # AND WHEN an operator redrives the letter (the CLI sets invoker.redrive_count)
    redriven = sqs_record(
        envelope(request_id),
        message_attributes={"invoker.redrive_count": {"stringValue": "1", "dataType": "Number"}},
    )
    assert harness.run(redriven) == set()
    # THEN that one is invoked and delivered
    assert len(harness.runtime.calls) == 2
    assert state_of(dynamodb, request_id) == "delivered"


def test_a_retry_is_recorded_with_its_reason(dynamodb: Any) -> None:
    harness = LedgerHarness(
        dynamodb, FakeRuntime(lambda _i, _kw: (_ for _ in ()).throw(service_error("ModelNotReadyException")))
    )
    request_id = new_id()
    record = sqs_record(envelope(request_id))
    assert harness.run(record) == {record["messageId"]}
    assert state_of(dynamodb, request_id) == "retrying"
    assert timeline(dynamodb, request_id) == [("invoking", None), ("retrying", "model_not_ready")]
    assert A.CLAIM_TOKEN not in item(dynamodb, request_id)


def test_a_request_held_elsewhere_comes_back_later_without_being_invoked(dynamodb: Any) -> None:
    # GIVEN another instance holding the request (an unexpired claim)
    other = LedgerHarness(dynamodb)
    request_id = new_id()
    first = sqs_record(envelope(request_id))
    claim = claim_directly(other, first, request_id, remaining_ms=120_000)
    assert claim is not None
    # WHEN this instance receives a second message for it
    harness = LedgerHarness(dynamodb, clock=other.clock)
    second = sqs_record(envelope(request_id))
    failures = harness.run(second)
    # THEN it goes back to the queue with in_progress_elsewhere, uninvoked, and the holder's item is untouched
    assert failures == {second["messageId"]}
    assert harness.runtime.calls == []
    [line] = harness.lines("retry later")
    assert line["reason"] == "in_progress_elsewhere"
    assert harness.sqs.visibility[0]["VisibilityTimeout"] >= 0
    assert item(dynamodb, request_id)[A.CLAIM_TOKEN]["S"] == claim.token


def test_a_dead_instances_claim_expires_and_then_one_delivery_invokes(dynamodb: Any) -> None:
    # GIVEN an instance that claimed a request and died before finishing (its Lambda had 60 s left)
    clock = Clock()
    dead = LedgerHarness(dynamodb, clock=clock)
    request_id = new_id()
    record = sqs_record(envelope(request_id))
    assert claim_directly(dead, record, request_id, remaining_ms=60_000) is not None
    assert state_of(dynamodb, request_id) == "invoking"
    survivor = LedgerHarness(dynamodb, clock=clock)
    # WHEN the message comes back before the claim expires: it waits
    again = sqs_record(envelope(request_id), message_id=record["messageId"], receive_count=2)
    assert survivor.run(again) == {again["messageId"]}
    assert survivor.runtime.calls == []
    # AND WHEN it comes back after the dead instance's time is up
    clock.now += 61
    last = sqs_record(envelope(request_id), message_id=record["messageId"], receive_count=3)
    assert survivor.run(last) == set()
    # THEN it is invoked once and delivered
    assert len(survivor.runtime.calls) == 1
    assert len(survivor.results()) == 1
    assert state_of(dynamodb, request_id) == "delivered"


def test_two_messages_of_one_request_in_one_batch_invoke_once(dynamodb: Any) -> None:
    # GIVEN two messages with the same requestId in one batch, racing in two threads (DynamoDB applies
    # the writes of one item one at a time; moto in-process does not, so the test serialises them)
    harness = LedgerHarness(_Serialized(dynamodb), FakeRuntime(delay=0.05))
    request_id = new_id()
    a, b = sqs_record(envelope(request_id)), sqs_record(envelope(request_id))
    # WHEN processed
    failures = harness.run(a, b)
    # THEN one was invoked and delivered, the other comes back (then it is a duplicate)
    assert len(harness.runtime.calls) == 1
    assert len(failures) == 1
    [back] = [r for r in (a, b) if r["messageId"] in failures]
    assert (
        harness.run(sqs_record(envelope(request_id), message_id=back["messageId"], receive_count=2)) == set()
    )
    assert len(harness.runtime.calls) == 1
    assert len(harness.results()) == 1


class _Serialized:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def update_item(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._client.update_item(**kwargs)


class _BrokenDynamoDB:
    """A DynamoDB that answers every call with an error (throttled, or the table gone)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.calls = 0

    def update_item(self, **_kw: Any) -> Any:
        self.calls += 1
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "UpdateItem")


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ResourceNotFoundException", "AccessDeniedException"]
)
def test_a_failing_ledger_never_loses_a_message(code: str) -> None:
    # GIVEN a ledger whose every write fails
    broken = _BrokenDynamoDB(code)
    harness = LedgerHarness(broken)
    ok, refused = sqs_record(envelope(new_id())), sqs_record(envelope(new_id()))
    harness.runtime.behaviour = lambda i, kw: (
        ok_response()
        if b'"x":1' in kw["Body"] and i == 0
        else (_ for _ in ()).throw(service_error("ModelError"))
    )
    # WHEN a batch runs
    failures = harness.run(ok, refused)
    # THEN each message has the outcome it would have had without a ledger
    assert failures == set()
    assert len(harness.results()) == 1
    assert len(harness.sqs.sent.get(DLQ, [])) == 1
    # AND every failed write is logged with its error code, and counted
    failed = harness.lines("ledger write failed")
    assert broken.calls == 4  # two claims, two outcomes
    assert {line["error_code"] for line in failed} == {code}
    assert {line["ledger_write"] for line in failed} == {"claim", "delivered", "dead_lettered"}


def test_a_route_without_a_ledger_needs_no_client_and_has_none() -> None:
    # GIVEN no LEDGER_TABLE WHEN the processor is built without a DynamoDB client
    config = load_config(function_env(LEDGER_DEDUPE_SECONDS="not even read"))
    processor = build_processor(
        config,
        Clients(runtime=FakeRuntime(), sqs=FakeSqs(), s3=FakeS3),  # type: ignore[arg-type]
        logger=logging.getLogger("t"),
    )
    # THEN there is no ledger
    assert config.ledger is None
    assert processor._messages.ledger is None


_PROBE = """
import json, invoker.handler as handler
print(json.dumps({"dynamodb": handler.ledger_dynamodb_client is not None, "modules": sorted(m for m in __import__("sys").modules if "dynamodb" in m)}))
"""


@pytest.mark.parametrize("ledger", [False, True])
def test_the_handler_builds_a_dynamodb_client_only_for_a_ledger(ledger: bool) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ENDPOINT_", "RESULTS_", "MAX_", "LEDGER_"))
    }
    env.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", **function_env()
    )
    if ledger:
        env.update(LEDGER_TABLE=TABLE, LEDGER_KEY_PREFIX=PREFIX)
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=False
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["dynamodb"] is ledger


def test_a_ledger_without_its_key_prefix_fails_the_cold_start_naming_it() -> None:
    from invoker.config import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match="LEDGER_KEY_PREFIX is required"):
        load_config(function_env(LEDGER_TABLE=TABLE))
    with pytest.raises(ConfigError, match="LEDGER_DEDUPE_SECONDS"):
        load_config(function_env(LEDGER_TABLE=TABLE, LEDGER_KEY_PREFIX=PREFIX, LEDGER_DEDUPE_SECONDS="-1"))
