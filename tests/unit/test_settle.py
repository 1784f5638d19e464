"""How each record is settled when things go wrong: what the logs may say, that every record ends in a
counted disposition, that a dead-letter copy always fits SQS, and the redrive count it carries."""

from __future__ import annotations

import io
import itertools
import json
import logging
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoker import dead_letters
from invoker.contract import LetterAttribute as Attr

from sqs_sagemaker_invoker.local.stand_ins import sqs_record
from tests.support.factories import string_attribute
from tests.unit.fakes import SQS_LIMIT, FakeRuntime, ok_response, service_error, sqs_size
from tests.unit.test_batch import RESULTS, Harness, raises

MARKER = "PAYLOAD-MARKER-7f3a9c"
_services = itertools.count()


def logged_harness(runtime: FakeRuntime, **env: str) -> tuple[Harness, io.StringIO]:
    """A harness whose logger is Powertools' own, writing its JSON lines (what CloudWatch receives)."""
    stream = io.StringIO()
    logger = Logger(service=f"settle-{next(_services)}", logger_handler=logging.StreamHandler(stream))
    return Harness(runtime, logger=logger, **env), stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# -- logs carry no payload-derived text unless LOG_PAYLOADS=true ------------------------------------------


def _echoing(code: str, **fields: Any) -> FakeRuntime:
    """An endpoint that rejects the request quoting it, as models and validators do."""

    def behaviour(_i: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        quoted = kwargs["Body"].decode() + " " + kwargs.get("CustomAttributes", "")
        extra = {"OriginalMessage": f"cannot score {quoted}", **fields} if code == "ModelError" else {}
        raise service_error(code, f"Received client error (400): bad input {quoted}", **extra)

    return FakeRuntime(behaviour)


def _crashing(_i: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError(f"bug while handling {kwargs['Body'].decode()}")


PAYLOAD_CASES: dict[str, tuple[Any, dict[str, Any], dict[str, str]]] = {
    "model_error": (
        lambda: _echoing("ModelError", OriginalStatusCode=400, LogStreamArn="arn:aws:logs:x"),
        {"bodyText": MARKER},
        {},
    ),
    "model_error_custom_attributes": (
        lambda: _echoing("ModelError", OriginalStatusCode=400),
        {"bodyText": "x", "customAttributes": MARKER},
        {},
    ),
    "validation_error": (lambda: _echoing("ValidationError"), {"bodyText": MARKER}, {}),
    "throttled_retry": (lambda: _echoing("ThrottlingException"), {"bodyText": MARKER}, {}),
    "unexpected_error": (lambda: FakeRuntime(_crashing), {"bodyText": MARKER}, {}),
    # the envelope parser's message quotes the value it refuses
    "bodyS3Uri_not_a_uri": (
        FakeRuntime,
        {"bodyS3Uri": f"https://{MARKER}"},
        {"PAYLOAD_S3_PREFIX": "s3://payloads/in/"},
    ),
    "bodyS3Uri_missing": (
        FakeRuntime,
        {"bodyS3Uri": f"s3://payloads/in/{MARKER}"},
        {"PAYLOAD_S3_PREFIX": "s3://payloads/in/"},
    ),
}


@pytest.mark.parametrize("case", PAYLOAD_CASES)
def test_no_log_line_carries_payload_text_by_default(case: str) -> None:
    # GIVEN a request carrying a marker, which the endpoint (or the parser, or a bug) quotes back
    make_runtime, body, env = PAYLOAD_CASES[case]
    harness, stream = logged_harness(make_runtime(), **env)
    # WHEN processed with LOG_PAYLOADS unset
    harness.run(sqs_record(body))
    # THEN the outcome was logged, with codes and reasons, and no line holds the marker
    output = lines(stream)
    assert any(line.get("disposition") in {"retry", "dead_letter"} for line in output)
    assert MARKER not in stream.getvalue()


# The parser's wording is its own business: whether it quotes a value is not what this test is about.
@pytest.mark.parametrize("case", [case for case in PAYLOAD_CASES if case != "bodyS3Uri_not_a_uri"])
def test_log_payloads_true_logs_the_payload_text(case: str) -> None:
    # GIVEN the same request, WHEN processed with LOG_PAYLOADS=true THEN the marker is in the logs
    make_runtime, body, env = PAYLOAD_CASES[case]
    harness, stream = logged_harness(make_runtime(), LOG_PAYLOADS="true", **env)
    harness.run(sqs_record(body))
    assert MARKER in stream.getvalue()


def test_a_model_error_line_carries_the_service_data_and_the_copy_keeps_its_message() -> None:
    # GIVEN a model error quoting the request
    harness, stream = logged_harness(
        _echoing("ModelError", OriginalStatusCode=422, LogStreamArn="arn:aws:logs:us-east-1:123456789012:x")
    )
    harness.run(sqs_record({"bodyText": MARKER}))
    # THEN the log line has the code, statuses and log stream, not the text
    [line] = [line for line in lines(stream) if line["message"] == "dead-lettered"]
    assert line["error"] == "ModelError"
    assert line["error_code"] == "ModelError"
    assert (line["http_status"], line["original_status_code"]) == (424, 422)
    assert line["log_stream_arn"] == "arn:aws:logs:us-east-1:123456789012:x"
    # AND the dead-letter copy (which holds the body anyway) keeps the model's own words
    [dead] = harness.dead_letters()
    assert MARKER in dead["MessageAttributes"]["invoker.error"]["StringValue"]


# -- every record ends in a logged, counted disposition ------------------------------------------------


def test_an_attribute_that_cannot_be_copied_is_dropped_and_logged_not_fatal() -> None:
    # GIVEN a model error on a message with a binary attribute that is not base64 (as in Powertools'
    # sqsEvent.json), a Number attribute carrying a stray binaryValue, and an ordinary one
    harness, stream = logged_harness(raises("ModelError"))
    record = sqs_record(
        {"bodyText": "x"},
        message_attributes={
            "blob": {"binaryValue": "base64Str", "dataType": "Binary"},
            "testAttr": {"stringValue": "100", "binaryValue": "base64Str", "dataType": "Number"},
            "tenant": string_attribute("acme"),
        },
    )
    # WHEN processed
    failures = harness.run(record)
    # THEN it is dead-lettered with its reason and the attributes that can be sent
    assert failures == set()
    [dead] = harness.dead_letters()
    attributes = dead["MessageAttributes"]
    assert attributes["invoker.reason"]["StringValue"] == "model_error"
    assert attributes["tenant"] == {"DataType": "String", "StringValue": "acme"}
    assert attributes["testAttr"] == {"DataType": "Number", "StringValue": "100"}
    assert "blob" not in attributes
    # AND the dropped attribute is named in a log line, and the disposition counted
    [note] = [line for line in lines(stream) if line["message"].startswith("dead-letter copy trimmed")]
    assert note["unusable_attributes"] == ["blob"]
    assert harness.processor.batch.observed.dead_lettered == {"model_error": 1}


def test_a_failure_while_settling_becomes_a_counted_logged_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a bug in building the dead-letter copy (once)
    real_fit = dead_letters.fit
    calls = itertools.count()

    def broken_once(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 0:
            raise RuntimeError("bug")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(dead_letters, "fit", broken_once)
    harness, stream = logged_harness(raises("ModelError"))
    record = sqs_record({"bodyText": "x"})
    # WHEN processed
    failures = harness.run(record)
    # THEN the message comes back with a backoff, counted and logged as unexpected_error
    assert failures == {record["messageId"]}
    assert harness.processor.batch.observed.retried == {"unexpected_error": 1}
    assert set(harness.visibility()) == {record["receiptHandle"]}
    retry = [line for line in lines(stream) if line["message"] == "retry later"]
    assert [line["reason"] for line in retry] == ["unexpected_error"]
    assert any(line["message"] == "unexpected error" and "traceback" in line for line in lines(stream))


def test_a_failure_that_even_the_last_resort_hits_is_still_counted_and_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a message on its last receive, and a copy that can never be built
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(dead_letters, "fit", broken)
    harness, stream = logged_harness(raises("ModelError"), MAX_RECEIVE_COUNT="2")
    record = sqs_record({"bodyText": "x"}, receive_count=2)
    # WHEN processed
    failures = harness.run(record)
    # THEN it is reported failed (the queue's redrive policy is the last net), counted and logged
    assert failures == {record["messageId"]}
    assert harness.processor.batch.observed.retried == {"unexpected_error": 1}
    assert [line["reason"] for line in lines(stream) if line["message"] == "retry later"] == [
        "unexpected_error"
    ]


# -- a dead-letter copy always fits ------------------------------------------------------------------------


def _body_of(size: int) -> str:
    """An envelope of exactly `size` UTF-8 bytes, non-ASCII so that characters and bytes differ."""
    head, tail = '{"bodyText": "', '"}'
    room = size - len(head) - len(tail)
    return head + "é" * (room // 2) + "x" * (room % 2) + tail


def test_a_body_near_the_limit_is_dead_lettered_with_its_error_text_trimmed() -> None:
    # GIVEN a model error with a long message, on a body that leaves room for the reason but not all of it
    harness = Harness(
        FakeRuntime(lambda _i, _kw: (_ for _ in ()).throw(service_error("ModelError", "m" * 5000)))
    )
    body = _body_of(SQS_LIMIT - 800)
    record = sqs_record(body)
    # WHEN processed
    assert harness.run(record) == set()
    # THEN the copy was accepted by an SQS that counts attribute bytes: body unchanged, error cut
    [dead] = harness.dead_letters()
    assert harness.sqs.refused == []
    assert sqs_size(dead) <= SQS_LIMIT
    assert dead["MessageBody"] == body
    assert 0 < len(dead["MessageAttributes"]["invoker.error"]["StringValue"]) < 1024
    assert dead["MessageAttributes"]["invoker.reason"]["StringValue"] == "model_error"


def test_a_body_that_cannot_fit_with_its_reason_goes_to_the_bucket_behind_a_pointer() -> None:
    # GIVEN a model error on a body of 1 MiB minus 100 bytes, with a producer attribute
    harness = Harness(raises("ModelError", OriginalStatusCode=500), DEAD_LETTER_PREFIX="letters/")
    body = _body_of(SQS_LIMIT - 100)
    record = sqs_record(body, message_attributes={"tenant": string_attribute("acme")})
    # WHEN processed
    assert harness.run(record) == set()
    # THEN the original bytes are in the dead-letter bucket, keyed by the message id
    key = ("requests-dead-letters", f"letters/{record['messageId']}.body")
    assert harness.s3.objects[key] == body.encode()
    # AND the letter points at them, with its reason and the producer's attribute
    [dead] = harness.dead_letters()
    uri = f"s3://{key[0]}/{key[1]}"
    assert json.loads(dead["MessageBody"]) == {"invokerBodyS3Uri": uri}
    attributes = {name: value.get("StringValue") for name, value in dead["MessageAttributes"].items()}
    assert attributes[Attr.BODY_S3_URI] == uri
    assert attributes["invoker.reason"] == "model_error"
    assert attributes["invoker.error"] == "ModelError happened"
    assert attributes["tenant"] == "acme"
    assert sqs_size(dead) <= SQS_LIMIT


def test_a_failed_bucket_write_keeps_the_message() -> None:
    harness = Harness(raises("ModelError"))
    harness.s3.fail = True
    record = sqs_record(_body_of(SQS_LIMIT - 100))
    assert harness.run(record) == {record["messageId"]}
    assert harness.processor.batch.observed.retried == {"dead_letter_failed": 1}
    assert harness.dead_letters() == []


def test_producer_attributes_that_do_not_fit_are_dropped_and_logged() -> None:
    # GIVEN a message that was within 1 MiB with its own large attribute, then failed
    big = "a" * 3000
    harness, stream = logged_harness(raises("ModelError"))
    body = _body_of(SQS_LIMIT - 3020)
    record = sqs_record(
        body, message_attributes={"big": string_attribute(big), "small": string_attribute("s")}
    )
    # WHEN processed
    assert harness.run(record) == set()
    # THEN the copy keeps the body and reason; the large attribute gave way, and that is logged
    [dead] = harness.dead_letters()
    assert dead["MessageBody"] == body
    assert "big" not in dead["MessageAttributes"]
    assert "invoker.error" not in dead["MessageAttributes"]  # our text went first
    assert sqs_size(dead) <= SQS_LIMIT
    [note] = [line for line in lines(stream) if line["message"].startswith("dead-letter copy trimmed")]
    assert "big" in note["dropped_attributes"]


def test_a_result_whose_utf8_bytes_exceed_the_limit_goes_to_the_bucket() -> None:
    # GIVEN a text response of 600,000 characters that are 2 bytes each in UTF-8 (1.2 MB)
    text = "é" * 600_000
    harness = Harness(
        FakeRuntime(lambda _i, _kw: ok_response(text.encode(), "text/plain")), RESULTS_BUCKET="results-bucket"
    )
    record = sqs_record({"bodyText": "x", "requestId": "big-1"})
    # WHEN processed
    assert harness.run(record) == set()
    # THEN the body went to the bucket and the result message fits
    [result] = harness.sqs.sent[RESULTS]
    assert sqs_size(result) <= SQS_LIMIT
    assert json.loads(result["MessageBody"])["bodyS3Uri"] == "s3://results-bucket/results/big-1.body"
    assert harness.s3.objects[("results-bucket", "results/big-1.body")] == text.encode()


# -- the redrive count ---------------------------------------------------------------------------------


def _count_attribute(value: str) -> dict[str, Any]:
    return {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "Number"}


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        # moved back unchanged by SQS's own move task: our attributes are still there
        ({"invoker.reason": string_attribute("model_error")}, "1"),
        (
            {
                "invoker.reason": string_attribute("model_error"),
                "invoker.redrive_count": _count_attribute("2"),
            },
            "3",
        ),
        # redriven by the CLI: ours stripped, the count set: kept as it is
        ({"invoker.redrive_count": _count_attribute("2")}, "2"),
        # never redriven
        ({}, None),
    ],
    ids=["native-first", "native-again", "cli", "never"],
)
def test_the_dead_letter_copy_carries_the_redrive_count(
    incoming: dict[str, Any], expected: str | None
) -> None:
    harness = Harness(raises("ModelError"))
    assert harness.run(sqs_record({"bodyText": "x"}, message_attributes=incoming)) == set()
    [dead] = harness.dead_letters()
    count = dead["MessageAttributes"].get("invoker.redrive_count")
    if expected is None:
        assert count is None
    else:
        assert count == {"DataType": "Number", "StringValue": expected}
    # AND every other incoming invoker.* attribute is replaced by this dead-lettering's own
    assert dead["MessageAttributes"]["invoker.reason"]["StringValue"] == "model_error"


def test_what_goes_back_to_powertools_carries_no_payload(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN Powertools' own debug logging on (it logs the exception of each failed record)
    harness = Harness(_echoing("ThrottlingException"))
    # WHEN a retry quoting the payload is handed back
    with caplog.at_level(logging.DEBUG, logger="aws_lambda_powertools"):
        record = sqs_record({"bodyText": MARKER})
        assert harness.run(record) == {record["messageId"]}
    # THEN Powertools saw the summary only
    powertools = [r.getMessage() for r in caplog.records if r.name.startswith("aws_lambda_powertools")]
    assert any("ThrottlingException" in line for line in powertools)
    assert not any(MARKER in line for line in powertools)


class _FailingLogger:
    """A logger whose `dead-lettered` lines cannot be written (a broken handler, a bad field)."""

    def __init__(self) -> None:
        self.written: list[tuple[str, dict[str, Any]]] = []

    def _write(self, message: str, extra: dict[str, Any] | None = None, **_: Any) -> None:
        if message == "dead-lettered":
            raise KeyError("cannot write")
        self.written.append((message, extra or {}))

    info = warning = error = exception = _write


def test_a_log_line_that_cannot_be_written_does_not_fail_the_batch() -> None:
    logger = _FailingLogger()
    harness = Harness(raises("ModelError"), logger=logger)
    record = sqs_record({"bodyText": "x"})
    assert harness.run(record) == set()
    assert harness.processor.batch.observed.dead_lettered == {"model_error": 1}
    # (the processor, wired as in the function, also writes its "batch done" summary)
    [(message, extra)] = [line for line in logger.written if line[0] != "batch done"]
    assert message == "log line not written"
    assert (extra["line"], extra["reason"], extra["message_id"]) == (
        "dead-lettered",
        "model_error",
        record["messageId"],
    )


def test_a_pointer_letter_moved_back_unchanged_still_points_at_its_body() -> None:
    # GIVEN a pointer letter that SQS's own move task brought back with its attributes
    uri = "s3://requests-dead-letters/dead-letters/00000000-0000-4000-8000-00000000000b.body"
    body = dead_letters.pointer_body(uri)
    harness = Harness(FakeRuntime())
    incoming = {
        "invoker.reason": string_attribute("model_error"),
        "invoker.body_s3_uri": string_attribute(uri),
    }
    # WHEN it fails again (the envelope parser refuses a pointer)
    assert harness.run(sqs_record(body, message_attributes=incoming)) == set()
    # THEN the new letter keeps pointing at the stored body, one redrive more, nothing stored again
    [dead] = harness.dead_letters()
    assert dead["MessageBody"] == body
    assert dead["MessageAttributes"]["invoker.body_s3_uri"]["StringValue"] == uri
    assert dead["MessageAttributes"]["invoker.redrive_count"]["StringValue"] == "1"
    assert harness.s3.objects == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
lambda_attributes = st.fixed_dictionaries(
    {},
    optional={
        "dataType": st.sampled_from(["String", "Number", "Binary", "String.x", "Binary.y", "Other"])
        | json_values,
        "stringValue": json_values,
        "binaryValue": st.text(max_size=12) | json_values,
        "stringListValues": json_values,
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attributes=st.dictionaries(st.text(max_size=12), lambda_attributes | json_values, max_size=12),
    receive_count=st.integers(min_value=1, max_value=3),
)
def test_any_message_attributes_end_in_a_counted_disposition(
    attributes: dict[str, Any], receive_count: int
) -> None:
    # GIVEN a failing endpoint and a message with arbitrary attributes in any shape
    harness = Harness(raises("ModelError"), MAX_RECEIVE_COUNT="3")
    record = sqs_record({"bodyText": "x"}, receive_count=receive_count, message_attributes=attributes)
    # WHEN processed: the handler never raises
    failures = harness.run(record)
    # THEN the record is dead-lettered with its reason, counted once
    assert failures == set()
    assert harness.processor.batch.observed.dead_lettered == {"model_error": 1}
    [dead] = harness.dead_letters()
    # AND every attribute on the copy is one SendMessage accepts
    assert len(dead["MessageAttributes"]) <= 10
    for name, value in dead["MessageAttributes"].items():
        assert isinstance(name, str)
        assert value["DataType"].split(".")[0] in {"String", "Number", "Binary"}
        if value["DataType"].startswith("Binary"):
            assert isinstance(value["BinaryValue"], bytes)
            assert value["BinaryValue"]
        else:
            assert isinstance(value["StringValue"], str)
            assert value["StringValue"]
