"""Property tests of the envelope parser against an oracle written from the service model's constraints.

The oracle reads the model through botocore's client path (not the parser's) and judges each pattern
with a plain Python predicate written from java.util.regex's documented semantics, so a mistake in the
parser's pattern translator cannot hide in its own output. A value is valid iff it is a string, within
the model's length, printable ASCII (it is an HTTP header signed by SigV4) and matches its pattern."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoker.envelope import MEMBERS as PARSER_MEMBERS
from invoker.envelope import InvokeRequest, UnsupportedPattern, java_pattern, parse_envelope, parse_raw
from invoker.outcomes import InvalidMessage

MESSAGE_ID = "0b5c3e2a-6f0d-4b8e-9d5a-1f2e3d4c5b6a"
# Bounded so that `make test` stays fast: about 3,000 inputs in all, over the member and body properties.
BOUNDED = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PER_MEMBER = settings(BOUNDED, max_examples=50)

_INPUT = (
    botocore.session.get_session()
    .get_service_model("sagemaker-runtime")
    .operation_model("InvokeEndpoint")
    .input_shape
)
assert _INPUT is not None
# envelope key -> (member, min, max, pattern), for every header member of the model
MODEL: dict[str, tuple[str, int, int, str]] = {
    name[0].lower() + name[1:]: (
        name,
        shape.metadata.get("min", 0),
        shape.metadata["max"],
        shape.metadata.get("pattern", ".*"),
    )
    for name, shape in _INPUT.members.items()
    if shape.serialization.get("location") == "header"
}

# java.util.regex, default flags: \s is [ \t\n\x0B\f\r]; \p{Print} is [\x20-\x7E]; `.` excludes the
# line terminators \n \r \u0085 \u2028 \u2029; a name is [a-zA-Z0-9] runs joined by hyphens.
_JAVA_WHITESPACE = set(" \t\n\x0b\f\r")
_ALNUM = set(string.ascii_letters + string.digits)


def _is_name(value: str) -> bool:
    # ^[a-zA-Z0-9](-*[a-zA-Z0-9])* and ^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$, matched whole
    return bool(value) and value[0] in _ALNUM and value[-1] in _ALNUM and set(value) <= _ALNUM | {"-"}


PATTERN_ORACLES: dict[str, Callable[[str], bool]] = {
    r"\p{ASCII}*": lambda v: all(ord(c) < 0x80 for c in v),
    r"\A\S[\p{Print}]*\z": lambda v: (
        len(v) >= 1 and v[0] not in _JAVA_WHITESPACE and all(0x20 <= ord(c) <= 0x7E for c in v[1:])
    ),
    "^[a-zA-Z0-9](-*[a-zA-Z0-9])*": _is_name,
    r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$": _is_name,
    "^(NEW_SESSION)$|^[a-zA-Z0-9](-*[a-zA-Z0-9])*$": lambda v: v == "NEW_SESSION" or _is_name(v),
    ".*": lambda v: not any(c in "\n\r\x85\u2028\u2029" for c in v),
}


def valid_member(key: str, value: Any) -> bool:
    _, low, high, pattern = MODEL[key]
    return (
        isinstance(value, str)
        and low <= len(value) <= high
        and value.isascii()
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)  # control characters
        and PATTERN_ORACLES[pattern](value)
    )


# -- strategies ----------------------------------------------------------------------------------------

_SPECIAL = ["\ud800", "\udfff", "\x00", "\t", "\n", "\r", "\x0b", "\x1c", "\x7f", "\x85", "\u2028", "é",
            "\xa0", "日", "🙂", " ", "-", "_", ".", "/", "a", "Z", "0"]  # fmt: skip
characters = st.one_of(st.characters(exclude_categories=()), st.sampled_from(_SPECIAL))
texts = st.one_of(
    st.text(characters, max_size=80),
    st.text(st.sampled_from(_SPECIAL + list(string.ascii_letters + string.digits + "-")), max_size=70),
    st.sampled_from(["NEW_SESSION", "", " ", "a" * 63, "a" * 64, "a" * 65, "x" * 1024, "x" * 1025]),
    st.builds(lambda n, c: c * n, st.integers(0, 1100), st.sampled_from(["a", "-", "é", " "])),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


def member_values(key: str) -> st.SearchStrategy[Any]:
    # Values the model accepts (generated from the parser's regex, judged by the oracle anyway), texts
    # of every kind, and JSON values of every type.
    regex = PARSER_MEMBERS[key].regex
    return st.one_of(st.from_regex(regex, fullmatch=True), texts, json_values)


def attempt(parse: Callable[..., InvokeRequest], *args: Any) -> InvokeRequest | InvalidMessage:
    """The parser's request, or its refusal (any other exception fails the test)."""
    try:
        return parse(*args)
    except InvalidMessage as exc:
        return exc


def has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    return False


# -- the pattern translator ----------------------------------------------------------------------------


