"""One message's journey: parse, invoke, then deliver, retry later or dead-letter, and say why."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoker import dead_letters
from invoker.backoff import backoff_seconds
from invoker.config import Config, MessageFormat, ResultsMode
from invoker.envelope import MAX_PAYLOAD_BYTES, InvokeRequest, check_payload_size, parse_envelope, parse_raw
from invoker.outcomes import (
    DEAD_LETTER,
    REATTEMPT_IN_BATCH,
    Disposition,
    InvalidMessage,
    InvocationError,
    Reason,
    RetryLater,
    classify,
)
from invoker.results import result_document
from invoker.sqs_batch import MAX_MESSAGE_BYTES, OutgoingMessage, SendFailed, SqsBatchSender, message_size

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

    from invoker.concurrency import AdaptiveLimiter

# Message ids used as they are in dead-letter bucket keys; anything else is hashed.
_SAFE_KEY_PART = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Messages returned without having failed themselves come back at once: they did nothing wrong.
_RETURN_AT_ONCE = frozenset({Reason.DEADLINE, Reason.FIFO_GROUP_BLOCKED})
# With LOG_PAYLOADS=true, how much of a payload goes into a log line.
_PAYLOAD_LOG_BYTES = 4096


@dataclass(slots=True)
class RecordInfo:
    message_id: str
    receive_count: int
    source_arn: str
    group_id: str | None
    request_id: str


@dataclass(frozen=True, slots=True)
class PendingRetry:
    source_arn: str
    receipt_handle: str
    message_id: str
    delay_seconds: int


@dataclass(slots=True)
class BatchState:
    """What one batch has learnt so far; shared by the threads working on it."""

    remaining_ms: Callable[[], int] | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    not_ready_message: str | None = None
    blocked_groups: set[str] = field(default_factory=set)
    retries: list[PendingRetry] = field(default_factory=list)
    invocations: int = 0
    reattempts: int = 0
    succeeded: int = 0
    retried: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    # Outcome log lines, written by the handler's thread when the batch is done: from 64 threads at
    # once, the logging handler's lock (held across each write) costs more CPU than the lines themselves.
    log_lines: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class Invoker:
    def __init__(
        self,
        config: Config,
        *,
        runtime: SageMakerRuntimeClient,
        sqs: SQSClient,
        s3: Callable[[], S3Client],
        limiter: AdaptiveLimiter,
        logger: logging.Logger | Any,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.limiter = limiter
        self._runtime = runtime
        self._sqs = sqs
        self._s3 = s3  # a factory: most routes never touch S3, so its client is not built at cold start
        self._logger = logger
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._dead_letters = SqsBatchSender(sqs, config.dead_letter_queue_url)
        self._results = SqsBatchSender(sqs, config.results_queue_url) if config.results_queue_url else None
        self.batch = BatchState(remaining_ms=None)

    # -- batch lifecycle -------------------------------------------------------------------------------
    def begin_batch(self, remaining_ms: Callable[[], int] | None) -> BatchState:
        self.batch = BatchState(remaining_ms=remaining_ms)
        return self.batch

    def block_group(self, group_id: str) -> None:
        with self.batch.lock:
            self.batch.blocked_groups.add(group_id)

    # -- one record --------------------------------------------------------------------------------------
    def handle(self, record: SQSRecord) -> dict[str, Any]:
        """Returns when the message may be deleted; raises `RetryLater` when it must come back.

        Whatever fails on the way (a bug of ours included), the record ends in a disposition with a
        reason, logged and counted: Powertools would otherwise fail it silently."""
        raw = record.raw_event
        attributes = raw.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        message_id = str(raw.get("messageId") or "")
        info = RecordInfo(
            message_id=message_id,
            receive_count=_int(attributes.get("ApproximateReceiveCount"), 1),
            source_arn=str(raw.get("eventSourceARN") or ""),
            group_id=attributes.get("MessageGroupId"),
            request_id=message_id,
        )
        try:
            return self._handle(record, info)
        except InvocationError as error:  # a retry, already scheduled, counted and logged
            raise _quiet(error) from None
        except Exception as exc:
            return self._last_resort(record, info, exc)

    def _handle(self, record: SQSRecord, info: RecordInfo) -> dict[str, Any]:
        try:
            if info.group_id is not None and info.group_id in self.batch.blocked_groups:
                raise RetryLater(
                    Reason.FIFO_GROUP_BLOCKED, "an earlier message of its group is being retried"
                )
            request = self._parse(record)
            info.request_id = request.request_id
            payload = request.body if request.body is not None else self._fetch(request)
            if self.config.log_payloads:
                self._emit(
                    "info",
                    "request payload",
                    {
                        "request_id": info.request_id,
                        "message_id": info.message_id,
                        "payload": payload[:_PAYLOAD_LOG_BYTES].decode(errors="replace"),
                        "custom_attributes": request.members.get("CustomAttributes"),
                    },
                )
            response, body, latency_ms = self._invoke(request, payload)
        except InvocationError as error:
            if isinstance(error, InvalidMessage) and error.request_id:
                info.request_id = error.request_id
            return self._settle_failure(record, info, error)
        except Exception as exc:
            # A bug of ours must not fail the whole batch, nor lose the message: retry it, and after
            # exhaustion it reaches the DLQ with this reason.
            return self._settle_failure(record, info, self._unexpected(info, exc))
        return self._deliver(record, info, response, body, latency_ms)

    def _unexpected(self, info: RecordInfo, exc: Exception) -> RetryLater:
        # The exception's text may quote the message: logged only with LOG_PAYLOADS, the frames always.
        fields: dict[str, Any] = {
            "message_id": info.message_id,
            "request_id": info.request_id,
            "exception_type": type(exc).__name__,
            "traceback": "".join(traceback.format_tb(exc.__traceback__)),
        }
        if self.config.log_payloads:
            fields["exception"] = str(exc)
        self._emit("error", "unexpected error", fields)
        unexpected = RetryLater(
            Reason.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}", summary=type(exc).__name__
        )
        unexpected.__cause__ = exc
        return unexpected

    def _last_resort(self, record: SQSRecord, info: RecordInfo, exc: Exception) -> dict[str, Any]:
        """Settling the record itself failed: retry it with the bare minimum (no producer attributes
        copied); if even that fails, count and log it and let Powertools report it failed."""
        error = self._unexpected(info, exc)
        try:
            return self._settle_failure(record, info, error, bare=True)
        except InvocationError as retry:
            raise _quiet(retry) from None
        except Exception as again:
            with self.batch.lock:
                self.batch.retried[Reason.UNEXPECTED_ERROR] += 1
            self._log(
                "error",
                "retry later",
                info,
                Disposition.RETRY,
                Reason.UNEXPECTED_ERROR,
                error=error.summary,
                backoff="not applied: " + type(again).__name__,
            )
            raise RetryLater(Reason.UNEXPECTED_ERROR, error.summary) from None

    def _parse(self, record: SQSRecord) -> InvokeRequest:
        if self.config.message_format is MessageFormat.RAW:
            return parse_raw(
                record.body or "", record.message_id, record.raw_event.get("messageAttributes") or {}
            )
        return parse_envelope(record.body or "", record.message_id, self.config.payload_s3_prefix)

    def _fetch(self, request: InvokeRequest) -> bytes:
        assert request.s3_uri is not None
        bucket, key = request.s3_uri
        try:
            obj = self._s3().get_object(Bucket=bucket, Key=key)
            check_payload_size(obj["ContentLength"])
            payload = obj["Body"].read(MAX_PAYLOAD_BYTES + 1)
        except InvocationError:
            raise
        except Exception as exc:
            error = classify(exc)
            code = error.error_code or type(exc).__name__
            if (
                error.http_status is not None
                and error.http_status < 500
                and code not in {"SlowDown", "RequestTimeout"}
            ):
                raise InvalidMessage(
                    f"bodyS3Uri s3://{bucket}/{key} could not be read: {code}",
                    summary=f"bodyS3Uri could not be read: {code}",
                ) from exc
            raise RetryLater(
                Reason.TRANSPORT_ERROR,
                f"reading s3://{bucket}/{key} failed: {code}",
                summary=f"reading bodyS3Uri failed: {code}",
            ) from exc
        check_payload_size(len(payload))
        return payload

    def _check_can_start(self) -> None:
        batch = self.batch
        if batch.not_ready_message is not None:
            raise RetryLater(
                Reason.MODEL_NOT_READY,
                f"not invoked: {batch.not_ready_message}",
                summary="not invoked: the endpoint answered ModelNotReadyException",
            )
        if batch.remaining_ms is not None and batch.remaining_ms() < self.config.deadline_seconds * 1000:
            text = f"not invoked: less than {self.config.deadline_seconds} s of the function's time left"
            raise RetryLater(Reason.DEADLINE, text, summary=text)

    def _invoke(self, request: InvokeRequest, payload: bytes) -> tuple[dict[str, Any], bytes, float]:
        attempt = 0
        while True:
            self._check_can_start()
            permit = self.limiter.acquire()
            try:
                # The wait for a permit can be long: check again before spending the endpoint's time.
                self._check_can_start()
            except RetryLater:
                self.limiter.release(permit)
                raise
            started = time.perf_counter()
            try:
                response: Any = self._runtime.invoke_endpoint(
                    EndpointName=self.config.endpoint_name, Body=payload, **request.members
                )
                body: bytes = response["Body"].read()
            except Exception as exc:
                error = classify(exc)
                self.limiter.release(permit, throttled=error.reason is Reason.THROTTLED)
                with self.batch.lock:
                    self.batch.invocations += 1
                    if error.reason is Reason.MODEL_NOT_READY and self.batch.not_ready_message is None:
                        self.batch.not_ready_message = (
                            f"endpoint answered ModelNotReadyException: {error.message}"
                        )
                if attempt < REATTEMPT_IN_BATCH.get(error.reason, 0):
                    attempt += 1
                    with self.batch.lock:
                        self.batch.reattempts += 1
                    # Short, jittered pause: the queue is the retry mechanism, this only rides out a blip.
                    self._sleep(self._rng.uniform(0, min(1.0, 0.05 * 2**attempt)))
                    continue
                raise error from exc
            latency_ms = (time.perf_counter() - started) * 1000
            self.limiter.release(permit, succeeded=True)
            with self.batch.lock:
                self.batch.invocations += 1
                self.batch.latencies_ms.append(latency_ms)
            return response, body, latency_ms

    # -- outcomes ----------------------------------------------------------------------------------------
    def _deliver(
        self, record: SQSRecord, info: RecordInfo, response: dict[str, Any], body: bytes, latency_ms: float
    ) -> dict[str, Any]:
        try:
            self._write_result(info, response, body, latency_ms)
        except InvocationError as error:
            return self._settle_failure(record, info, error)
        with self.batch.lock:
            self.batch.succeeded += 1
        extra: dict[str, Any] = {"latency_ms": round(latency_ms, 3)}
        if self.config.log_payloads:
            extra["response_body"] = body[:_PAYLOAD_LOG_BYTES].decode(errors="replace")
            extra["response_custom_attributes"] = response.get("CustomAttributes")
        self._log("info", "delivered", info, Disposition.DELIVER, None, **extra)
        return {"requestId": info.request_id, "disposition": Disposition.DELIVER.value}

    def _write_result(
        self, info: RecordInfo, response: dict[str, Any], body: bytes, latency_ms: float
    ) -> None:
        try:
            self._write_result_unchecked(info, response, body, latency_ms)
        except InvocationError:
            raise
        except Exception as exc:
            raise RetryLater(
                Reason.RESULT_DELIVERY_FAILED, f"{type(exc).__name__}: {exc}", summary=_code_of(exc)
            ) from exc

    def _write_result_unchecked(
        self, info: RecordInfo, response: dict[str, Any], body: bytes, latency_ms: float
    ) -> None:
        config = self.config
        if config.results_mode is ResultsMode.DISCARD:
            return

        def document(s3_uri: str | None) -> dict[str, Any]:
            return result_document(
                request_id=info.request_id,
                message_id=info.message_id,
                endpoint_name=config.endpoint_name,
                response=response,
                body=None if s3_uri else body,
                body_s3_uri=s3_uri,
                latency_ms=latency_ms,
                receive_count=info.receive_count,
            )

        if self._results is None:
            # Bucket only: the whole result is one object keyed by the request id.
            self._put_object(
                f"{config.results_prefix}{info.request_id}.json", _dumps(document(None)), "application/json"
            )
            return
        text = _dumps(document(None))
        size = message_size(text)  # UTF-8 bytes, the way SQS counts them (the document is not ASCII-only)
        if size > MAX_MESSAGE_BYTES:
            if config.results_bucket is None:
                too_large = f"result of {size} bytes exceeds the SQS limit and RESULTS_BUCKET is not set"
                raise InvocationError(
                    Reason.RESULT_TOO_LARGE, too_large, disposition=DEAD_LETTER, summary=too_large
                )
            key = f"{config.results_prefix}{info.request_id}.body"
            self._put_object(key, body, response.get("ContentType") or "application/octet-stream")
            text = _dumps(document(f"s3://{config.results_bucket}/{key}"))
        try:
            self._results.send(_outgoing(self._results.queue_url, text, info))
        except SendFailed as exc:
            raise RetryLater(
                Reason.RESULT_DELIVERY_FAILED, f"results queue: {exc}", summary=f"results queue: {exc.code}"
            ) from exc

    def _put_object(self, key: str, data: str | bytes, content_type: str) -> None:
        assert self.config.results_bucket is not None
        try:
            self._s3().put_object(
                Bucket=self.config.results_bucket,
                Key=key,
                Body=data.encode() if isinstance(data, str) else data,
                ContentType=content_type,
            )
        except Exception as exc:
            raise RetryLater(
                Reason.RESULT_DELIVERY_FAILED,
                f"results bucket: {type(exc).__name__}: {exc}",
                summary=f"results bucket: {_code_of(exc)}",
            ) from exc

    def _settle_failure(
        self, record: SQSRecord, info: RecordInfo, error: InvocationError, *, bare: bool = False
    ) -> dict[str, Any]:
        last_reason: Reason | None = None
        if error.disposition is Disposition.RETRY:
            if info.receive_count < self.config.max_receive_count:
                self._schedule_retry(record, info, error)
                raise error
            # The queue's redrive policy would move it on the next receive, without a reason: do it here.
            last_reason = error.reason
        try:
            letter = self._dead_letter_message(record, info, error, last_reason, bare=bare)
            self._dead_letters.send(letter)
        except (SendFailed, _StoreFailed) as exc:
            failure = RetryLater(
                Reason.DEAD_LETTER_FAILED,
                f"dead-letter queue: {exc}",
                summary=f"dead-letter: {_code_of(exc)}",
            )
            self._schedule_retry(record, info, failure)
            raise failure from exc
        reason = Reason.RETRIES_EXHAUSTED if last_reason else error.reason
        with self.batch.lock:
            self.batch.dead_lettered[reason] += 1
        extra = self._error_fields(error)
        if last_reason:
            extra["last_reason"] = last_reason.value
        if letter.attributes and dead_letters.BODY_S3_URI in letter.attributes:
            extra["body_s3_uri"] = letter.attributes[dead_letters.BODY_S3_URI].get("StringValue")
        self._log("error", "dead-lettered", info, Disposition.DEAD_LETTER, reason, **extra)
        return {
            "requestId": info.request_id,
            "disposition": Disposition.DEAD_LETTER.value,
            "reason": reason.value,
        }

    def _error_fields(self, error: InvocationError) -> dict[str, Any]:
        """What a log line says about an error: codes, statuses and the payload-free summary; the
        message (which may quote the request) only with LOG_PAYLOADS."""
        fields: dict[str, Any] = {"error": error.message if self.config.log_payloads else error.summary}
        if error.error_code:
            fields["error_code"] = error.error_code
        if error.http_status is not None:
            fields["http_status"] = error.http_status
        if error.original_status_code is not None:
            fields["original_status_code"] = error.original_status_code
        if error.log_stream_arn:
            fields["log_stream_arn"] = error.log_stream_arn
        if self.config.log_payloads and error.original_message is not None:
            fields["original_message"] = error.original_message
        return fields

    def _schedule_retry(self, record: SQSRecord, info: RecordInfo, error: InvocationError) -> None:
        if error.reason in _RETURN_AT_ONCE:
            delay = 0
        else:
            delay = backoff_seconds(
                info.receive_count, self.config.retry_base_seconds, self.config.retry_max_seconds, self._rng
            )
        receipt_handle = record.raw_event["receiptHandle"]  # without it no backoff: the last resort logs that
        with self.batch.lock:
            self.batch.retried[error.reason] += 1
            self.batch.retries.append(PendingRetry(info.source_arn, receipt_handle, info.message_id, delay))
        self._log(
            "warning",
            "retry later",
            info,
            Disposition.RETRY,
            error.reason,
            **self._error_fields(error),
            delay_seconds=delay,
        )

    def _dead_letter_message(
        self,
        record: SQSRecord,
        info: RecordInfo,
        error: InvocationError,
        last_reason: Reason | None,
        *,
        bare: bool = False,
    ) -> OutgoingMessage:
        """The dead-letter copy: the body byte for byte (so a redrive re-processes it unchanged), our
        reason attributes, and the producer's own attributes (raw mode's ContentType/Accept among
        them) as far as SQS's limits allow. A body too large to fit with the reason is stored in the
        dead-letter bucket and the letter points at it."""
        text, num = dead_letters.text, dead_letters.number
        ours: dict[str, MessageAttributeValueTypeDef] = {
            dead_letters.REASON: text((Reason.RETRIES_EXHAUSTED if last_reason else error.reason).value),
            # The model's or the validator's own words: the letter holds the body anyway.
            dead_letters.ERROR: text(error.message[: dead_letters.MAX_ERROR_TEXT] or error.reason.value),
            dead_letters.REQUEST_ID: text(info.request_id),
            dead_letters.MESSAGE_ID: text(info.message_id),
            dead_letters.RECEIVE_COUNT: num(info.receive_count),
            dead_letters.SOURCE_QUEUE_ARN: text(info.source_arn),
        }
        if last_reason is not None:
            ours[dead_letters.LAST_REASON] = text(last_reason.value)
        if error.original_status_code is not None:
            ours[dead_letters.ORIGINAL_STATUS_CODE] = num(error.original_status_code)
        if error.log_stream_arn:
            ours[dead_letters.LOG_STREAM_ARN] = text(error.log_stream_arn)
        incoming = _incoming_attributes(record)
        redrives = dead_letters.redrive_count(incoming)
        if redrives is not None:
            ours[dead_letters.REDRIVE_COUNT] = num(redrives)
        producer: dict[str, MessageAttributeValueTypeDef] = {}
        unusable: list[str] = []
        if not bare:
            producer, unusable = dead_letters.producer_attributes(incoming)
        body = record.raw_event.get("body")
        body = body if isinstance(body, str) else ""
        stored = dead_letters.pointer_of(body, incoming)
        if stored is not None:
            # A pointer letter moved back unchanged (SQS's move task): it still points at the stored body.
            ours[dead_letters.BODY_S3_URI] = text(stored)
        letter = dead_letters.fit(body, ours, producer)
        if letter is None:
            uri = self._store_body(info, body)
            ours[dead_letters.BODY_S3_URI] = text(uri)
            letter = dead_letters.fit(dead_letters.pointer_body(uri), ours, producer)
            assert letter is not None  # a short body with our attributes always fits
        dropped = [*unusable, *letter.dropped]
        if dropped or letter.error_trimmed:
            self._emit(
                "warning",
                "dead-letter copy trimmed to SQS's limits",
                {
                    "message_id": info.message_id,
                    "request_id": info.request_id,
                    "dropped_attributes": dropped,
                    "unusable_attributes": unusable,
                    "error_text_trimmed": letter.error_trimmed,
                    "size": message_size(letter.body, letter.attributes),
                },
            )
        return _outgoing(self.config.dead_letter_queue_url, letter.body, info, letter.attributes)

    def _store_body(self, info: RecordInfo, body: str) -> str:
        """The original body, as the exact UTF-8 bytes SQS delivered, in the dead-letter bucket."""
        config = self.config
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
            raise _StoreFailed(_code_of(exc)) from exc
        return f"s3://{config.dead_letter_bucket}/{key}"

    def _log(
        self,
        level: str,
        message: str,
        info: RecordInfo,
        disposition: Disposition,
        reason: Reason | None,
        **extra: Any,
    ) -> None:
        fields = {
            "request_id": info.request_id,
            "message_id": info.message_id,
            "endpoint": self.config.endpoint_name,
            "disposition": disposition.value,
            "reason": reason.value if reason else None,
            "receive_count": info.receive_count,
            **extra,
        }
        self._emit(level, message, fields)

    def _emit(self, level: str, message: str, fields: dict[str, Any]) -> None:
        with self.batch.lock:
            self.batch.log_lines.append((level, message, fields))

    def flush_logs(self) -> None:
        with self.batch.lock:
            lines, self.batch.log_lines = self.batch.log_lines, []
        for level, message, fields in lines:
            try:
                getattr(self._logger, level)(message, extra=fields)
            except Exception as exc:  # a line that cannot be written must not fail the batch
                self._logger.error(
                    "log line not written",
                    extra={
                        "line": message,
                        "message_id": fields.get("message_id"),
                        "disposition": fields.get("disposition"),
                        "reason": fields.get("reason"),
                        "exception_type": type(exc).__name__,
                    },
                )


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


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


class _StoreFailed(Exception):
    """The dead-letter bucket refused the body of a letter too large for SQS."""

    def __init__(self, code: str) -> None:
        super().__init__(f"dead-letter bucket: {code}")
        self.code = code


def _code_of(exc: BaseException) -> str:
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


def _quiet(error: InvocationError) -> RetryLater:
    """What goes back to Powertools (which may log it at debug level): the summary, not the message."""
    return RetryLater(error.reason, error.summary, summary=error.summary)


def _incoming_attributes(record: SQSRecord) -> dict[str, Any]:
    attributes = record.raw_event.get("messageAttributes")
    return attributes if isinstance(attributes, dict) else {}
