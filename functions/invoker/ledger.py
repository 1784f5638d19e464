"""The request ledger (opt-in per route): one DynamoDB item per request id, its state and timeline, so
that "where is my request?" has an answer, and a request that already ended is paid for once.

Each delivery of a message first *claims* its request (one conditional UpdateItem, before the endpoint
is called): the claim succeeds when nobody holds the request, and fails, returning the item as it was,
when the request already ended (a duplicate: acknowledged, not invoked, no second result) or another
delivery holds an unexpired claim (`in_progress_elsewhere`: it comes back later). A claim lasts as long
as the Lambda invocation that made it can run, so a dead instance's claim expires by itself. The outcome
(delivered, retrying, dead_lettered) is written afterwards, off the record's thread, by a small pool,
and the batch waits for those writes only at its end.

The ledger is an account of the work, never a gate that can lose it: a ledger call that fails is
logged with its error code and counted, and the message goes on as if there were no ledger (its
outcome stands; at worst a request is invoked again later). Why not Powertools' Idempotency utility:
docs/function.md#why-not-powertools-idempotency.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NoReturn

from aws_lambda_powertools.metrics import MetricUnit

from invoker.contract import JOB_SUCCEEDED_OUTCOME, LedgerState, Metric, Reason, job_key
from invoker.contract import JobAttribute as J
from invoker.contract import LedgerAttribute as A
from invoker.ledger_states import (
    ENDED,
    Claim,
    Duplicate,
    Original,
    attr_n,
    attr_s,
    number_of,
    text_of,
    transition_condition,
)
from invoker.outcomes import RetryLater
from invoker.writing import code_of

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from aws_lambda_powertools import Metrics
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from invoker.config import LedgerSettings
    from invoker.envelope import InvokeRequest
    from invoker.observability import BatchObservations
    from invoker.records import RecordInfo
    from invoker.writing import ResultWritten

# A Lambda invocation runs 900 s at most: a claim made without a deadline (tests, tools) lasts that long.
_CLAIM_WITHOUT_DEADLINE_SECONDS: Final = 900
_CONDITION_FAILED: Final = "ConditionalCheckFailedException"
_PLACEHOLDER: Final = re.compile(r"#\w+")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A write of a request's state after its claim (or without one)."""

    state: LedgerState
    reason: Reason | None = None
    last_reason: Reason | None = None
    error: str | None = None  # the payload-free summary
    result: ResultWritten | None = None
    dead_letter_message_id: str | None = None


