"""Turns an SQS message body into an InvokeEndpoint request, or refuses it with a reason.

A message that can never succeed is refused here, as `invalid_message`, before any endpoint call: every
InvokeEndpoint member is checked against the constraints of botocore's service model (type, length,
pattern), header members must be printable ASCII, and a JSON body must be JSON that the function can
forward without changing it (no duplicate keys, no number that a double cannot carry exactly)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.loaders import Loader

from invoker.contract import INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES
from invoker.outcomes import InvalidMessage

# S3 object keys are at most 1,024 bytes of UTF-8.
_MAX_S3_KEY_BYTES = 1024

# Matched with fullmatch: `$` would also accept a trailing newline.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S+)")
# Header values: a CR or LF would make the HTTP client refuse to send the request (a transport error,
# retried), and SigV4 canonicalises other control characters (tab, ...) differently from the service.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BODY_KEYS = ("body", "bodyText", "bodyBase64", "bodyS3Uri")
# Characters SQS does not accept in a message or attribute value (besides lone surrogates).
_NOT_IN_A_MESSAGE = re.compile("[\x00-\x1f\x7f\ufffe\uffff]")


# -- the service model's constraints -------------------------------------------------------------------

# The model's patterns are Java regular expressions (java.util.regex, default flags): its `\p{...}` POSIX
# classes, `\s` and `\S` are US-ASCII only, and `.` excludes every Java line terminator. Python's `re`
# reads `\S` and `.` differently and has no `\p{...}`, so each construct is rewritten explicitly; anything
# the translator does not know is an error at import, never a silently different rule.
_JAVA_POSIX_CLASSES = {"ASCII": r"\x00-\x7f", "Print": r"\x20-\x7e"}
_JAVA_WHITESPACE = r" \t\n\x0b\f\r"
_JAVA_LINE_TERMINATORS = r"\n\r\x85\u2028\u2029"
_JAVA_ESCAPED_LITERALS = frozenset("\\-.[](){}*+?|^$/")


class UnsupportedPattern(ValueError):
    """A construct of the service model's pattern that `java_pattern` cannot translate faithfully."""


