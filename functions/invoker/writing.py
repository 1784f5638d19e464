"""Everything the function writes about a message: its result (results queue and/or bucket) and its
dead-letter copy (dead-letter queue, with the body in the dead-letter bucket when it is too large)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from invoker import dead_letters
from invoker.contract import (
    JOB_INLINE_RESULT_BYTES,
    SQS_MAX_MESSAGE_BYTES,
    Reason,
    ResultsMode,
    job_result_key,
)
from invoker.contract import LetterAttribute as Attr
from invoker.outcomes import DEAD_LETTER, InvocationError, RetryLater
from invoker.results import ResultSource, result_document
from invoker.sqs_batch import OutgoingMessage, SendFailed, SqsBatchSender, message_size

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

    from invoker.config import Config
    from invoker.invocation import Invocation
    from invoker.records import RecordInfo

# Message ids used as they are in dead-letter bucket keys; anything else is hashed.
_SAFE_KEY_PART = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True, slots=True)
class DeadLetterWritten:
    body_s3_uri: str | None  # where the original body went, when it did not fit in the letter
    trimmed: dict[str, Any] | None  # what was left out to fit SQS's limits, when anything was
    message_id: str | None = None  # the letter's id on the dead-letter queue


@dataclass(frozen=True, slots=True)
class ResultWritten:
    """Where a result went (the request ledger records it): its message id on the results queue and/or
    the S3 URI of the result document (bucket only) or of its body (too large for SQS)."""

    queue_message_id: str | None = None
    s3_uri: str | None = None
    # A job request's result document, for its ledger item (None when too large: then job_result_s3_uri).
    document: str | None = None
    job_result_s3_uri: str | None = None


class DeadLetterFailed(RetryLater):
    """The dead-letter copy could not be written: the message must come back instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(
            Reason.DEAD_LETTER_FAILED, f"dead-letter queue: {message}", summary=f"dead-letter: {code}"
        )


