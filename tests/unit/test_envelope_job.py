"""The envelope's optional job members (jobId, line; raw mode's JobId and Line attributes): outside input,
so any value either comes through exactly or is refused as invalid_message, never anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from invoker.envelope import MAX_LINE, REQUEST_ID, parse_envelope, parse_raw
from invoker.outcomes import InvalidMessage

from tests.support.factories import string_attribute

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


def _valid_job_id(value: Any) -> bool:
    return isinstance(value, str) and REQUEST_ID.fullmatch(value) is not None


def _valid_line(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_LINE


@given(
    job_id=JSON_VALUES | st.from_regex(REQUEST_ID, fullmatch=True),
    line=JSON_VALUES | st.integers(0, MAX_LINE + 2),
)
def test_job_members_come_through_exactly_or_are_refused(job_id: Any, line: Any) -> None:
    # GIVEN an envelope carrying any JSON values as jobId and line
    document = {"requestId": "r-1", "body": {"x": 1}, "jobId": job_id, "line": line}
    acceptable = (job_id is None or _valid_job_id(job_id)) and (line is None or _valid_line(line))
    text = json.dumps(document)
    if not acceptable:
        # WHEN parsed THEN a refusal names the member and keeps the request id (traceable)
        with pytest.raises(InvalidMessage, match=r"jobId|line") as refused:
            parse_envelope(text, "m-1", None)
        assert refused.value.request_id == "r-1"
        return
    # WHEN parsed THEN an accepted value is the one sent
    request = parse_envelope(text, "m-1", None)
    assert request.job_id == job_id
    assert request.line == line
    assert type(request.line) in (int, type(None))


@given(job_id=st.text(max_size=140), line=st.text(max_size=20))
def test_raw_job_attributes_come_through_exactly_or_are_refused(job_id: str, line: str) -> None:
    attributes = {"JobId": string_attribute(job_id), "Line": {**string_attribute(line), "dataType": "Number"}}
    line_ok = line.isascii() and line.isdigit() and int(line) <= MAX_LINE
    if not (_valid_job_id(job_id) and line_ok):
        with pytest.raises(InvalidMessage, match=r"JobId|Line"):
            parse_raw("payload", "m-1", attributes)
        return
    request = parse_raw("payload", "m-1", attributes)
    assert request.job_id == job_id
    assert request.line == int(line)


def test_without_job_members_a_request_belongs_to_no_job() -> None:
    request = parse_envelope('{"body": 1}', "m-1", None)
    assert (request.job_id, request.line) == (None, None)