def java_pattern(pattern: str) -> str:
    """The Python `re` equivalent of a java.util.regex pattern, for use with `fullmatch` (the whole value
    must match: Java's `Matcher.matches()`)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            text, i = _java_escape(pattern, i + 1, in_class)
            out.append(text)
            continue
        if in_class:
            if char == "[" or pattern.startswith("&&", i):
                raise UnsupportedPattern(f"{pattern!r}: nested or intersected character class")
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == ".":
            out.append(f"[^{_JAVA_LINE_TERMINATORS}]")
        elif char == "$":
            # Java's `$` (no MULTILINE): the end, or before a line terminator that ends the input.
            out.append(rf"(?=(?:\r\n|[{_JAVA_LINE_TERMINATORS}])?\Z)")
        elif pattern.startswith("(?", i):
            raise UnsupportedPattern(f"{pattern!r}: group constructs are not translated")
        else:
            out.append(char)  # literals, ^ (start: the same in both), ( ) | and quantifiers
        i += 1
    if in_class:
        raise UnsupportedPattern(f"{pattern!r}: unterminated character class")
    return "".join(out)


def _java_escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """The translation of the escape whose letter is at `i`, and the index after it."""
    if i >= len(pattern):
        raise UnsupportedPattern(f"{pattern!r}: trailing backslash")
    escaped = pattern[i]
    if escaped == "p":
        match = re.match(r"\{(\w+)\}", pattern[i + 1 :])
        if match is None or match.group(1) not in _JAVA_POSIX_CLASSES:
            raise UnsupportedPattern(f"{pattern!r}: unknown \\p class at {i}")
        members = _JAVA_POSIX_CLASSES[match.group(1)]
        return (members if in_class else f"[{members}]"), i + 1 + match.end()
    if escaped in _JAVA_ESCAPED_LITERALS:
        return "\\" + escaped, i + 1
    outside_class = {
        "S": f"[^{_JAVA_WHITESPACE}]",
        "s": f"[{_JAVA_WHITESPACE}]",
        "A": r"\A",
        "z": r"\Z",  # Java's \z is the very end: Python's \Z
    }
    if in_class or escaped not in outside_class:
        raise UnsupportedPattern(f"{pattern!r}: \\{escaped} is not translated here")
    return outside_class[escaped], i + 1


class MemberRule:
    """One InvokeEndpoint header member, with its constraints from the service model. (A plain class:
    a dataclass compiles generated code at import, a few milliseconds of every cold start.)"""

    __slots__ = ("header", "key", "max_length", "member", "min_length", "pattern", "regex")

    def __init__(self, member: str, header: str, shape: Mapping[str, Any]) -> None:
        self.member = member  # InvokeEndpoint's name, e.g. TargetModel; raw mode's attribute name too
        self.key = member[0].lower() + member[1:]  # the envelope key, e.g. targetModel
        self.header = header  # the HTTP header it travels in
        self.min_length: int = int(shape.get("min", 0))
        self.max_length: int = int(shape["max"])
        self.pattern: str = shape.get("pattern", ".*")  # as written in the model (Java syntax)
        self.regex = re.compile(java_pattern(self.pattern))

    def check(self, value: Any, name: str) -> str:
        """`value` if it can be sent as this member; otherwise refused, naming `name` and the rule."""
        if not isinstance(value, str):
            raise InvalidMessage(f"{name} must be a string")
        if not self.min_length <= len(value) <= self.max_length:
            bounds = (
                f"{self.min_length}-{self.max_length}" if self.min_length else f"at most {self.max_length}"
            )
            raise InvalidMessage(f"{name} must be {bounds} characters long (got {len(value)})")
        if not value.isascii():
            # Not only the model's rule for some members: a header value outside ASCII fails SigV4.
            raise InvalidMessage(f"{name} must be ASCII (it is sent as the HTTP header {self.header})")
        if _CONTROL.search(value):
            raise InvalidMessage(f"{name} must not contain control characters (line breaks, tabs, ...)")
        if not self.regex.fullmatch(value):
            raise InvalidMessage(
                f"{name} must match InvokeEndpoint's pattern for {self.member}: {self.pattern}"
            )
        return value


def _invoke_endpoint_members() -> dict[str, MemberRule]:
    """Envelope key -> rule, for every header member of InvokeEndpoint's input in botocore's model.

    The model file is read directly (not through `list_available_services`, which stats every service
    botocore ships: about 1,300 files on each cold start). It costs well under a millisecond."""
    loader = Loader()
    version = loader.determine_latest_version("sagemaker-runtime", "service-2")
    model = loader.load_data(f"sagemaker-runtime/{version}/service-2")
    shapes = model["shapes"]
    request = shapes[model["operations"]["InvokeEndpoint"]["input"]["shape"]]
    rules: dict[str, MemberRule] = {}
    for member, reference in request["members"].items():
        if reference.get("location") != "header":
            continue  # EndpointName (the route's, from config) and Body
        shape = shapes[reference["shape"]]
        if shape["type"] != "string":
            raise UnsupportedPattern(f"InvokeEndpoint member {member} is a {shape['type']}, not a string")
        rule = MemberRule(member, reference["locationName"], shape)
        rules[rule.key] = rule
    return rules


# Envelope key -> rule. Read once per process from the model botocore ships (the one the SDK sends with).
MEMBERS: dict[str, MemberRule] = _invoke_endpoint_members()
# The job a request belongs to (optional, recorded in the request ledger): a job id like a request id,
# and the request's line in the job's input, a whole number JSON carries exactly (below 2^53).
_JOB_KEYS = ("jobId", "line")
MAX_LINE = 2**53 - 1
_ALLOWED_KEYS = frozenset(_BODY_KEYS) | frozenset(MEMBERS) | {"requestId"} | frozenset(_JOB_KEYS)


# -- parsing -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvokeRequest:
    request_id: str
    body: bytes | None
    s3_uri: tuple[str, str] | None = None  # (bucket, key) when the payload is fetched from S3
    members: dict[str, str] = field(default_factory=dict)  # ContentType, Accept, TargetModel, ...
    job_id: str | None = None  # envelope jobId / raw JobId attribute
    line: int | None = None  # envelope line / raw Line attribute


def parse_envelope(raw_body: str, message_id: str, payload_s3_prefix: str | None) -> InvokeRequest:
    document = loads_strict(raw_body, "body")
    if not isinstance(document, dict):
        raise InvalidMessage(
            f"body is a JSON {type(document).__name__}, not an object (the request envelope)"
        )
    request_id = _request_id(document.get("requestId"), message_id)
    try:
        return _parse_document(document, request_id, payload_s3_prefix)
    except InvalidMessage as exc:
        exc.request_id = request_id
        raise


def loads_strict(text: str, what: str) -> Any:
    """JSON that means one thing: no NaN/Infinity, no repeated key in any object, and every number one
    that is forwarded exactly as written; anything else is refused, naming `what` was read."""
    try:
        return json.loads(
            text, parse_constant=_refuse_constant, parse_float=_exact_float, object_pairs_hook=_unique_keys
        )
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"{what} is not JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise InvalidMessage(f"{what} is JSON nested too deeply to parse") from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InvalidMessage(f"{what} is not JSON: {exc}") from exc


def _parse_document(
    document: dict[str, Any], request_id: str, payload_s3_prefix: str | None
) -> InvokeRequest:
    unknown = sorted(set(document) - _ALLOWED_KEYS)
    if unknown:
        raise InvalidMessage(f"unknown envelope keys: {', '.join(_shown(key) for key in unknown)}")
    present = [key for key in _BODY_KEYS if key in document]
    if len(present) != 1:
        found = ", ".join(present) or "none"
        raise InvalidMessage(f"exactly one of {', '.join(_BODY_KEYS)} is required (found: {found})")
    members = {
        rule.member: rule.check(document[key], key) for key, rule in MEMBERS.items() if key in document
    }
    job_id = _job_id(document.get("jobId"))
    line = _line(document.get("line"))
    key = present[0]
    payload = _payload(key, document[key], members)
    if payload is None:
        location = _s3_location(document[key], payload_s3_prefix)
        return InvokeRequest(request_id, None, location, members, job_id, line)
    check_payload_size(len(payload))
    return InvokeRequest(request_id, payload, None, members, job_id, line)


def _job_id(value: Any, name: str = "jobId") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not REQUEST_ID.fullmatch(value):
        raise InvalidMessage(
            f"{name} must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"
        )
    return value


def _line(value: Any, name: str = "line") -> int | None:
    if value is None:
        return None
    # bool is an int in Python: true is not a line number.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LINE:
        raise InvalidMessage(f"{name} must be a whole number from 0 to {MAX_LINE}")
    return value


def _line_attribute(text: str | None) -> int | None:
    if text is None:
        return None
    # A Number attribute's text (SQS allows "+1", "1.0", "1e3"): only plain digits name a line.
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_LINE))):
        raise InvalidMessage(f"message attribute Line must be a whole number from 0 to {MAX_LINE}")
    return _line(int(text), "message attribute Line")


def _payload(key: str, value: Any, members: dict[str, str]) -> bytes | None:
    """The request body for the envelope's body key; None for bodyS3Uri (fetched later)."""
    if key == "bodyS3Uri":
        return None
    if key == "body":
        members.setdefault("ContentType", "application/json")
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (RecursionError, ValueError) as exc:  # parsed, so neither is expected: still the message's
            raise InvalidMessage(f"body cannot be serialised as JSON: {type(exc).__name__}") from exc
        return _utf8(text, key)
    if not isinstance(value, str):
        raise InvalidMessage(f"{key} must be a string")
    if key == "bodyText":
        return _utf8(value, key)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: characters outside ASCII
        raise InvalidMessage(f"bodyBase64 is not valid base64: {exc}") from exc


