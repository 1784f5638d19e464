"""The real Lambda handler (`invoker.handler.lambda_handler`) against a fake endpoint and a fake SQS:
whatever the event or the message, it never raises for an SQS batch, and a message that cannot succeed
is dead-lettered as `invalid_message` on its first receive, without an endpoint call."""

from __future__ import annotations

import importlib
import json
import logging
import random
import re
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoker.backoff import Pacing
from invoker.config import load_config
from invoker.envelope import parse_envelope
from invoker.events import NotAnSqsEvent
from invoker.outcomes import InvalidMessage
from invoker.processor import Clients, build_processor

from sqs_sagemaker_invoker.local.stand_ins import LambdaContext, sqs_event, sqs_record
from tests.support.factories import function_env
from tests.unit.fakes import FakeRuntime, FakeSqs
from tests.unit.test_envelope_properties import MODEL, json_texts, member_values, texts, valid_member

ENV = function_env()
DLQ = ENV["DEAD_LETTER_QUEUE_URL"]
RESULTS = ENV["RESULTS_QUEUE_URL"]
# SQS accepts only these characters in a body or attribute value: nothing else can reach the handler.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def deliverable(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.map(lambda text: _NOT_SQS_TEXT.sub("", text))


pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def handler() -> Iterator[ModuleType]:
    """The handler module, cold-started with a valid configuration (its clients are never called)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**ENV, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
                            "AWS_SECRET_ACCESS_KEY": "x"}.items():  # fmt: skip
            patch.setenv(name, value)
        module = sys.modules.get("invoker.handler") or importlib.import_module("invoker.handler")
        yield module


class Route:
    """The handler module wired to fakes: its own `lambda_handler`, a processor built the way it builds one."""

    def __init__(self, handler: ModuleType, monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
        self.handler = handler
        self.runtime = FakeRuntime()
        self.sqs = FakeSqs()
        config = load_config(function_env(**env))
        processor = build_processor(
            config,
            Clients(runtime=self.runtime, sqs=self.sqs, s3=lambda: pytest.fail("S3 not expected")),  # type: ignore[arg-type]
            logger=logging.getLogger("test"),
            metrics=handler.metrics,
            pacing=Pacing(random.Random(7), sleep=lambda _s: None),
        )
        monkeypatch.setattr(handler, "processor", processor)

    def receive(self, record: dict[str, Any]) -> dict[str, Any]:
        """One first receive of `record`; returns the handler's response."""
        self.runtime.calls.clear()
        self.sqs.sent.clear()
        response: dict[str, Any] = self.handler.lambda_handler(
            sqs_event([record]), LambdaContext.starting_now()
        )
        return response

    def outcome(self) -> str:
        """delivered, or the reason the message was dead-lettered."""
        letters = self.sqs.sent.get(DLQ, [])
        if letters:
            [letter] = letters
            reason: str = letter["MessageAttributes"]["invoker.reason"]["StringValue"]
            return reason
        [result] = self.sqs.sent[RESULTS]
        assert json.loads(result["MessageBody"])["requestId"]
        return "delivered"


# -- events that are not an SQS batch ------------------------------------------------------------------


def test_an_empty_batch_returns_an_empty_response(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an SQS event with no records (Powertools' batch utility raised on it)
    route = Route(handler, monkeypatch)
    # WHEN handled THEN nothing fails and nothing is called
    assert handler.lambda_handler({"Records": []}, LambdaContext.starting_now()) == {"batchItemFailures": []}
    assert route.runtime.calls == []
    assert route.sqs.sent == {}


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({}, "expected an SQS event"),
        ([], "got a JSON list"),
        ("text", "got a JSON str"),
        (None, "got a JSON NoneType"),
        ({"Records": {}}, "expected an SQS event"),
        ({"records": []}, "keys ['records']"),
        ({"Records": [{"eventSource": "aws:kinesis", "kinesis": {}}]}, "record 0 is not an SQS message"),
        ({"Records": [{"eventSource": "aws:s3", "s3": {}}]}, "eventSource 'aws:s3'"),
        ({"Records": [1]}, "record 0 is not an SQS message"),
        ({"Records": [{"eventSource": "aws:sqs"}]}, "record 0 has no valid messageId, receiptHandle"),
        ({"Records": [{**sqs_record({"bodyText": "x"}), "body": None}]}, "record 0 has no valid body"),
        ({"Records": [{**sqs_record({"bodyText": "x"}), "eventSourceARN": "queue"}]}, "eventSourceARN"),
        ({"Records": [sqs_record({"bodyText": "x"}), {**sqs_record({"bodyText": "x"}), "attributes": []}]},
         "record 1 has no valid attributes"),
    ],
    ids=["empty-object", "list", "string", "null", "records-not-a-list", "lowercase-records", "kinesis",
         "s3", "record-not-an-object", "sqs-without-fields", "body-null", "bad-arn", "mixed"],
)  # fmt: skip
def test_an_event_that_is_not_an_sqs_batch_raises_a_clear_error_before_any_record(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch, event: Any, says: str
) -> None:
    # GIVEN an event that did not come from an SQS event source mapping (a console test, another
    # trigger): no SQS message is at stake, and a normal return would tell a stream or async source
    # that its records were handled
    route = Route(handler, monkeypatch)
    # WHEN handled THEN the invocation fails with an error saying what is wrong, before any record is
    # processed (the function's error alarm sees it)
    with pytest.raises(NotAnSqsEvent) as raised:
        handler.lambda_handler(event, LambdaContext.starting_now())
    assert says in str(raised.value)
    assert route.runtime.calls == []
    assert route.sqs.sent == {}


