"""One message's journey: parse, invoke, then deliver, retry later or dead-letter, and say why."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from invoker.sqs_batch import OutgoingMessage, SendFailed, SqsBatchSender

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

    from invoker.concurrency import AdaptiveLimiter

# An SQS message, attributes included, is at most 1 MiB.
MAX_SQS_MESSAGE_BYTES = 1_048_576
# SQS allows at most 10 message attributes per message.
MAX_MESSAGE_ATTRIBUTES = 10
_MAX_ATTRIBUTE_TEXT = 1024
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
        """Returns when the message may be deleted; raises `RetryLater` when it must come back."""
        attributes = record.attributes
        info = RecordInfo(
            message_id=record.message_id,
            receive_count=_int(attributes.approximate_receive_count, 1),
            source_arn=record.event_source_arn,
            group_id=attributes.message_group_id,
            request_id=record.message_id,
        )
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
            self._logger.exception("unexpected error", extra={"message_id": info.message_id})
            unexpected = RetryLater(Reason.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}")
            unexpected.__cause__ = exc
            return self._settle_failure(record, info, unexpected)
        return self._deliver(record, info, response, body, latency_ms)

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
                raise InvalidMessage(f"bodyS3Uri s3://{bucket}/{key} could not be read: {code}") from exc
            raise RetryLater(Reason.TRANSPORT_ERROR, f"reading s3://{bucket}/{key} failed: {code}") from exc
        check_payload_size(len(payload))
        return payload

    def _check_can_start(self) -> None:
        batch = self.batch
        if batch.not_ready_message is not None:
            raise RetryLater(Reason.MODEL_NOT_READY, f"not invoked: {batch.not_ready_message}")
        if batch.remaining_ms is not None and batch.remaining_ms() < self.config.deadline_seconds * 1000:
            raise RetryLater(
                Reason.DEADLINE,
                f"not invoked: less than {self.config.deadline_seconds} s of the function's time left",
            )

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
            raise RetryLater(Reason.RESULT_DELIVERY_FAILED, f"{type(exc).__name__}: {exc}") from exc

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
        if len(text) > MAX_SQS_MESSAGE_BYTES:
            if config.results_bucket is None:
                raise InvocationError(
                    Reason.RESULT_TOO_LARGE,
                    f"result of {len(text)} bytes exceeds the SQS limit and RESULTS_BUCKET is not set",
                    disposition=DEAD_LETTER,
                )
            key = f"{config.results_prefix}{info.request_id}.body"
            self._put_object(key, body, response.get("ContentType") or "application/octet-stream")
            text = _dumps(document(f"s3://{config.results_bucket}/{key}"))
        try:
            self._results.send(_outgoing(self._results.queue_url, text, info))
        except SendFailed as exc:
            raise RetryLater(Reason.RESULT_DELIVERY_FAILED, f"results queue: {exc}") from exc

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
                Reason.RESULT_DELIVERY_FAILED, f"results bucket: {type(exc).__name__}: {exc}"
            ) from exc

    def _settle_failure(self, record: SQSRecord, info: RecordInfo, error: InvocationError) -> dict[str, Any]:
        last_reason: Reason | None = None
        if error.disposition is Disposition.RETRY:
            if info.receive_count < self.config.max_receive_count:
                self._schedule_retry(record, info, error)
                raise error
            # The queue's redrive policy would move it on the next receive, without a reason: do it here.
            last_reason = error.reason
        try:
            self._dead_letters.send(self._dead_letter_message(record, info, error, last_reason))
        except SendFailed as exc:
            failure = RetryLater(Reason.DEAD_LETTER_FAILED, f"dead-letter queue: {exc}")
            self._schedule_retry(record, info, failure)
            raise failure from exc
        reason = Reason.RETRIES_EXHAUSTED if last_reason else error.reason
        with self.batch.lock:
            self.batch.dead_lettered[reason] += 1
        extra: dict[str, Any] = {"error": error.message[:_MAX_ATTRIBUTE_TEXT]}
        if last_reason:
            extra["last_reason"] = last_reason.value
        if error.original_status_code is not None:
            extra["original_status_code"] = error.original_status_code
        if error.log_stream_arn:
            extra["log_stream_arn"] = error.log_stream_arn
        self._log("error", "dead-lettered", info, Disposition.DEAD_LETTER, reason, **extra)
        return {
            "requestId": info.request_id,
            "disposition": Disposition.DEAD_LETTER.value,
            "reason": reason.value,
        }

    def _schedule_retry(self, record: SQSRecord, info: RecordInfo, error: InvocationError) -> None:
        if error.reason in _RETURN_AT_ONCE:
            delay = 0
        else:
            delay = backoff_seconds(
                info.receive_count, self.config.retry_base_seconds, self.config.retry_max_seconds, self._rng
            )
        with self.batch.lock:
            self.batch.retried[error.reason] += 1
            self.batch.retries.append(
                PendingRetry(info.source_arn, record.receipt_handle, info.message_id, delay)
            )
        self._log(
            "warning",
            "retry later",
            info,
            Disposition.RETRY,
            error.reason,
            error=error.message,
            delay_seconds=delay,
        )

    def _dead_letter_message(
        self, record: SQSRecord, info: RecordInfo, error: InvocationError, last_reason: Reason | None
    ) -> OutgoingMessage:
        ours: dict[str, MessageAttributeValueTypeDef] = {
            "invoker.reason": _text((Reason.RETRIES_EXHAUSTED if last_reason else error.reason).value),
            "invoker.error": _text(error.message[:_MAX_ATTRIBUTE_TEXT] or error.reason.value),
            "invoker.request_id": _text(info.request_id),
            "invoker.message_id": _text(info.message_id),
            "invoker.receive_count": {"DataType": "Number", "StringValue": str(info.receive_count)},
            "invoker.source_queue_arn": _text(info.source_arn),
        }
        if last_reason is not None:
            ours["invoker.last_reason"] = _text(last_reason.value)
        if error.original_status_code is not None:
            ours["invoker.original_status_code"] = {
                "DataType": "Number",
                "StringValue": str(error.original_status_code),
            }
        if error.log_stream_arn:
            ours["invoker.log_stream_arn"] = _text(error.log_stream_arn)
        # Keep the producer's own attributes (raw mode's ContentType/Accept among them) so a redrive
        # re-processes the message unchanged, as far as SQS's limit of 10 attributes allows.
        attributes = dict(ours)
        dropped = []
        for name, attribute in (record.raw_event.get("messageAttributes") or {}).items():
            if name.startswith("invoker."):
                continue  # from an earlier dead-lettering; replaced by ours
            if len(attributes) >= MAX_MESSAGE_ATTRIBUTES:
                dropped.append(name)
                continue
            attributes[name] = _from_lambda_attribute(attribute)
        if dropped:
            self._logger.warning(
                "message attributes dropped from dead-letter copy (SQS allows 10)",
                extra={"message_id": info.message_id, "dropped_attributes": dropped},
            )
        # The body byte for byte, so a redrive re-processes it unchanged.
        return _outgoing(self.config.dead_letter_queue_url, record.body or "", info, attributes)

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
            getattr(self._logger, level)(message, extra=fields)


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


def _text(value: str) -> MessageAttributeValueTypeDef:
    return {"DataType": "String", "StringValue": value}


def _from_lambda_attribute(attribute: dict[str, Any]) -> MessageAttributeValueTypeDef:
    """Lambda's record shape (`stringValue`, `binaryValue` base64, `dataType`) back to SendMessage's."""
    data_type = attribute.get("dataType", "String")
    if attribute.get("binaryValue") is not None:
        return {"DataType": data_type, "BinaryValue": base64.b64decode(attribute["binaryValue"])}
    return {"DataType": data_type, "StringValue": str(attribute.get("stringValue", ""))}