class Writer:
    def __init__(self, config: Config, sqs: SQSClient, s3: Callable[[], S3Client]) -> None:
        self._config = config
        self._s3 = s3  # a factory: most routes never touch S3, so its client is not built at cold start
        in_flight = config.sqs_sends_in_flight
        self._dead_letters = SqsBatchSender(sqs, config.dead_letter_queue_url, in_flight)
        self._results = (
            SqsBatchSender(sqs, config.results_queue_url, in_flight) if config.results_queue_url else None
        )

    # -- results -------------------------------------------------------------------------------------------
    def write_result(self, info: RecordInfo, invocation: Invocation) -> ResultWritten:
        """Raises RetryLater (RESULT_DELIVERY_FAILED) when the result could not be written, and
        InvocationError (RESULT_TOO_LARGE) when it never can be."""
        try:
            written = self._write_result(info, invocation)
            return self._job_result(info, invocation, written) if info.job_id is not None else written
        except InvocationError:
            raise
        except Exception as exc:
            raise RetryLater(
                Reason.RESULT_DELIVERY_FAILED, f"{type(exc).__name__}: {exc}", summary=code_of(exc)
            ) from exc

    def _write_result(self, info: RecordInfo, invocation: Invocation) -> ResultWritten:
        config = self._config
        if config.results_mode is ResultsMode.DISCARD:
            return ResultWritten()
        if self._results is None:
            # Bucket only: the whole result is one object keyed by the request id.
            text = _dumps(self._document(info, invocation, None))
            key = f"{config.results_prefix}{info.request_id}.json"
            self._put_object(key, text, "application/json")
            return ResultWritten(s3_uri=f"s3://{config.results_bucket}/{key}")
        body_uri: str | None = None
        text = _dumps(self._document(info, invocation, None))
        size = message_size(text)  # UTF-8 bytes, the way SQS counts them (the document is not ASCII-only)
        if size > SQS_MAX_MESSAGE_BYTES:
            if config.results_bucket is None:
                too_large = f"result of {size} bytes exceeds the SQS limit and RESULTS_BUCKET is not set"
                raise InvocationError(
                    Reason.RESULT_TOO_LARGE, too_large, disposition=DEAD_LETTER, summary=too_large
                )
            key = f"{config.results_prefix}{info.request_id}.body"
            content_type = invocation.response.get("ContentType") or "application/octet-stream"
            self._put_object(key, invocation.body, content_type)
            body_uri = f"s3://{config.results_bucket}/{key}"
            text = _dumps(self._document(info, invocation, body_uri))
        try:
            message_id = self._results.send(_outgoing(self._results.queue_url, text, info))
        except SendFailed as exc:
            raise RetryLater(
                Reason.RESULT_DELIVERY_FAILED, f"results queue: {exc}", summary=f"results queue: {exc.code}"
            ) from exc
        return ResultWritten(queue_message_id=message_id or None, s3_uri=body_uri)

    def _job_result(self, info: RecordInfo, invocation: Invocation, written: ResultWritten) -> ResultWritten:
        """A job's line: its result document goes to the ledger item (small) or to the job's folder, where
        the assembler reads it in line order."""
        bucket_only = self._results is None
        # Queue mode with the body in the bucket (too large for SQS): the document points at it.
        body_uri = written.s3_uri if not bucket_only else None
        text = _dumps(self._document(info, invocation, body_uri))
        if len(text.encode()) <= JOB_INLINE_RESULT_BYTES or self._config.results_bucket is None:
            return replace(written, document=text)
        if bucket_only:  # the document is already an object of its own
            return replace(written, job_result_s3_uri=written.s3_uri)
        key = job_result_key(info.job_id or "", info.line or 0)
        self._put_object(key, text, "application/json")
        return replace(written, job_result_s3_uri=f"s3://{self._config.results_bucket}/{key}")

    def _document(self, info: RecordInfo, invocation: Invocation, s3_uri: str | None) -> dict[str, Any]:
        source = ResultSource(
            info.request_id, info.message_id, self._config.endpoint_name, info.receive_count
        )
        return result_document(
            source,
            invocation.response,
            body=None if s3_uri else invocation.body,
            body_s3_uri=s3_uri,
            latency_ms=invocation.latency_ms,
        )

    def _put_object(self, key: str, data: str | bytes, content_type: str) -> None:
        assert self._config.results_bucket is not None
        try:
            self._s3().put_object(
                Bucket=self._config.results_bucket,
                Key=key,
                Body=data.encode() if isinstance(data, str) else data,
                ContentType=content_type,
            )
        except Exception as exc:
            raise RetryLater(
                Reason.RESULT_DELIVERY_FAILED,
                f"results bucket: {type(exc).__name__}: {exc}",
                summary=f"results bucket: {code_of(exc)}",
            ) from exc

    # -- dead letters --------------------------------------------------------------------------------------
    def dead_letter(
        self,
        record: SQSRecord,
        info: RecordInfo,
        error: InvocationError,
        *,
        last_reason: Reason | None = None,
        bare: bool = False,
    ) -> DeadLetterWritten:
        """Sends the dead-letter copy of `record`; raises DeadLetterFailed.

        The copy holds the body byte for byte (so a redrive re-processes it unchanged), our attributes, and
        the producer's own (raw mode's ContentType/Accept among them; none when `bare`) as far as SQS's
        limits allow. A body too large to fit with the reason is stored in the dead-letter bucket and the
        letter points at it."""
        ours = _our_attributes(info, error, last_reason)
        incoming = _incoming_attributes(record)
        redrives = dead_letters.redrive_count(incoming)
        if redrives is not None:
            ours[Attr.REDRIVE_COUNT] = dead_letters.number(redrives)
        producer: dict[str, MessageAttributeValueTypeDef] = {}
        unusable: list[str] = []
        if not bare:
            producer, unusable = dead_letters.producer_attributes(incoming)
        body = record.raw_event.get("body")
        body = body if isinstance(body, str) else ""
        stored = dead_letters.pointer_of(body, incoming)
        if stored is not None:
            # A pointer letter moved back unchanged (SQS's move task): it still points at the stored body.
            ours[Attr.BODY_S3_URI] = dead_letters.text(stored)
        letter = dead_letters.fit(body, ours, producer)
        if letter is None:
            uri = self._store_body(info, body)
            ours[Attr.BODY_S3_URI] = dead_letters.text(uri)
            letter = dead_letters.fit(dead_letters.pointer_body(uri), ours, producer)
            assert letter is not None  # a short body with our attributes always fits
        try:
            letter_id = self._dead_letters.send(
                _outgoing(self._config.dead_letter_queue_url, letter.body, info, letter.attributes)
            )
        except SendFailed as exc:
            raise DeadLetterFailed(exc.code, str(exc)) from exc
        uri_attribute = letter.attributes.get(Attr.BODY_S3_URI)
        dropped = [*unusable, *letter.dropped]
        trimmed = None
        if dropped or letter.error_trimmed:
            trimmed = {
                "dropped_attributes": dropped,
                "unusable_attributes": unusable,
                "error_text_trimmed": letter.error_trimmed,
                "size": message_size(letter.body, letter.attributes),
            }
        return DeadLetterWritten(
            uri_attribute.get("StringValue") if uri_attribute else None, trimmed, letter_id or None
        )

    def _store_body(self, info: RecordInfo, body: str) -> str:
        """The original body, as the exact UTF-8 bytes SQS delivered, in the dead-letter bucket."""
        config = self._config
        name = info.message_id
        if not _SAFE_KEY_PART.fullmatch(name):
            name = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        key = f"{config.dead_letter_prefix}{name}.body"
        try:
            self._s3().put_object(
                Bucket=config.dead_letter_bucket,
                Key=key,
                Body=body.encode("utf-8", "surrogatepass"),
                ContentType="application/octet-stream",
            )
        except Exception as exc:
            code = code_of(exc)
            raise DeadLetterFailed(code, f"dead-letter bucket: {code}") from exc
        return f"s3://{config.dead_letter_bucket}/{key}"


