"""Dead-letter queue: look without consuming (receive, then visibility 0) and redrive without losing.

A redrive sends each message to its request queue first and deletes it from the DLQ only after SQS
accepted the copy: an interruption between the two leaves a duplicate, never a gap.

A redrive never feeds a loop: one run moves each letter at most once and covers what the DLQ held when
it started (a copy that fails again while the run goes on is left for the next run), and every copy
carries `invoker.redrive_count`, which the function keeps when it dead-letters the copy again; letters
redriven `max_redrives` times are held back unless forced.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from invoker.contract import SQS_MAX_MESSAGE_ATTRIBUTES
from invoker.contract import LetterAttribute as Attr

from sqs_sagemaker_invoker.cli.errors import describe_aws_error
from sqs_sagemaker_invoker.cli.results.reader import MAX_RECEIVE, parse_s3_uri, release_messages

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
    )

    from sqs_sagemaker_invoker.cli.target import Route, Target

INVOKER_PREFIX = Attr.PREFIX
# Shared with the function (docs/function.md, "Dead-letter messages"): how often a letter was redriven, and where
# the original body of a letter too large to hold it next to its reason is kept.
REDRIVE_COUNT = Attr.REDRIVE_COUNT
BODY_S3_URI = Attr.BODY_S3_URI
DEFAULT_MAX_REDRIVES = 3
MAX_READ_COUNT = 10**9  # a larger redrive count reads as this (held back all the same)
MAX_MESSAGE_ATTRIBUTES = SQS_MAX_MESSAGE_ATTRIBUTES
# No invoker.reason: SQS itself moved the message (the request queue's maxReceiveCount), e.g. after the
# function failed whole batches. The local demo uses the same name.
UNKNOWN_REASON = "redrive_policy"


@dataclass
class DeadLetter:
    message: MessageTypeDef

    @property
    def message_id(self) -> str:
        return self.message["MessageId"]

    @property
    def receipt_handle(self) -> str:
        return self.message["ReceiptHandle"]

    @property
    def body(self) -> str:
        return self.message.get("Body", "")

    def attribute(self, name: str) -> str | None:
        value = self.message.get("MessageAttributes", {}).get(name)
        return value.get("StringValue") if value else None

    @property
    def reason(self) -> str:
        return self.attribute(Attr.REASON) or UNKNOWN_REASON

    @property
    def request_id(self) -> str | None:
        found = self.attribute(Attr.REQUEST_ID)
        if found:
            return found
        with contextlib.suppress(ValueError):
            document = json.loads(self.body)
            if isinstance(document, dict) and isinstance(document.get("requestId"), str):
                return str(document["requestId"])
        return None

    @property
    def group_id(self) -> str | None:
        return self.message.get("Attributes", {}).get("MessageGroupId")

    @property
    def redrive_count(self) -> int:
        """Redrives so far: 0 when never redriven or not a number; any SQS Number form ("3", "3.0", "3e0")
        reads as its whole part, so no spelling of a count slips past --max-redrives."""
        text = (self.attribute(REDRIVE_COUNT) or "").strip()
        try:
            value = Decimal(text)
        except InvalidOperation:
            return 0
        if not value.is_finite() or value < 0:
            return 0
        # Capped before int(): "1e999999999" would otherwise build a billion-digit integer.
        return MAX_READ_COUNT if value >= MAX_READ_COUNT else int(value)

    @property
    def body_s3_uri(self) -> str | None:
        """Where the original body is when the letter is a pointer to it (too large for the DLQ)."""
        return self.attribute(BODY_S3_URI)

    @property
    def redriven_id(self) -> str | None:
        """The message id this letter had in the request queue (the id of a copy a redrive sent)."""
        return self.attribute(Attr.MESSAGE_ID)

    def matches(self, wanted: str) -> bool:
        return wanted in {
            self.message_id,
            self.request_id,
            self.attribute(Attr.MESSAGE_ID),
            self.attribute(Attr.REQUEST_ID),
        }

    def producer_attributes(self) -> dict[str, MessageAttributeValueTypeDef]:
        """The message's own attributes without the invoker.* ones (which describe the dead-lettering)."""
        out: dict[str, MessageAttributeValueTypeDef] = {}
        for name, value in self.message.get("MessageAttributes", {}).items():
            if name.startswith(INVOKER_PREFIX):
                continue
            out[name] = _sendable(value)
        return out


class BodyUnavailable(Exception):
    """The original body of a pointer letter cannot be read back from S3."""