class RequestLedger:
    """One per function instance; `claim` and `record` are called from the batch's threads."""

    def __init__(
        self,
        settings: LedgerSettings,
        client: DynamoDBClient,
        *,
        endpoint_name: str,
        writes_in_flight: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._client = client
        self._endpoint = endpoint_name
        self.clock = clock  # tests move it to expire a claim or pass the dedupe window
        # Created once: a warm container reuses its threads.
        self._pool = ThreadPoolExecutor(max_workers=writes_in_flight, thread_name_prefix="ledger")
        self._lock = threading.Lock()
        self._pending: list[Future[None]] = []
        self.counts: Counter[str] = Counter()  # this batch's: calls, duplicates, failures, refused

    def key(self, request_id: str) -> str:
        return self.settings.key_prefix + request_id

    # -- the claim (synchronous: it decides whether the endpoint is called) ---------------------------------
    def claim(
        self,
        info: RecordInfo,
        request: InvokeRequest,
        *,
        remaining_ms: int | None,
        redrive: bool,
        observed: BatchObservations,
    ) -> Claim | None:
        """This delivery's claim on the request; raises Duplicate (ended within the window) or RetryLater
        (`in_progress_elsewhere`). None when the ledger could not be written: go on without it."""
        now = self.clock()
        seconds = remaining_ms / 1000 if remaining_ms is not None else _CLAIM_WITHOUT_DEADLINE_SECONDS
        claim = Claim(self.key(info.request_id), uuid.uuid4().hex, now + max(seconds, 1.0))
        values: dict[str, AttributeValueTypeDef] = {
            ":claimUntil": attr_n(round(claim.until, 3)),
            ":token": attr_s(claim.token),
        }
        try:
            self._update(
                info,
                LedgerState.INVOKING,
                now,
                claim=None,
                redrive=redrive,
                extra_set=("#claimUntil = :claimUntil", "#claimToken = :token"),
                remove=(
                    A.REASON,
                    A.LAST_REASON,
                    A.ERROR,
                    A.ENDED_AT,
                    A.RESULT_MESSAGE_ID,
                    A.RESULT_S3_URI,
                    A.DEAD_LETTER_MESSAGE_ID,
                ),
                extra_values=values,
                job=(request.job_id, request.line),
                return_old=True,
            )
        except _Refused as refused:
            self._refused_claim(info, refused.old, now)
        except Exception as exc:
            self._failed("claim", info, exc, observed)
            return None
        return claim

    def _refused_claim(self, info: RecordInfo, old: Mapping[str, Any], now: float) -> NoReturn:
        state = text_of(old.get(A.STATE))
        if state in ENDED:
            self._count("duplicates")
            raise Duplicate(
                Original(
                    state=LedgerState(state),
                    reason=text_of(old.get(A.REASON)),
                    message_id=text_of(old.get(A.MESSAGE_ID)),
                    result_message_id=text_of(old.get(A.RESULT_MESSAGE_ID)),
                    result_s3_uri=text_of(old.get(A.RESULT_S3_URI)),
                    ended_at_ms=number_of(old.get(A.ENDED_AT)),
                )
            )
        until = number_of(old.get(A.CLAIM_UNTIL)) or now
        wait_s = max(0, round(until - now))
        raise RetryLater(
            Reason.IN_PROGRESS_ELSEWHERE,
            f"request {info.request_id} is being invoked by another delivery (claim expires in {wait_s} s)",
            summary=f"another delivery holds the request (claim expires in {wait_s} s)",
        )

    # -- outcomes (asynchronous: the batch waits for them at its end) ---------------------------------------
    def record(
        self, info: RecordInfo, outcome: Outcome, *, claim: Claim | None, observed: BatchObservations
    ) -> None:
        """Writes the outcome off this thread; never raises (a failure is logged and counted)."""
        snapshot = _Snapshot(info.request_id, info.message_id, info.receive_count, info.job_id, info.line)
        try:
            future = self._pool.submit(self._record, snapshot, outcome, claim, observed)
        except Exception as exc:  # a pool that cannot take work (shut down): say so, and go on
            self._failed(outcome.state.value, snapshot, exc, observed)
            return
        with self._lock:
            self._pending.append(future)

    def _record(
        self, info: _Snapshot, outcome: Outcome, claim: Claim | None, observed: BatchObservations
    ) -> None:
        now = self.clock()
        sets: list[str] = []
        values: dict[str, AttributeValueTypeDef] = {}
        optional = {
            A.REASON: outcome.reason.value if outcome.reason else None,
            A.LAST_REASON: outcome.last_reason.value if outcome.last_reason else None,
            A.ERROR: outcome.error,
            A.RESULT_MESSAGE_ID: outcome.result.queue_message_id if outcome.result else None,
            A.RESULT_S3_URI: outcome.result.s3_uri if outcome.result else None,
            A.DEAD_LETTER_MESSAGE_ID: outcome.dead_letter_message_id,
        }
        if info.job_id is not None and outcome.result is not None:
            # A job's line: the assembler reads its result from here (or from the job's folder).
            optional[A.RESULT] = outcome.result.document
            if outcome.result.job_result_s3_uri is not None:
                optional[A.RESULT_S3_URI] = outcome.result.job_result_s3_uri
        for index, (name, value) in enumerate(optional.items()):
            if value is not None:
                sets.append(f"#{name} = :o{index}")
                values[f":o{index}"] = attr_s(value)
        if outcome.state in ENDED:
            sets.append("#endedAt = :nowMs")
        remove = [A.CLAIM_UNTIL, A.CLAIM_TOKEN]
        if outcome.state is LedgerState.RETRYING:
            remove += [A.LAST_REASON, A.RESULT_MESSAGE_ID, A.RESULT_S3_URI]
        remove = [name for name in remove if optional.get(name) is None]
        try:
            self._update(
                info,
                outcome.state,
                now,
                claim=claim,
                redrive=False,
                extra_set=tuple(sets),
                remove=tuple(remove),
                extra_values=values,
                reason=outcome.reason,
            )
        except _Refused as refused:
            self._count("refused")
            fields = {
                "request_id": info.request_id,
                "message_id": info.message_id,
                "ledger_state": outcome.state.value,
                "ledger_found": text_of(refused.old.get(A.STATE)),
            }
            observed.line("warning", "ledger write refused by the state machine", fields)
            return
        except Exception as exc:
            self._failed(outcome.state.value, info, exc, observed)
            return
        if info.job_id is not None and outcome.state in ENDED:
            self._count_job_end(info, info.job_id, outcome, observed)

    def _count_job_end(
        self, info: _Snapshot, job_id: str, outcome: Outcome, observed: BatchObservations
    ) -> None:
        """One atomic ADD on the job's item per line that ends: after the line's own conditional write
        succeeded, so a line counts once (a refused late writer never gets here)."""
        name = JOB_SUCCEEDED_OUTCOME if outcome.state is LedgerState.DELIVERED else str(outcome.reason)
        try:
            self._count("calls")
            self._client.update_item(
                TableName=self.settings.table,
                Key={A.KEY: attr_s(job_key(self.settings.key_prefix, job_id))},
                UpdateExpression="ADD #counts.#outcome :one, #ended :one",
                # The job's item is created before its first line is sent: never create a stray one.
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={
                    "#counts": J.COUNTS,
                    "#outcome": name,
                    "#ended": J.ENDED,
                    "#pk": J.KEY,
                },
                ExpressionAttributeValues={":one": attr_n(1)},
            )
        except Exception as exc:
            if code_of(exc) == _CONDITION_FAILED:
                # No such job on this route: a producer's own jobId, not one of our jobs. Nothing to count.
                return
            self._failed("job_count", info, exc, observed)

    # -- one UpdateItem -------------------------------------------------------------------------------------
    def _update(  # noqa: PLR0913 - the parts of one conditional write
        self,
        info: RecordInfo | _Snapshot,
        state: LedgerState,
        now: float,
        *,
        claim: Claim | None,
        redrive: bool,
        extra_set: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
        extra_values: Mapping[str, AttributeValueTypeDef] | None = None,
        job: tuple[str | None, int | None] = (None, None),
        reason: Reason | None = None,
        return_old: bool = False,
    ) -> None:
        condition, condition_values = transition_condition(
            state, now=now, dedupe_seconds=self.settings.dedupe_seconds, claim=claim, redrive=redrive
        )
        now_ms = int(now * 1000)
        entry: dict[str, AttributeValueTypeDef] = {
            "s": attr_s(state.value),
            "t": attr_n(now_ms),
            "m": attr_s(info.message_id),
        }
        if reason is not None:
            entry["r"] = attr_s(reason.value)
        values: dict[str, AttributeValueTypeDef] = {
            ":state": attr_s(state.value),
            ":requestId": attr_s(info.request_id),
            ":messageId": attr_s(info.message_id),
            ":receiveCount": attr_n(info.receive_count),
            ":endpoint": attr_s(self._endpoint),
            ":nowMs": attr_n(now_ms),
            ":expiresAt": attr_n(int(now) + self.settings.expire_days * 86_400),
            ":entry": {"L": [{"M": entry}]},
            ":empty": {"L": []},
            **condition_values,
            **(extra_values or {}),
        }
        sets = [
            "#state = :state",
            f"#{A.REQUEST_ID} = :requestId",
            f"#{A.MESSAGE_ID} = :messageId",
            f"#{A.RECEIVE_COUNT} = :receiveCount",
            f"#{A.ENDPOINT} = :endpoint",
            f"#{A.UPDATED_AT} = :nowMs",
            f"#{A.FIRST_SEEN_AT} = if_not_exists(#{A.FIRST_SEEN_AT}, :nowMs)",
            f"#{A.EXPIRES_AT} = :expiresAt",
            f"#{A.TIMELINE} = list_append(if_not_exists(#{A.TIMELINE}, :empty), :entry)",
            *extra_set,
        ]
        job_id, line = job
        if job_id is not None:
            sets.append(f"#{A.JOB_ID} = :jobId")
            values[":jobId"] = attr_s(job_id)
        if line is not None:
            sets.append(f"#{A.LINE} = :line")
            values[":line"] = attr_n(line)
        expression = "SET " + ", ".join(sets)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{name}" for name in remove)
        # Every attribute by a placeholder "#<name>": some names are DynamoDB reserved words (state, error).
        names = {token: token[1:] for token in _PLACEHOLDER.findall(expression + " " + condition)}
        kwargs: dict[str, Any] = {}
        if return_old:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self._count("calls")
        try:
            self._client.update_item(
                TableName=self.settings.table,
                Key={A.KEY: attr_s(self.key(info.request_id))},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **kwargs,
            )
        except Exception as exc:
            if code_of(exc) == _CONDITION_FAILED:
                old = getattr(exc, "response", {}).get("Item") or {}
                raise _Refused(old) from exc
            raise

    # -- the batch's end ------------------------------------------------------------------------------------
    def drain(self, observed: BatchObservations, metrics: Metrics | None) -> Counter[str]:
        """Waits for this batch's outcome writes, then emits the ledger's metrics; returns its counts."""
        with self._lock:
            pending, self._pending = self._pending, []
        wait(pending)
        with self._lock:
            counts, self.counts = self.counts, Counter()
        if metrics is not None:
            for name, key in (
                (Metric.LEDGER_DUPLICATES, "duplicates"),
                (Metric.LEDGER_WRITE_FAILURES, "failures"),
                (Metric.LEDGER_WRITES_REFUSED, "refused"),
            ):
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[key])
        return counts

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def _failed(
        self, write: str, info: RecordInfo | _Snapshot, exc: Exception, observed: BatchObservations
    ) -> None:
        self._count("failures")
        fields = {
            "request_id": info.request_id,
            "message_id": info.message_id,
            "ledger_write": write,
            # The code only: an exception's text may quote the request.
            "error_code": code_of(exc),
        }
        observed.line("warning", "ledger write failed; the message's outcome stands", fields)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What an outcome write needs of a RecordInfo, frozen when it was queued."""

    request_id: str
    message_id: str
    receive_count: int
    job_id: str | None = None
    line: int | None = None


class _Refused(Exception):  # the condition said no; `old` is the item as it was (may be {})
    def __init__(self, old: Mapping[str, Any]) -> None:
        super().__init__("condition failed")
        self.old = old
