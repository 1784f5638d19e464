"""Powertools' BatchProcessor, with the records of a batch handled concurrently.

The processor owns the batch's state through Powertools' own hooks, as `SqsFifoPartialProcessor` does:
`_prepare` starts it, `failure_handler` blocks a failed record's FIFO group, `_clean` applies the
retries and reports the batch. Every record still goes through `_process_record` (Powertools' own
success/failure bookkeeping), so the partial batch response is the one Powertools builds; only the
order and parallelism change."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from invoker.backoff import Pacing
from invoker.batch import Batch
from invoker.capacity_table import CapacityTable
from invoker.concurrency import AdaptiveLimiter
from invoker.contract import Reason
from invoker.endpoint_capacity import read_capacity
from invoker.invocation import EndpointCaller
from invoker.message import MessageHandler
from invoker.observability import BatchObservations, report_batch
from invoker.retries import PendingRetries, Retries
from invoker.shared_capacity import Admission, RouteBudget, RouteReport
from invoker.writing import Writer

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.batch import ExceptionInfo, FailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sqs import SQSClient

    from invoker.config import Config

_LOG_FLUSH_SECONDS = 0.5


def plan_lanes(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Work that may run in parallel. A FIFO record joins its message group's lane, in arrival order,
    so a group is processed in order while groups run concurrently; every other record is its own lane."""
    lanes: list[list[dict[str, Any]]] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        group = _group_of(record)
        if group is None:
            lanes.append([record])
        elif group in groups:
            groups[group].append(record)
        else:
            groups[group] = [record]
            lanes.append(groups[group])
    return lanes


class ConcurrentSqsProcessor(BatchProcessor):
    def __init__(  # noqa: PLR0913 - the message path and retries, then its parts by keyword
        self,
        messages: MessageHandler,
        retries: Retries,
        *,
        limiter: AdaptiveLimiter,
        logger: Any,
        metrics: Metrics | None = None,
        budget: RouteBudget | None = None,
    ) -> None:
        # A batch whose every record must come back is still a valid partial response: raising
        # BatchProcessingError would fail the invocation and count as a function error.
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._messages = messages
        self._retries = retries
        self.limiter = limiter
        self._log = logger
        self._metrics = metrics
        # CAPACITY_MODE=shared: the route's budget, shared with the other instances (None: per instance).
        self.budget = budget
        self._admission = Admission()
        self.batch = Batch(remaining_ms=None)
        self._blocked_groups: set[str] = set()
        self._blocked_lock = threading.Lock()
        # Created once: a warm container reuses its threads.
        self._pool_size = limiter.max_limit
        self._pool = ThreadPoolExecutor(max_workers=self._pool_size, thread_name_prefix="invoke")

    # -- Powertools' hooks ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]
        context = getattr(self, "lambda_context", None)
        remaining = context.get_remaining_time_in_millis if context is not None else None
        self.batch = Batch(
            remaining, BatchObservations(self._messages.config.endpoint_name), PendingRetries()
        )
        self._blocked_groups.clear()
        self._admission = Admission()
        if self.budget is not None and self.records:
            deadline_ms = self._messages.config.deadline_seconds * 1000
            self._admission = self.budget.admit(len(self.records), remaining, deadline_ms)
            self.batch.gate = self._admission.lease
            self.batch.handed_back = self._admission.hand_back

    def handle(self, record: SQSRecord) -> dict[str, Any]:
        """The record handler (Powertools calls it from `_process_record`, in a worker thread)."""
        if self.batch.handed_back is not None:
            reason, why = self.batch.handed_back
            return self._messages.hand_back(record, self.batch, reason, why)
        group = _group_of(record.raw_event)
        if group is not None and group in self._blocked_groups:
            why = "an earlier message of its group is being retried"
            return self._messages.hand_back(record, self.batch, Reason.FIFO_GROUP_BLOCKED, why)
        return self._messages.handle(record, self.batch)

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        # The rest of a FIFO group must not overtake the message that is coming back.
        group = _group_of(record.raw_event) if record is not None else None
        if group is not None:
            with self._blocked_lock:
                self._blocked_groups.add(group)
        return super().failure_handler(record, exception)

    def process(self) -> list[tuple[Any, ...]]:
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
                results[index] = [self._process_record(record) for record in lane]

        workers = [self._pool.submit(worker) for _ in range(min(len(lanes), self._pool_size))]
        try:
            # This thread writes the workers' log lines while they run: one writer, no lock convoy,
            # and lines at most a flush interval late.
            while wait(workers, timeout=_LOG_FLUSH_SECONDS).not_done:
                self.batch.observed.flush(self._log)
            for future in workers:
                future.result()
        finally:
            self.batch.observed.flush(self._log)
        return [outcome for lane in results for outcome in lane]

    def _clean(self) -> None:
        batch = self.batch
        route = self._return_lease()
        self._retries.apply(batch.retries)
        report_batch(
            batch.observed,
            batch_size=len(self.records),
            concurrency_limit=(batch.gate or self.limiter).limit,
            logger=self._log,
            metrics=self._metrics,
            route=route,
        )
        super()._clean()  # type: ignore[no-untyped-call]

    def _return_lease(self) -> RouteReport | None:
        """The lease back to the route (never raises: an unreturned lease lapses); what the batch saw of the
        route, with the limit as the return left it."""
        admission = self._admission
        lease, report = admission.lease, admission.report
        if lease is None or self.budget is None or report is None:
            return report
        state = self.budget.release(lease)
        if state is None:
            return report
        return RouteReport(state.capacity, state.ceiling, state.limit, report.leased_slots, report.waited_ms)


