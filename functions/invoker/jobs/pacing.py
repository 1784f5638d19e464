"""The splitter's pace: the route's request queue never holds more than a bound, so a million-line job
does not flood the queue (each message would wait, age and count against the route's retries) and other
producers of the route are not starved behind it. The bound is `maxBacklog`, or a few seconds of work for
the endpoint's capacity as the route's shared-capacity item says (ceiling x JOB_BACKLOG_PER_SLOT)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from invoker.contract import CAPACITY_TABLE_PARTITION_KEY, JOB_BACKLOG_PER_SLOT, JOB_DEFAULT_BACKLOG

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

_CAPACITY_READ_SECONDS: Final = 10.0


class CapacityBound:
    """The backlog bound from the route's capacity item, read at most every 10 s."""

    def __init__(
        self,
        client: DynamoDBClient | None,
        table: str | None,
        key: str | None,
        *,
        fixed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._table, self._key = client, table, key
        self._fixed = fixed  # maxBacklog: when set, the bound
        self._clock = clock
        self._bound = JOB_DEFAULT_BACKLOG
        self._read_at: float | None = None

    def __call__(self) -> int:
        if self._fixed is not None:
            return self._fixed
        if self._client is None or self._table is None or self._key is None:
            return JOB_DEFAULT_BACKLOG
        now = self._clock()
        if self._read_at is None or now - self._read_at >= _CAPACITY_READ_SECONDS:
            self._read_at = now
            item = self._client.get_item(
                TableName=self._table, Key={CAPACITY_TABLE_PARTITION_KEY: {"S": self._key}}
            ).get("Item")
            ceiling = item.get("ceiling", {}).get("N") if item else None
            if ceiling is not None:
                # At least one slot's worth: an endpoint scaled to zero must still see a backlog to wake.
                self._bound = max(1, int(float(ceiling))) * JOB_BACKLOG_PER_SLOT
        return self._bound


class Pacer:
    """Reads the queue's backlog (visible + in flight) at most every `refresh_seconds`, counting what was
    sent since, and waits for room before each send batch."""

    def __init__(  # noqa: PLR0913 - the queue, the bound, and the clock tests move
        self,
        sqs: SQSClient,
        queue_url: str,
        bound: Callable[[], int],
        *,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs, self._queue_url, self._bound = sqs, queue_url, bound
        self._refresh = refresh_seconds
        self._clock, self._sleep = clock, sleep
        self._backlog = 0
        self._read_at: float | None = None
        self.waits = 0  # how often the splitter waited for room (its log line says it)

    def _read(self) -> None:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        self._backlog = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )
        self._read_at = self._clock()

    def room(self, wanted: int, out_of_time: Callable[[], bool]) -> bool:
        """True when `wanted` more messages fit under the bound; False when time ran out waiting."""
        while True:
            if self._read_at is None or self._clock() - self._read_at >= self._refresh:
                self._read()
            if self._backlog + wanted <= self._bound() or self._backlog == 0:
                return True
            if out_of_time():
                return False
            self.waits += 1
            self._sleep(self._refresh)

    def sent(self, count: int) -> None:
        self._backlog += count
