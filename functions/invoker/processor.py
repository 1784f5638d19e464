"""Powertools' BatchProcessor, with the records of a batch invoked concurrently.

Every record still goes through `_process_record` (Powertools' own success/failure bookkeeping), so the
partial batch response is the one Powertools builds; only the order and parallelism change."""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

    from invoker.invoker import BatchState, Invoker, PendingRetry

# ChangeMessageVisibilityBatch takes at most 10 entries.
_VISIBILITY_BATCH = 10
_LOG_FLUSH_SECONDS = 0.5


def plan_lanes(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Work that may run in parallel. A FIFO record joins its message group's lane, in arrival order,
    so a group is processed in order while groups run concurrently; every other record is its own lane."""
    lanes: list[list[dict[str, Any]]] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        group = (record.get("attributes") or {}).get("MessageGroupId")
        if group is None:
            lanes.append([record])
        elif group in groups:
            groups[group].append(record)
        else:
            groups[group] = [record]
            lanes.append(groups[group])
    return lanes


def queue_url_from_arn(arn: str) -> str:
    """SQS's JSON protocol sends requests to the client's endpoint and uses the URL only to name the
    queue, so the canonical form works against every SQS endpoint, AWS's or a local one."""
    _, partition, _, region, account, name = arn.split(":", 5)
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


class ConcurrentSqsProcessor(BatchProcessor):
    def __init__(
        self,
        invoker: Invoker,
        sqs: SQSClient,
        *,
        on_batch_done: Callable[[BatchState, int], None] | None = None,
        logger: Any = None,
    ) -> None:
        # A batch whose every record must come back is still a valid partial response: raising
        # BatchProcessingError would fail the invocation and count as a function error.
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._invoker = invoker
        self._sqs = sqs
        self._on_batch_done = on_batch_done
        self._log = logger
        # Created once: a warm container reuses its threads.
        self._pool_size = invoker.config.max_concurrency
        self._pool = ThreadPoolExecutor(max_workers=self._pool_size, thread_name_prefix="invoke")

    def process(self) -> list[tuple[Any, ...]]:
        context = getattr(self, "lambda_context", None)
        remaining = context.get_remaining_time_in_millis if context is not None else None
        batch = self._invoker.begin_batch(remaining)
        lanes = plan_lanes(self.records)
        results: list[list[tuple[Any, ...]]] = [[] for _ in lanes]
        # A few long-lived workers pull lanes from a shared iterator: a future per worker rather
        # than per lane keeps the thread hand-offs off the per-message cost.
        work = enumerate(lanes)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    item = next(work, None)
                if item is None:
                    return
                index, lane = item
                results[index] = self._run_lane(lane)

        workers = [self._pool.submit(worker) for _ in range(min(len(lanes), self._pool_size))]
        try:
            # This thread writes the workers' log lines while they run: one writer, no lock convoy,
            # and lines at most a flush interval late.
            while wait(workers, timeout=_LOG_FLUSH_SECONDS).not_done:
                self._invoker.flush_logs()
            for future in workers:
                future.result()
        finally:
            self._invoker.flush_logs()
        self._apply_visibility(batch.retries)
        if self._on_batch_done is not None:
            self._on_batch_done(batch, len(self.records))
        return [outcome for lane in results for outcome in lane]

    def _run_lane(self, lane: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        outcomes = []
        for record in lane:
            outcome = self._process_record(record)
            outcomes.append(outcome)
            group = (record.get("attributes") or {}).get("MessageGroupId")
            if outcome[0] == "fail" and group is not None:
                # The rest of the group must not overtake the message that is coming back.
                self._invoker.block_group(group)
        return outcomes

    def _apply_visibility(self, retries: list[PendingRetry]) -> None:
        by_queue: dict[str, list[PendingRetry]] = defaultdict(list)
        for retry in retries:
            by_queue[retry.source_arn].append(retry)
        for arn, pending in by_queue.items():
            url = queue_url_from_arn(arn)
            for start in range(0, len(pending), _VISIBILITY_BATCH):
                chunk = pending[start : start + _VISIBILITY_BATCH]
                entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                    {"Id": str(i), "ReceiptHandle": r.receipt_handle, "VisibilityTimeout": r.delay_seconds}
                    for i, r in enumerate(chunk)
                ]
                try:
                    response = self._sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
                    failed = [chunk[int(f["Id"])].message_id for f in response.get("Failed", [])]
                except Exception as exc:
                    failed = [r.message_id for r in chunk]
                    if self._log is not None:
                        self._log.warning(
                            "visibility change failed", extra={"error": f"{type(exc).__name__}: {exc}"}
                        )
                if failed and self._log is not None:
                    # Still reported as failed, so not lost: they come back after the queue's own
                    # visibility timeout instead of the backoff.
                    self._log.warning("backoff not applied", extra={"message_ids": failed})