def _group_of(record: dict[str, Any]) -> str | None:
    attributes = record.get("attributes")
    return attributes.get("MessageGroupId") if isinstance(attributes, dict) else None


@dataclass(frozen=True, slots=True)
class Clients:
    runtime: SageMakerRuntimeClient
    sqs: SQSClient
    s3: Callable[[], S3Client]  # a factory: most routes never touch S3, so its client is built on first use
    # CAPACITY_MODE=shared only: the route's budget table and the control plane's Describe calls.
    dynamodb: DynamoDBClient | None = None
    sagemaker: SageMakerClient | None = None


def build_processor(
    config: Config,
    clients: Clients,
    *,
    logger: Any,
    metrics: Metrics | None = None,
    pacing: Pacing | None = None,
) -> ConcurrentSqsProcessor:
    """The whole function, wired: the handler module builds it once per cold start, the tests with fakes."""
    pacing = pacing or Pacing()
    # Built once per cold start: a warm container keeps what it learnt about the endpoint's capacity.
    limiter = AdaptiveLimiter(config.max_concurrency)
    caller = EndpointCaller(config, clients.runtime, clients.s3, limiter, pacing)
    retries = Retries(config, clients.sqs, rng=pacing.rng, logger=logger)
    writer = Writer(config, clients.sqs, clients.s3)
    return ConcurrentSqsProcessor(
        MessageHandler(config, caller, writer, retries),
        retries,
        limiter=limiter,
        logger=logger,
        metrics=metrics,
        budget=_route_budget(config, clients, logger=logger, pacing=pacing),
    )


def _route_budget(config: Config, clients: Clients, *, logger: Any, pacing: Pacing) -> RouteBudget | None:
    shared = config.shared_capacity
    if shared is None:
        return None
    if clients.dynamodb is None or clients.sagemaker is None:
        raise ValueError("CAPACITY_MODE=shared needs the dynamodb and sagemaker clients")
    sagemaker = clients.sagemaker
    return RouteBudget(
        CapacityTable(clients.dynamodb, shared.table, shared.key),
        lambda: read_capacity(sagemaker, config.endpoint_name, shared),
        refresh_seconds=shared.refresh_seconds,
        max_concurrency=config.max_concurrency,
        logger=logger,
        rng=pacing.rng,
        sleep=pacing.sleep,
    )