def _utf8(text: str, key: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidMessage(f"{key} holds text that is not valid Unicode (a lone surrogate)") from exc


def parse_raw(raw_body: str, message_id: str, attributes: Mapping[str, Any]) -> InvokeRequest:
    """`MESSAGE_FORMAT=raw`: the body is the payload; every header member of InvokeEndpoint may travel as
    a String message attribute named by the member (ContentType, TargetModel, ...), plus RequestId, JobId
    and Line (String or Number).
    Other attributes (the producer's own, the function's `invoker.*` bookkeeping) are not read."""
    if not isinstance(attributes, Mapping):
        raise InvalidMessage("message attributes are not a map of name to attribute")
    request_id = _request_id(_string_attribute(attributes, "RequestId"), message_id)
    members: dict[str, str] = {}
    try:
        for rule in MEMBERS.values():
            value = _string_attribute(attributes, rule.member)
            if value is not None:
                members[rule.member] = rule.check(value, rule.member)
        job_id = _job_id(_string_attribute(attributes, "JobId"), "message attribute JobId")
        line = _line_attribute(_string_attribute(attributes, "Line"))
        payload = _utf8(raw_body, "body")
        check_payload_size(len(payload))
    except InvalidMessage as exc:
        exc.request_id = request_id
        raise
    return InvokeRequest(request_id, payload, None, members, job_id, line)


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and neither would most endpoints.
    raise InvalidMessage(f"body is not JSON: {name} is not a JSON value")


def _exact_float(text: str) -> float:
    # A number is re-serialised from a double: refuse one that would reach the endpoint as another
    # number (1e999 -> Infinity, 1e-999 -> 0.0, 0.1000000000000000000001 -> 0.1). Integers are exact.
    value = float(text)
    if len(text) < 16 and "e" not in text and "E" not in text:
        # At most 15 significant digits and no exponent: a double holds it exactly (DBL_DIG is 15), so
        # the common case costs no conversion back.
        return value
    if repr(value) != text and Decimal(text) != Decimal(repr(value)):
        raise InvalidMessage(
            "a number in the message cannot be forwarded exactly (out of a double's range, or more "
            "digits than a double holds); send the payload as bodyText to keep it as written"
        )
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        repeated = ""
        for key, _ in pairs:
            if key in seen:
                repeated = key
                break
            seen.add(key)
        # A body's own keys may be payload text: only the envelope's keys are named.
        which = f"the key {repeated!r}" if repeated in _ALLOWED_KEYS else "a key"
        raise InvalidMessage(
            f"a JSON object in the message repeats {which} (ambiguous: JSON parsers differ on which counts)"
        )
    return document


def check_payload_size(size: int) -> None:
    if size > INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES:
        raise InvalidMessage(
            f"payload is {size} bytes, above InvokeEndpoint's limit of {INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES}"
        )


def _string_attribute(attributes: Mapping[str, Any], name: str) -> str | None:
    attribute = attributes.get(name)
    if attribute is None:
        return None
    value = attribute.get("stringValue") if isinstance(attribute, Mapping) else None
    if not isinstance(value, str):
        raise InvalidMessage(f"message attribute {name} must be a String attribute")
    return value


def _request_id(value: Any, message_id: str) -> str:
    if value is None:
        return message_id
    if not isinstance(value, str) or not REQUEST_ID.fullmatch(value):
        raise InvalidMessage(
            "requestId must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"
        )
    return value


def _s3_location(value: Any, payload_s3_prefix: str | None) -> tuple[str, str]:
    if payload_s3_prefix is None:
        raise InvalidMessage("bodyS3Uri is not enabled for this route (PAYLOAD_S3_PREFIX is not set)")
    if not isinstance(value, str):
        raise InvalidMessage("bodyS3Uri must be a string")
    match = _S3_URI.fullmatch(value)
    if match is None:
        raise InvalidMessage("bodyS3Uri is not an s3://bucket/key URI")
    if not value.startswith(payload_s3_prefix):
        raise InvalidMessage(f"bodyS3Uri must start with {payload_s3_prefix}")
    key = match.group(2)
    if _NOT_IN_A_MESSAGE.search(key):
        # The key is quoted in the reason if it cannot be read, and SQS refuses these characters in the
        # dead-letter copy's attributes: such a message could never be dead-lettered.
        raise InvalidMessage("bodyS3Uri holds control characters or noncharacters")
    if len(_utf8(key, "bodyS3Uri")) > _MAX_S3_KEY_BYTES:
        raise InvalidMessage(f"bodyS3Uri names a key longer than S3's {_MAX_S3_KEY_BYTES} bytes")
    return match.group(1), key


def _shown(text: str, limit: int = 64) -> str:
    """Producer text made safe to quote in a reason (a log line, a message attribute): printable ASCII,
    bounded. A lone surrogate or a control character would make the dead-letter copy unsendable."""
    escaped = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    escaped = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped)
    return escaped + ("..." if len(text) > limit else "")