def test_every_model_pattern_has_an_oracle() -> None:
    # GIVEN the patterns of InvokeEndpoint's header members THEN each is judged by a predicate here
    # (a new pattern in a botocore upgrade fails this test until one is written)
    assert {pattern for _, _, _, pattern in MODEL.values()} <= set(PATTERN_ORACLES)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (r"\S", "é", True),  # Java's \S is "not ASCII whitespace": Python's would say the same here
        (r"\S", "\x1c", True),  # ... but not here: Python's \s includes \x1c-\x1f
        (r"\S", "\xa0", True),  # nor here (NO-BREAK SPACE is Unicode whitespace)
        (r"\S", "\x0b", False),
        (r"[\p{Print}]*", "a b~", True),
        (r"[\p{Print}]*", "\x7f", False),
        (r"[\p{Print}]*", "é", False),
        (r"\p{ASCII}*", "\x00\x7f", True),
        (r"\p{ASCII}*", "\x80", False),
        (".*", "\u2028", False),  # Java's `.` excludes every line terminator; Python's only \n
        (".*", "\x85", False),
        (".*", "\t", True),
        (r"\Aab\z", "ab\n", False),
        ("^ab$", "ab\n", False),  # matched whole: $ before a final terminator still leaves it unmatched
        (r"[\-a]+", "-a-", True),
    ],
)
def test_java_patterns_keep_their_java_meaning(pattern: str, value: str, matches: bool) -> None:
    # GIVEN a construct of the model's Java patterns WHEN translated THEN Python matches what Java does
    assert bool(re.fullmatch(java_pattern(pattern), value)) is matches


@pytest.mark.parametrize(
    "pattern", [r"\p{Alpha}", r"\w", r"\d+", r"\Z", "(?i)a", "[a[b]]", "[a&&b]", "[ab", "a\\"]
)
def test_java_constructs_not_translated_are_refused(pattern: str) -> None:
    # GIVEN a construct whose Java meaning the translator does not implement WHEN translated THEN it
    # fails loudly (at import, caught by the tests) instead of matching something else
    with pytest.raises(UnsupportedPattern):
        java_pattern(pattern)


# -- envelope members ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(MODEL))
def test_envelope_member_is_accepted_iff_the_model_allows_it(key: str) -> None:
    member = MODEL[key][0]

    @PER_MEMBER
    @given(value=member_values(key))
    def check(value: Any) -> None:
        # GIVEN any JSON value as the member, sent as a producer's JSON (surrogates as \u escapes)
        raw_body = json.dumps({"bodyText": "x", key: value})
        # WHEN parsed THEN accepted exactly when the oracle says valid, and passed on unchanged;
        # otherwise refused with a reason that starts with the member's envelope key
        outcome = attempt(parse_envelope, raw_body, MESSAGE_ID, None)
        if isinstance(outcome, InvalidMessage):
            assert not valid_member(key, value), outcome.message
            assert outcome.message.startswith(f"{key} "), outcome.message
            assert outcome.message.isascii()
        else:
            assert valid_member(key, value), value
            assert outcome.members == {member: value}

    check()


@pytest.mark.parametrize("member", sorted(rule[0] for rule in MODEL.values()))
def test_raw_attribute_is_accepted_iff_the_model_allows_it(member: str) -> None:
    key = member[0].lower() + member[1:]

    @PER_MEMBER
    @given(value=member_values(key))
    def check(value: Any) -> None:
        # GIVEN any value in a String message attribute named by the member (Lambda's event shape)
        attributes = {member: {"stringValue": value, "dataType": "String"}}
        # WHEN parsed in raw mode THEN accepted exactly when valid, refused naming the attribute
        outcome = attempt(parse_raw, "payload", MESSAGE_ID, attributes)
        if isinstance(outcome, InvalidMessage):
            assert not valid_member(key, value), outcome.message
            assert member in outcome.message
        else:
            assert valid_member(key, value)
            assert outcome.members == {member: value}

    check()


attribute_values = st.one_of(
    st.fixed_dictionaries({"stringValue": texts, "dataType": st.sampled_from(["String", "Number"])}),
    st.fixed_dictionaries({"binaryValue": texts, "dataType": st.just("Binary")}),
    json_values,
)
attribute_names = st.one_of(
    st.sampled_from([rule[0] for rule in MODEL.values()] + ["RequestId", "JobId", "Line"]),
    st.builds(lambda s: "invoker." + s, texts),
    texts,
)


@BOUNDED
@given(attributes=st.dictionaries(attribute_names, attribute_values, max_size=6), body=texts)
def test_raw_mode_never_fails_otherwise_than_by_refusing(attributes: dict[str, Any], body: str) -> None:
    # GIVEN any message attributes (the function's invoker.* ones, the producer's, members of any shape)
    members = {rule[0]: key for key, rule in MODEL.items()}

    def valid() -> bool:
        for name, attribute in attributes.items():
            if (name not in members and name not in ("RequestId", "JobId", "Line")) or attribute is None:
                continue  # not read: the producer's own, the function's bookkeeping, or absent
            text = attribute.get("stringValue") if isinstance(attribute, dict) else None
            if not isinstance(text, str):
                return False
            if name in ("RequestId", "JobId"):
                if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}", text):
                    return False
            elif name == "Line":
                # the request's line in its job: plain digits, at most 2^53 - 1
                if not (re.fullmatch(r"[0-9]{1,16}", text) and int(text) <= 2**53 - 1):
                    return False
            elif not valid_member(members[name], text):
                return False
        return not has_surrogate(body)

    # WHEN parsed THEN the parser returns or refuses, and agrees with the oracle
    try:
        parse_raw(body, MESSAGE_ID, attributes)
    except InvalidMessage:
        assert not valid()
    else:
        assert valid()


