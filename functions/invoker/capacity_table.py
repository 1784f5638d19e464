"""The route's budget in DynamoDB: one item per route, read consistently, replaced whole under a condition
on its version. Condition expressions cannot add up leases, so the arithmetic is done in Python
(route_capacity) on the item as read, and the write lands only if nobody wrote since; a conflict returns
the item that won (ReturnValuesOnConditionCheckFailure=ALL_OLD), so the retry needs no second read."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from invoker.contract import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_TTL_ATTRIBUTE
from invoker.route_capacity import Lease, RouteState

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

# DynamoDB's TTL deletes an idle route's item about a day after its last write (days later in practice):
# housekeeping only. Leases expire by the times written in them.
ITEM_TTL_SECONDS = 86_400
# Writers of one route retry a conflict from the item that won; this many conflicts in a row means the
# item is too contended to wait on (the batch then falls back to the instance's own limiter).
MAX_ATTEMPTS = 8
_CONFLICT = "ConditionalCheckFailedException"


class TableContended(RuntimeError):
    """Every conditional write of one decision lost to another writer."""

    def __init__(self, key: str, attempts: int) -> None:
        super().__init__(f"route {key}: {attempts} conditional writes in a row lost to other writers")
        self.key = key
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class Written:
    """The item after a decision (None: there is none), and whether this writer wrote it."""

    state: RouteState | None
    wrote: bool


class CapacityTable:
    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        key: str,
        *,
        epoch_s: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._key = key
        self._epoch_s = epoch_s
        self._sleep = sleep

    def read(self) -> RouteState | None:
        item = self._dynamodb.get_item(
            TableName=self._table,
            Key={CAPACITY_TABLE_PARTITION_KEY: {"S": self._key}},
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None

    def update(
        self, current: RouteState | None, decide: Callable[[RouteState | None], RouteState | None]
    ) -> Written:
        """Writes `decide(current)` if the item is still `current`; on a conflict decides again from the
        item that won. `decide` returning None (or the state it was given) writes nothing."""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                # A short jittered pause after a lost write: writers that collided do not collide again
                # in lockstep (up to about 0.25 s in all over the attempts).
                self._sleep(random.uniform(0, 0.002 * 2**attempt))
            new = decide(current)
            if new is None or new is current:
                return Written(current, wrote=False)
            try:
                self._put(new, current)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != _CONFLICT:
                    raise
                old: Any = exc.response.get("Item")
                current = from_item(old) if old else None
                continue
            return Written(new, wrote=True)
        raise TableContended(self._key, MAX_ATTEMPTS)

    def _put(self, new: RouteState, seen: RouteState | None) -> None:
        item = to_item(new, self._key, expires_at=int(self._epoch_s()) + ITEM_TTL_SECONDS)
        if seen is None:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": CAPACITY_TABLE_PARTITION_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        else:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="#version = :seen",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":seen": {"N": str(seen.version)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )


def to_item(state: RouteState, key: str, *, expires_at: int) -> dict[str, AttributeValueTypeDef]:
    leases: dict[str, AttributeValueTypeDef] = {
        lease_id: {"M": {"slots": {"N": str(lease.slots)}, "expires": {"N": str(lease.expires_ms)}}}
        for lease_id, lease in state.leases.items()
    }
    return {
        CAPACITY_TABLE_PARTITION_KEY: {"S": key},
        "ceiling": {"N": str(state.ceiling)},
        "capacity": {"N": str(state.capacity)},
        "checkedAt": {"N": str(state.checked_at_ms)},
        "limit": {"N": repr(float(state.limit))},
        "cutEpoch": {"N": str(state.cut_epoch)},
        "version": {"N": str(state.version)},
        "leases": {"M": leases},
        CAPACITY_TABLE_TTL_ATTRIBUTE: {"N": str(expires_at)},
    }


def from_item(item: Mapping[str, Any]) -> RouteState:
    def number(name: str) -> str:
        return str(item[name]["N"])

    leases = {
        lease_id: Lease(int(value["M"]["slots"]["N"]), int(value["M"]["expires"]["N"]))
        for lease_id, value in item.get("leases", {}).get("M", {}).items()
    }
    return RouteState(
        ceiling=int(number("ceiling")),
        capacity=int(number("capacity")),
        checked_at_ms=int(number("checkedAt")),
        limit=float(number("limit")),
        cut_epoch=int(number("cutEpoch")),
        version=int(number("version")),
        leases=leases,
    )
