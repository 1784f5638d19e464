"""A message that must come back to its queue: whether it may, after how long, and the visibility change
that makes it so, in one place. The delays are collected while the batch runs and applied at its end,
ten to a ChangeMessageVisibilityBatch call."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoker.backoff import backoff_seconds
from invoker.contract import SQS_MAX_BATCH_ENTRIES, WAITS_FOR_CAPACITY, Disposition, Reason
from invoker.observability import error_fields

if TYPE_CHECKING:
    import random

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

    from invoker.config import Config
    from invoker.observability import BatchObservations
    from invoker.outcomes import InvocationError
    from invoker.records import RecordInfo

# Messages returned without having failed themselves come back at once: they did nothing wrong.
_RETURN_AT_ONCE = frozenset({Reason.DEADLINE, Reason.FIFO_GROUP_BLOCKED})


@dataclass(frozen=True, slots=True)
class PendingRetry:
    source_arn: str
    receipt_handle: str
    message_id: str
    delay_seconds: int


@dataclass(slots=True)
class PendingRetries:
    """The visibility changes one batch owes; shared by the threads working on it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    items: list[PendingRetry] = field(default_factory=list)

    def add(self, retry: PendingRetry) -> None:
        with self.lock:
            self.items.append(retry)


def queue_url_from_arn(arn: str) -> str:
    """SQS's JSON protocol sends requests to the client's endpoint and uses the URL only to name the
    queue, so the canonical form works against every SQS endpoint, AWS's or a local one."""
    _, partition, _, region, account, name = arn.split(":", 5)
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


class Retries:
    def __init__(self, config: Config, sqs: SQSClient, *, rng: random.Random, logger: Any) -> None:
        self._config = config
        self._sqs = sqs
        self._rng = rng
        self._logger = logger

    def may_retry(self, info: RecordInfo) -> bool:
        """False once the queue would move the message on its next receive (without saying why)."""
        return info.receive_count < self._config.max_receive_count

    def schedule(
        self,
        record: SQSRecord,
        info: RecordInfo,
        error: InvocationError,
        *,
        pending: PendingRetries,
        observed: BatchObservations,
    ) -> None:
        if error.reason in _RETURN_AT_ONCE:
            delay = 0
        else:
            config = self._config
            delay = backoff_seconds(
                info.receive_count,
                config.retry_base_seconds,
                config.retry_max_seconds,
                self._rng,
                at_least_half=error.reason in WAITS_FOR_CAPACITY,
            )
        receipt_handle = record.raw_event["receiptHandle"]  # without it no backoff: the last resort logs that
        pending.add(PendingRetry(info.source_arn, receipt_handle, info.message_id, delay))
        fields = error_fields(error, log_payloads=self._config.log_payloads)
        fields["delay_seconds"] = delay
        observed.outcome(info, Disposition.RETRY, error.reason, fields)

    def apply(self, pending: PendingRetries) -> None:
        by_queue: dict[str, list[PendingRetry]] = defaultdict(list)
        for retry in pending.items:
            by_queue[retry.source_arn].append(retry)
        for arn, retries in by_queue.items():
            url = queue_url_from_arn(arn)
            for start in range(0, len(retries), SQS_MAX_BATCH_ENTRIES):
                self._change_visibility(url, retries[start : start + SQS_MAX_BATCH_ENTRIES])

    def _change_visibility(self, url: str, chunk: list[PendingRetry]) -> None:
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": r.receipt_handle, "VisibilityTimeout": r.delay_seconds}
            for i, r in enumerate(chunk)
        ]
        try:
            response = self._sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
            failed = [chunk[int(f["Id"])].message_id for f in response.get("Failed", [])]
        except Exception as exc:
            failed = [r.message_id for r in chunk]
            self._logger.warning("visibility change failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        if failed:
            # Still reported as failed, so not lost: they come back after the queue's own visibility
            # timeout instead of the backoff.
            self._logger.warning("backoff not applied", extra={"message_ids": failed})
