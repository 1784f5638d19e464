"""A job's item in the ledger table (key LEDGER_KEY_PREFIX + "job/" + job id) and its lines' items: every
move of the job's state is one conditional write, so a cancel, a retried control message or two
assemblers racing cannot move it where it must not go."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from invoker.contract import JobAttribute as J
from invoker.contract import JobState, LedgerState, Reason, job_key, job_request_id
from invoker.contract import LedgerAttribute as A

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from invoker.jobs.config import JobsConfig

_CONDITION_FAILED: Final = "ConditionalCheckFailedException"
BATCH_GET_KEYS: Final = 100  # BatchGetItem's limit


@dataclass(frozen=True, slots=True)
class _Where:
    table: str
    key_prefix: str
    endpoint_name: str
    expire_days: int


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} on this route")
        self.job_id = job_id


class StateMoved(Exception):
    def __init__(self, job_id: str, item: Mapping[str, Any]) -> None:
        self.state = plain(item).get(J.STATE)
        super().__init__(f"job {job_id} is {self.state}")
        self.job_id = job_id


class JobTable:
    def __init__(  # noqa: PLR0913 - where the items are, and what a refused line's item says
        self,
        client: DynamoDBClient,
        *,
        table: str,
        key_prefix: str,
        endpoint_name: str = "",
        expire_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._config = _Where(table, key_prefix, endpoint_name, expire_days)
        self._clock = clock

    @classmethod
    def of(cls, client: DynamoDBClient, config: JobsConfig) -> JobTable:
        return cls(
            client,
            table=config.table,
            key_prefix=config.key_prefix,
            endpoint_name=config.endpoint_name,
            expire_days=config.expire_days,
        )

    def create(self, job_id: str, *, input_key: str, input_bytes: int, join: str) -> dict[str, Any]:
        """A new job's item (state submitted); raises StateMoved when the job id is taken."""
        now = self._clock()
        item = {
            J.KEY: job_key(self._config.key_prefix, job_id),
            J.JOB_ID: job_id,
            J.STATE: JobState.SUBMITTED.value,
            J.INPUT: input_key,
            J.INPUT_BYTES: input_bytes,
            J.JOIN: join,
            J.ENDPOINT: self._config.endpoint_name,
            J.OFFSET: 0,
            J.LINES: 0,
            J.SENT: 0,
            J.ENDED: 0,
            J.COUNTS: {},
            J.SUBMITTED_AT: int(now * 1000),
            J.UPDATED_AT: int(now * 1000),
            J.EXPIRES_AT: int(now) + self._config.expire_days * 86_400,
        }
        try:
            self._client.put_item(
                TableName=self._config.table,
                Item={name: _value(value) for name, value in item.items()},
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": J.KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if code_of(exc) == _CONDITION_FAILED:
                raise StateMoved(job_id, getattr(exc, "response", {}).get("Item") or {}) from exc
            raise
        return item

    def _key(self, job_id: str) -> dict[str, AttributeValueTypeDef]:
        return {J.KEY: {"S": job_key(self._config.key_prefix, job_id)}}

    def state(self, job_id: str) -> str | None:
        """The job's state alone (a consistent read of one attribute: half a read unit)."""
        item = self._client.get_item(
            TableName=self._config.table,
            Key=self._key(job_id),
            ConsistentRead=True,
            ProjectionExpression="#state",
            ExpressionAttributeNames={"#state": J.STATE},
        ).get("Item")
        return plain(item).get(J.STATE) if item else None

    def get(self, job_id: str) -> dict[str, Any]:
        item = self._client.get_item(TableName=self._config.table, Key=self._key(job_id), ConsistentRead=True)
        if "Item" not in item:
            raise JobNotFound(job_id)
        return plain(item["Item"])

    def update(
        self,
        job_id: str,
        *,
        sets: Mapping[str, Any] | None = None,
        adds: Mapping[str, int] | None = None,
        from_states: Iterable[JobState] = (),
        return_new: bool = False,
    ) -> dict[str, Any]:
        """SET and ADD (counts.<outcome> for ADD names with a dot) when the job is in `from_states` (any
        state when empty); raises StateMoved with the item as it was when it is not."""
        names: dict[str, str] = {"#pk": J.KEY, "#updatedAt": J.UPDATED_AT}
        values: dict[str, AttributeValueTypeDef] = {":now": {"N": str(int(self._clock() * 1000))}}
        set_parts = ["#updatedAt = :now"]
        for index, (name, value) in enumerate((sets or {}).items()):
            names[f"#s{index}"] = name
            values[f":s{index}"] = _value(value)
            set_parts.append(f"#s{index} = :s{index}")
        add_parts = []
        for index, (name, amount) in enumerate((adds or {}).items()):
            path = []
            for depth, part in enumerate(name.split(".")):
                names[f"#a{index}_{depth}"] = part
                path.append(f"#a{index}_{depth}")
            values[f":a{index}"] = {"N": str(amount)}
            add_parts.append(f"{'.'.join(path)} :a{index}")
        expression = "SET " + ", ".join(set_parts)
        if add_parts:
            expression += " ADD " + ", ".join(add_parts)
        condition = "attribute_exists(#pk)"
        states = list(from_states)
        if states:
            names["#state"] = J.STATE
            for index, state in enumerate(states):
                values[f":from{index}"] = {"S": state.value}
            condition += " AND #state IN (" + ", ".join(f":from{i}" for i in range(len(states))) + ")"
        try:
            answer = self._client.update_item(
                TableName=self._config.table,
                Key=self._key(job_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW" if return_new else "NONE",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if code_of(exc) == _CONDITION_FAILED:
                old = getattr(exc, "response", {}).get("Item") or {}
                if not old:
                    raise JobNotFound(job_id) from exc
                raise StateMoved(job_id, old) from exc
            raise
        return plain(answer.get("Attributes") or {})

    # -- the lines' items ---------------------------------------------------------------------------------
    def refuse_line(self, job_id: str, line: int, error: str) -> None:
        """A line the splitter refused: recorded as ended (dead_lettered, invalid_message) at once, never
        sent. A plain put: a resumed split writing it again writes the same thing."""
        now = self._clock()
        now_ms = int(now * 1000)
        request_id = job_request_id(job_id, line)
        reason = Reason.INVALID_MESSAGE.value
        state = LedgerState.DEAD_LETTERED.value
        self._client.put_item(
            TableName=self._config.table,
            Item={
                A.KEY: {"S": self._config.key_prefix + request_id},
                A.REQUEST_ID: {"S": request_id},
                A.STATE: {"S": state},
                A.REASON: {"S": reason},
                A.ERROR: {"S": error[:1000]},
                A.JOB_ID: {"S": job_id},
                A.LINE: {"N": str(line)},
                A.ENDPOINT: {"S": self._config.endpoint_name},
                A.FIRST_SEEN_AT: {"N": str(now_ms)},
                A.UPDATED_AT: {"N": str(now_ms)},
                A.ENDED_AT: {"N": str(now_ms)},
                A.EXPIRES_AT: {"N": str(int(now) + self._config.expire_days * 86_400)},
                A.TIMELINE: {"L": [{"M": {"s": {"S": state}, "t": {"N": str(now_ms)}, "r": {"S": reason}}}]},
            },
        )

    def lines(self, job_id: str, numbers: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The ledger items of these lines (at most BATCH_GET_KEYS), by line number; missing ones absent."""
        keys = {self._config.key_prefix + job_request_id(job_id, n): n for n in numbers}
        wanted: list[dict[str, AttributeValueTypeDef]] = [{A.KEY: {"S": key}} for key in keys]
        found: dict[int, dict[str, Any]] = {}
        attempts = 0
        while wanted:
            answer = self._client.batch_get_item(
                RequestItems={self._config.table: {"Keys": wanted, "ConsistentRead": True}}
            )
            for item in answer.get("Responses", {}).get(self._config.table, []):
                row = plain(item)
                found[keys[row[A.KEY]]] = row
            unprocessed = answer.get("UnprocessedKeys", {}).get(self._config.table)
            wanted = list(unprocessed["Keys"]) if unprocessed else []
            attempts += 1
            if wanted:  # throttled: back off a little, as the SDK would for a whole call
                time.sleep(min(2.0, 0.05 * 2**attempts))
        return found


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (numbers as int or float)."""
    return {name: _plain(value) for name, value in item.items()}


def _plain(value: Mapping[str, Any]) -> Any:  # noqa: PLR0911 - one per DynamoDB type
    if "S" in value:
        return value["S"]
    if "N" in value:
        number = float(value["N"])
        return int(number) if number.is_integer() else number
    if "M" in value:
        return plain(value["M"])
    if "L" in value:
        return [_plain(v) for v in value["L"]]
    if "BOOL" in value:
        return value["BOOL"]
    if "NULL" in value:
        return None
    return json.dumps(value)


def _value(value: Any) -> AttributeValueTypeDef:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {k: _value(v) for k, v in value.items()}}
    if value is None:
        return {"NULL": True}
    return {"S": str(value)}


def code_of(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