# -- every message: the handler never raises, invalid input is refused on its first receive ------------


@pytest.mark.parametrize("key", sorted(MODEL))
def test_any_member_value_is_delivered_or_refused_on_first_receive(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    route = Route(handler, monkeypatch)
    member = MODEL[key][0]

    @BOUNDED
    @given(value=member_values(key))
    def check(value: Any) -> None:
        # GIVEN a message whose member holds any value, on its first receive
        record = sqs_record(json.dumps({"bodyText": "x", key: value}))
        # WHEN the handler takes it THEN it returns (never raises) with nothing to retry
        assert route.receive(record) == {"batchItemFailures": []}
        if valid_member(key, value):
            # AND a valid value reaches the endpoint as its member, and the result is delivered
            assert route.outcome() == "delivered"
            [call] = route.runtime.calls
            assert call[member] == value
        else:
            # AND an invalid one is dead-lettered as invalid_message at once, the endpoint never called
            assert route.outcome() == "invalid_message"
            assert route.runtime.calls == []

    check()


def test_any_raw_attribute_is_delivered_or_refused_on_first_receive(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = Route(handler, monkeypatch, MESSAGE_FORMAT="raw")

    @BOUNDED
    @given(key=st.sampled_from(sorted(MODEL)), data=st.data())
    def check(key: str, data: st.DataObject) -> None:
        value = data.draw(deliverable(texts))
        member = MODEL[key][0]
        # GIVEN a raw message carrying a member as a String attribute, and the function's own
        # bookkeeping attribute from an earlier dead-lettering
        attributes = {
            member: {"stringValue": value, "dataType": "String"},
            "invoker.redrive_count": {"stringValue": "1", "dataType": "Number"},
        }
        record = sqs_record("payload", message_attributes=attributes)
        # WHEN the handler takes it THEN it never raises, and the outcome follows the model
        assert route.receive(record) == {"batchItemFailures": []}
        if valid_member(key, value):
            assert route.outcome() == "delivered"
            assert route.runtime.calls[0][member] == value
        else:
            assert route.outcome() == "invalid_message"
            assert route.runtime.calls == []

    check()


def test_any_body_is_delivered_or_refused_on_first_receive(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = Route(handler, monkeypatch)

    @BOUNDED
    @given(raw_body=deliverable(json_texts))
    def check(raw_body: str) -> None:
        # GIVEN any SQS body (deep nesting, duplicate keys, 1e999, surrogates, not JSON at all)
        record = sqs_record(raw_body)
        # WHEN the handler takes it on its first receive THEN it never raises; what the parser refuses is
        # dead-lettered as invalid_message without an endpoint call, the rest is delivered
        assert route.receive(record) == {"batchItemFailures": []}
        try:
            parse_envelope(raw_body, record["messageId"], None)
        except InvalidMessage:
            assert route.outcome() == "invalid_message"
            assert route.runtime.calls == []
        else:
            assert route.outcome() == "delivered"

    check()


@pytest.mark.parametrize(
    "raw_body",
    ['{"body": ' + "[" * 100_000 + "]" * 100_000 + "}", '{"body": 1e999}', '{"body": 1, "body": 2}',
     '{"bodyText": "x", "targetModel": "modèle.tar.gz"}', '{"bodyText": "x", "inferenceId": "café"}',
     '{"bodyText": "x", "targetVariant": "blue variant"}', '{"bodyBase64": "é"}',
     '{"bodyText": "\\ud800"}'],
    ids=["deep", "inf", "duplicate", "target-model-accent", "inference-id-accent", "variant-pattern",
         "base64-non-ascii", "surrogate"],
)  # fmt: skip
def test_the_issue_examples_are_refused_on_first_receive(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch, raw_body: str
) -> None:
    # GIVEN a message that fails the same way every time (these ended as unexpected_error, retried
    # until exhaustion, or reached the endpoint altered) WHEN the handler takes it on its first receive
    route = Route(handler, monkeypatch)
    assert route.receive(sqs_record(raw_body)) == {"batchItemFailures": []}
    # THEN it is dead-lettered as invalid_message at once, without an endpoint call
    assert route.outcome() == "invalid_message"
    assert route.runtime.calls == []