def original_body(letter: DeadLetter, s3: S3Client) -> str:
    """The letter's original body: its own, or for a pointer letter the S3 object's exact bytes."""
    uri = letter.body_s3_uri
    if uri is None:
        return letter.body
    try:
        bucket, key = parse_s3_uri(uri)
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ValueError as exc:
        raise BodyUnavailable(f"{BODY_S3_URI} {uri!r} is not an s3://bucket/key URI") from exc
    except (ClientError, BotoCoreError) as exc:
        raise BodyUnavailable(f"original body at {uri} unreadable: {describe_aws_error(exc) or exc}") from exc
    try:
        # An SQS body is text: the object holds the UTF-8 bytes SQS delivered.
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyUnavailable(f"original body at {uri} is not UTF-8 text") from exc


def message_size(body: str, attributes: dict[str, MessageAttributeValueTypeDef]) -> int:
    """A message's size as SQS counts it: the body and each attribute's name, type and value."""
    size = len(body.encode())
    for name, value in attributes.items():
        size += len(name.encode()) + len(value["DataType"].encode())
        size += len(value.get("StringValue", "").encode())
        binary = value.get("BinaryValue")
        size += len(binary) if isinstance(binary, bytes | str) else 0
    return size


def _sendable(value: MessageAttributeValueOutputTypeDef) -> MessageAttributeValueTypeDef:
    attribute: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
    if "StringValue" in value:
        attribute["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["BinaryValue"] = value["BinaryValue"]
    return attribute


class DeadLetterQueue:
    def __init__(self, target: Target, route: Route, *, visibility_timeout: int) -> None:
        self.target = target
        self.route = route
        self.url = route.dead_letter_queue_url
        self.sqs: SQSClient = target.sqs()
        self.visibility_timeout = visibility_timeout
        self._held: dict[str, str] = {}  # message id -> receipt handle, made visible again at the end

    def depth(self) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)), int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def receive(self, *, wait_seconds: int = 1) -> Iterator[list[DeadLetter]]:
        """Batches of messages not seen before in this run; ends when nothing new is visible."""
        seen: set[str] = set()
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=MAX_RECEIVE,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=self.visibility_timeout,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            fresh = []
            for message in messages:
                letter = DeadLetter(message)
                if letter.message_id in seen:
                    # Its hold expired while we worked: hold it again under the new handle.
                    if letter.message_id in self._held:
                        self._held[letter.message_id] = letter.receipt_handle
                    continue
                seen.add(letter.message_id)
                fresh.append(letter)
            if not fresh:
                return
            yield fresh

    def hold(self, letter: DeadLetter) -> None:
        self._held[letter.message_id] = letter.receipt_handle

    def forget(self, letter: DeadLetter) -> None:
        self._held.pop(letter.message_id, None)

    def release(self) -> None:
        handles, self._held = list(self._held.values()), {}
        release_messages(self.sqs, self.url, handles)

    def scan(
        self, *, limit: int | None = None, stop: Callable[[DeadLetter], bool] | None = None
    ) -> list[DeadLetter]:
        """Read (and hold) up to `limit` messages; the caller must `release()` them.

        Pass the queue's approximate depth as `limit` to spare the final, empty long poll.
        """
        letters: list[DeadLetter] = []
        for batch in self.receive():
            for letter in batch:
                self.hold(letter)  # every message received is put back, also past a match
            letters.extend(batch)
            if stop is not None and any(stop(letter) for letter in batch):
                break
            if limit is not None and len(letters) >= limit:
                break
        return letters


# ------------------------------------------------------------------------------------------------
# list


@dataclass
class ReasonSummary:
    reason: str
    count: int = 0
    status_codes: Counter[str] = field(default_factory=Counter)
    last_reasons: Counter[str] = field(default_factory=Counter)
    log_streams: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "count": self.count,
            "originalStatusCodes": dict(self.status_codes),
            "lastReasons": dict(self.last_reasons),
            "logStreamArns": self.log_streams,
            "exampleRequestIds": self.request_ids,
        }


def summarize(letters: list[DeadLetter], *, examples: int = 3) -> list[ReasonSummary]:
    by_reason: dict[str, ReasonSummary] = {}
    for letter in letters:
        summary = by_reason.setdefault(letter.reason, ReasonSummary(letter.reason))
        summary.count += 1
        code = letter.attribute(Attr.ORIGINAL_STATUS_CODE)
        if code:
            summary.status_codes[code] += 1
        last = letter.attribute(Attr.LAST_REASON)
        if last:
            summary.last_reasons[last] += 1
        stream = letter.attribute(Attr.LOG_STREAM_ARN)
        if stream and stream not in summary.log_streams and len(summary.log_streams) < examples:
            summary.log_streams.append(stream)
        request_id = letter.request_id or letter.message_id
        if len(summary.request_ids) < examples:
            summary.request_ids.append(request_id)
    return sorted(by_reason.values(), key=lambda s: (-s.count, s.reason))
