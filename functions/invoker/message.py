"""One message's path, top to bottom: parse, invoke, write the result; or, when anything on the way fails,
retry later or dead-letter, and say why. Every record ends in a disposition with a reason, logged and
counted: Powertools would otherwise fail it silently."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from invoker import dead_letters
from invoker.contract import Disposition, LedgerState, MessageFormat, Reason
from invoker.envelope import parse_envelope, parse_raw
from invoker.ledger import Outcome
from invoker.ledger_states import Duplicate
from invoker.observability import error_fields
from invoker.outcomes import InvalidMessage, InvocationError, RetryLater
from invoker.records import RecordInfo
from invoker.writing import DeadLetterFailed

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from invoker.batch import Batch
    from invoker.config import Config
    from invoker.envelope import InvokeRequest
    from invoker.invocation import EndpointCaller, Invocation
    from invoker.ledger import RequestLedger
    from invoker.ledger_states import Claim
    from invoker.retries import Retries
    from invoker.writing import ResultWritten, Writer

# With LOG_PAYLOADS=true, how much of a payload goes into a log line.
_PAYLOAD_LOG_BYTES = 4096


class MessageHandler:
    def __init__(
        self,
        config: Config,
        caller: EndpointCaller,
        writer: Writer,
        retries: Retries,
        ledger: RequestLedger | None = None,
    ) -> None:
        self.config = config
        self._caller = caller
        self._writer = writer
        self._retries = retries
        self.ledger = ledger  # None: the route has no ledger, and nothing here touches one

    def handle(self, record: SQSRecord, batch: Batch) -> dict[str, Any]:
        """Returns when the message may be deleted; raises `RetryLater` when it must come back."""
        info = RecordInfo.of(record)
        claim: Claim | None = None
        try:
            try:
                request = self._parse(record)
                info.request_id = request.request_id
                info.job_id, info.line = request.job_id, request.line
                if self.ledger is not None:
                    claim = self._claim(record, info, request, batch)
                payload = self._caller.payload(request)
                if self.config.log_payloads:
                    self._log_request(info, request, payload, batch)
                invocation = self._caller.invoke(request, payload, batch)
                written = self._writer.write_result(info, invocation)
            except Duplicate as duplicate:
                return self._duplicate(info, duplicate, batch)
            except InvocationError as error:
                if isinstance(error, InvalidMessage) and error.request_id:
                    info.request_id = error.request_id
                return self._settle(record, info, error, batch, claim=claim)
            except Exception as exc:
                # A bug of ours must not fail the whole batch, nor lose the message: retry it, and after
                # exhaustion it reaches the DLQ with this reason.
                return self._settle(record, info, self._unexpected(info, exc, batch), batch, claim=claim)
            return self._delivered(info, invocation, batch, written=written, claim=claim)
        except InvocationError as error:  # a retry, already scheduled, counted and logged
            raise _quiet(error) from None
        except Exception as exc:
            return self._last_resort(record, info, exc, batch, claim=claim)

    def hand_back(self, record: SQSRecord, batch: Batch, reason: Reason, why: str) -> dict[str, Any]:
        """Returns a message unprocessed (it did nothing wrong), the way a failed one is settled."""
        info = RecordInfo.of(record)
        try:
            return self._settle(record, info, RetryLater(reason, why), batch)
        except InvocationError as error:
            raise _quiet(error) from None
        except Exception as exc:
            return self._last_resort(record, info, exc, batch)

    def _parse(self, record: SQSRecord) -> InvokeRequest:
        if self.config.message_format is MessageFormat.RAW:
            attributes = record.raw_event.get("messageAttributes") or {}
            return parse_raw(record.body or "", record.message_id, attributes)
        return parse_envelope(record.body or "", record.message_id, self.config.payload_s3_prefix)

    def _claim(
        self, record: SQSRecord, info: RecordInfo, request: InvokeRequest, batch: Batch
    ) -> Claim | None:
        """The ledger's claim on the request (raises Duplicate or RetryLater: in_progress_elsewhere)."""
        assert self.ledger is not None
        incoming = record.raw_event.get("messageAttributes")
        # A letter brought back from the DLQ (the CLI's redrive or SQS's move task) asks for another
        # attempt of a dead-lettered request: that is not a duplicate.
        redrive = dead_letters.redrive_count(incoming if isinstance(incoming, dict) else {}) is not None
        remaining = batch.remaining_ms() if batch.remaining_ms is not None else None
        return self.ledger.claim(
            info, request, remaining_ms=remaining, redrive=redrive, observed=batch.observed
        )

    def _duplicate(self, info: RecordInfo, duplicate: Duplicate, batch: Batch) -> dict[str, Any]:
        """A request that already ended: acknowledged, not invoked, no second result."""
        fields = {
            "request_id": info.request_id,
            "message_id": info.message_id,
            "endpoint": self.config.endpoint_name,
            "disposition": "duplicate",
            "receive_count": info.receive_count,
            **duplicate.original.fields(),
        }
        batch.observed.line("info", "duplicate of an ended request: acknowledged, not invoked", fields)
        return {"requestId": info.request_id, "disposition": "duplicate"}

    def _ledger(self, info: RecordInfo, outcome: Outcome, batch: Batch, claim: Claim | None) -> None:
        if self.ledger is not None:
            self.ledger.record(info, outcome, claim=claim, observed=batch.observed)

    def _delivered(
        self,
        info: RecordInfo,
        invocation: Invocation,
        batch: Batch,
        *,
        written: ResultWritten | None = None,
        claim: Claim | None = None,
    ) -> dict[str, Any]:
        self._ledger(info, Outcome(LedgerState.DELIVERED, result=written), batch, claim)
        fields: dict[str, Any] = {"latency_ms": round(invocation.latency_ms, 3)}
        if self.config.log_payloads:
            fields["response_body"] = invocation.body[:_PAYLOAD_LOG_BYTES].decode(errors="replace")
            fields["response_custom_attributes"] = invocation.response.get("CustomAttributes")
        batch.observed.outcome(info, Disposition.DELIVER, None, fields)
        return {"requestId": info.request_id, "disposition": Disposition.DELIVER.value}

    def _settle(  # noqa: PLR0913 - the record, its outcome and the ledger's claim on it
        self,
        record: SQSRecord,
        info: RecordInfo,
        error: InvocationError,
        batch: Batch,
        *,
        bare: bool = False,
        claim: Claim | None = None,
    ) -> dict[str, Any]:
        """Retry later (raises the error) or dead-letter now (returns); a retry past the queue's
        maxReceiveCount is dead-lettered here, with its last reason, rather than moved without one."""
        last_reason: Reason | None = None
        if error.disposition is Disposition.RETRY:
            if self._retries.may_retry(info):
                self._retries.schedule(record, info, error, pending=batch.retries, observed=batch.observed)
                self._ledger_retry(info, error, batch, claim)
                raise error
            last_reason = error.reason
        try:
            written = self._writer.dead_letter(record, info, error, last_reason=last_reason, bare=bare)
        except DeadLetterFailed as failure:  # the copy could not be written: the message comes back instead
            self._retries.schedule(record, info, failure, pending=batch.retries, observed=batch.observed)
            self._ledger_retry(info, failure, batch, claim)
            raise
        if written.trimmed is not None:
            fields = {"message_id": info.message_id, "request_id": info.request_id, **written.trimmed}
            batch.observed.line("warning", "dead-letter copy trimmed to SQS's limits", fields)
        reason = Reason.RETRIES_EXHAUSTED if last_reason else error.reason
        if not (claim is None and error.reason is Reason.IN_PROGRESS_ELSEWHERE):
            outcome = Outcome(
                LedgerState.DEAD_LETTERED,
                reason=reason,
                last_reason=last_reason,
                error=error.summary,
                dead_letter_message_id=written.message_id,
            )
            self._ledger(info, outcome, batch, claim)
        fields = error_fields(error, log_payloads=self.config.log_payloads)
        if last_reason:
            fields["last_reason"] = last_reason.value
        if written.body_s3_uri is not None:
            fields["body_s3_uri"] = written.body_s3_uri
        batch.observed.outcome(info, Disposition.DEAD_LETTER, reason, fields)
        return {
            "requestId": info.request_id,
            "disposition": Disposition.DEAD_LETTER.value,
            "reason": reason.value,
        }

    def _ledger_retry(
        self, info: RecordInfo, error: InvocationError, batch: Batch, claim: Claim | None
    ) -> None:
        # Another delivery holds the request: its item is that delivery's to write.
        if error.reason is not Reason.IN_PROGRESS_ELSEWHERE:
            outcome = Outcome(LedgerState.RETRYING, reason=error.reason, error=error.summary)
            self._ledger(info, outcome, batch, claim)

    def _unexpected(self, info: RecordInfo, exc: Exception, batch: Batch) -> RetryLater:
        # The exception's text may quote the message: logged only with LOG_PAYLOADS, the frames always.
        fields: dict[str, Any] = {
            "message_id": info.message_id,
            "request_id": info.request_id,
            "exception_type": type(exc).__name__,
            "traceback": "".join(traceback.format_tb(exc.__traceback__)),
        }
        if self.config.log_payloads:
            fields["exception"] = str(exc)
        batch.observed.line("error", "unexpected error", fields)
        unexpected = RetryLater(
            Reason.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}", summary=type(exc).__name__
        )
        unexpected.__cause__ = exc
        return unexpected

    def _last_resort(
        self, record: SQSRecord, info: RecordInfo, exc: Exception, batch: Batch, *, claim: Claim | None = None
    ) -> dict[str, Any]:
        """Settling the record itself failed: retry it with the bare minimum (no producer attributes
        copied); if even that fails, count and log it and let Powertools report it failed."""
        error = self._unexpected(info, exc, batch)
        try:
            return self._settle(record, info, error, batch, bare=True, claim=claim)
        except InvocationError as retry:
            raise _quiet(retry) from None
        except Exception as again:
            fields = {"error": error.summary, "backoff": "not applied: " + type(again).__name__}
            batch.observed.outcome(info, Disposition.RETRY, Reason.UNEXPECTED_ERROR, fields, level="error")
            raise RetryLater(Reason.UNEXPECTED_ERROR, error.summary) from None

    def _log_request(self, info: RecordInfo, request: InvokeRequest, payload: bytes, batch: Batch) -> None:
        fields = {
            "request_id": info.request_id,
            "message_id": info.message_id,
            "payload": payload[:_PAYLOAD_LOG_BYTES].decode(errors="replace"),
            "custom_attributes": request.members.get("CustomAttributes"),
        }
        batch.observed.line("info", "request payload", fields)


def _quiet(error: InvocationError) -> RetryLater:
    """What goes back to Powertools (which may log it at debug level): the summary, not the message."""
    return RetryLater(error.reason, error.summary, summary=error.summary)