def _our_attributes(
    info: RecordInfo, error: InvocationError, last_reason: Reason | None
) -> dict[str, MessageAttributeValueTypeDef]:
    text, num = dead_letters.text, dead_letters.number
    ours: dict[str, MessageAttributeValueTypeDef] = {
        Attr.REASON: text((Reason.RETRIES_EXHAUSTED if last_reason else error.reason).value),
        # The model's or the validator's own words: the letter holds the body anyway.
        Attr.ERROR: text(error.message[: dead_letters.MAX_ERROR_TEXT] or error.reason.value),
        Attr.REQUEST_ID: text(info.request_id),
        Attr.MESSAGE_ID: text(info.message_id),
        Attr.RECEIVE_COUNT: num(info.receive_count),
        Attr.SOURCE_QUEUE_ARN: text(info.source_arn),
    }
    if last_reason is not None:
        ours[Attr.LAST_REASON] = text(last_reason.value)
    if error.original_status_code is not None:
        ours[Attr.ORIGINAL_STATUS_CODE] = num(error.original_status_code)
    if error.log_stream_arn:
        ours[Attr.LOG_STREAM_ARN] = text(error.log_stream_arn)
    return ours


def _outgoing(
    queue_url: str,
    body: str,
    info: RecordInfo,
    attributes: dict[str, MessageAttributeValueTypeDef] | None = None,
) -> OutgoingMessage:
    """A FIFO destination needs a message group (the source's, or the request's own) and a
    deduplication id (the source message id: a repeated write of the same message is dropped)."""
    fifo = queue_url.endswith(".fifo")
    return OutgoingMessage(
        body=body,
        attributes=attributes,
        group_id=(info.group_id or info.request_id) if fifo else None,
        deduplication_id=info.message_id if fifo else None,
    )


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def code_of(exc: BaseException) -> str:
    """An exception's error code or type name: never its text, which may quote the message."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error_code = response.get("Error", {}).get("Code")
        if error_code:
            return str(error_code)
    return type(exc).__name__


def _incoming_attributes(record: SQSRecord) -> dict[str, Any]:
    attributes = record.raw_event.get("messageAttributes")
    return attributes if isinstance(attributes, dict) else {}