# -- bodies --------------------------------------------------------------------------------------------


@BOUNDED
@given(value=json_values)
def test_any_json_body_is_sent_as_the_same_json_or_refused_for_a_surrogate(value: Any) -> None:
    # GIVEN any JSON value as `body`, written by a producer's JSON library
    raw_body = json.dumps({"body": value})
    # (what the text means: two surrogates written as a pair of \u escapes are one character)
    meant = json.loads(raw_body)["body"]
    # WHEN parsed THEN it is sent as JSON equal to that, or (only for a lone surrogate, which UTF-8
    # cannot carry) refused
    outcome = attempt(parse_envelope, raw_body, MESSAGE_ID, None)
    if isinstance(outcome, InvalidMessage):
        assert has_surrogate(meant), outcome.message
    else:
        assert outcome.body is not None
        assert json.loads(outcome.body) == meant
        assert outcome.members == {"ContentType": "application/json"}


number_texts = st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?", fullmatch=True)


@BOUNDED
@given(number=number_texts)
def test_a_number_is_sent_as_the_number_written_or_refused(number: str) -> None:
    # GIVEN any JSON number in a body WHEN parsed THEN either what is sent denotes exactly the number
    # written, or the message is refused; an integer (no fraction, no exponent) is always sent
    try:
        request = parse_envelope(f'{{"body": {number}}}', MESSAGE_ID, None)
    except InvalidMessage:
        assert not re.fullmatch(r"-?[0-9]+", number)
        assert Decimal(repr(float(number))) != Decimal(number)
    else:
        assert request.body is not None
        assert Decimal(request.body.decode()) == Decimal(number)


@BOUNDED
@given(
    pairs=st.lists(st.tuples(st.sampled_from(["a", "b", "é", "\ud800", "body"]), json_values), max_size=5),
    depth=st.integers(0, 3),
)
def test_an_object_is_refused_iff_it_repeats_a_key(pairs: list[tuple[str, Any]], depth: int) -> None:
    # GIVEN an object written pair by pair (so a key may repeat), nested `depth` arrays deep in the body
    text = "{" + ",".join(f"{json.dumps(key)}:{json.dumps(value)}" for key, value in pairs) + "}"
    raw_body = '{"body":' + "[" * depth + text + "]" * depth + "}"
    keys = [key for key, _ in pairs]
    # WHEN parsed THEN refused when a key repeats; otherwise sent (unless a surrogate cannot be encoded)
    outcome = attempt(parse_envelope, raw_body, MESSAGE_ID, None)
    if len(set(keys)) != len(keys):
        assert isinstance(outcome, InvalidMessage)
        assert "repeats" in outcome.message
    elif not has_surrogate(dict(pairs)):
        assert isinstance(outcome, InvokeRequest)


json_texts = st.one_of(
    texts,
    st.builds(json.dumps, json_values),
    st.builds(lambda v, k: json.dumps({k: v}), json_values, st.sampled_from(["body", "bodyText", "bodyBase64",
              "bodyS3Uri", "requestId", "accept", "x"])),
    st.builds(lambda n, c: "[" * n + c + "]" * n, st.integers(0, 3000), st.sampled_from(["1", "", "{}"])),
)  # fmt: skip


@BOUNDED
@given(raw_body=json_texts)
def test_any_sqs_body_is_parsed_or_refused_never_crashes(raw_body: str) -> None:
    # GIVEN any text as the SQS body WHEN parsed THEN the outcome is a request or a refusal, whose
    # reason is sendable text (it becomes a log field and a dead-letter attribute)
    try:
        parse_envelope(raw_body, MESSAGE_ID, "s3://payload-bucket/incoming/")
    except InvalidMessage as exc:
        exc.message.encode()


# -- the documented table (docs/function.md) -----------------------------------------------------------


def test_the_documented_member_table_is_the_service_models() -> None:
    # GIVEN the function contract's table of envelope members (key, member, length, pattern)
    contract = (Path(__file__).parents[2] / "docs" / "function.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)`[^|]*\| (\d+)-(\d+) \| `(.+)` \|$", contract, re.MULTILINE)
    documented = {
        key: (member, int(low), int(high), pattern.replace("\\|", "|"))
        for key, member, low, high, pattern in rows
    }
    # THEN it lists exactly the model's header members, with the model's limits and patterns
    assert documented == MODEL
