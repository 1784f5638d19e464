"""One request as the route's ledger records it (docs/function.md#the-request-ledger), and its result."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from invoker.contract import LedgerAttribute as A
from invoker.contract import ledger_key_prefix

from sqs_sagemaker_invoker.cli.errors import CliError, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from sqs_sagemaker_invoker.cli.target import Route, Target

# A result body shown inline up to this many characters (the rest: read it from where it is).
MAX_SHOWN_RESULT = 20_000


@dataclass(frozen=True)
class Transition:
    state: str
    at_ms: int
    reason: str | None
    message_id: str | None


@dataclass
class RequestRecord:
    request_id: str
    route: str
    state: str
    endpoint: str | None
    receive_count: int | None
    message_id: str | None
    job_id: str | None
    line: int | None
    reason: str | None
    last_reason: str | None
    error: str | None
    result_message_id: str | None
    result_s3_uri: str | None
    dead_letter_message_id: str | None
    claim_until: float | None
    first_seen_ms: int | None
    updated_ms: int | None
    ended_ms: int | None
    expires_at: int | None
    timeline: list[Transition] = field(default_factory=list)
    result: Any = None  # the result document (or body) read from result_s3_uri
    result_note: str | None = None  # where the result is when it is not shown, or why it could not be read

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_record(target: Target, route: Route, request_id: str) -> RequestRecord:
    if not route.ledger_table:
        raise CliError(
            f"route {route.name} has no request ledger (enable it in cdk.json: the route's "
            '"ledger": {"enabled": true}, then deploy)'
        )
    dynamodb: DynamoDBClient = target.client("dynamodb")
    key = ledger_key_prefix(route.name) + request_id
    try:
        found = dynamodb.get_item(TableName=route.ledger_table, Key={A.KEY: {"S": key}}, ConsistentRead=True)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise CliError(
                f"the ledger table {route.ledger_table} of route {route.name} does not exist"
            ) from exc
        raise
    item = found.get("Item")
    if not item:
        raise CliError(
            f"no request {request_id!r} in the ledger of route {route.name}: never received by the function, "
            "received before the ledger was enabled, or expired (ledger.expireDays)"
        )
    return record_of(item, route.name, request_id)


def record_of(item: dict[str, Any], route: str, request_id: str) -> RequestRecord:
    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return str(value) if value is not None else None

    def number(name: str) -> float | None:
        value = item.get(name, {}).get("N")
        return float(value) if value is not None else None

    def whole(name: str) -> int | None:
        value = number(name)
        return int(value) if value is not None else None

    timeline = []
    for entry in item.get(A.TIMELINE, {}).get("L", []):
        parts = entry.get("M", {})
        timeline.append(
            Transition(
                state=parts.get("s", {}).get("S", "?"),
                at_ms=int(float(parts.get("t", {}).get("N", "0"))),
                reason=parts.get("r", {}).get("S"),
                message_id=parts.get("m", {}).get("S"),
            )
        )
    return RequestRecord(
        request_id=text(A.REQUEST_ID) or request_id,
        route=route,
        state=text(A.STATE) or "?",
        endpoint=text(A.ENDPOINT),
        receive_count=whole(A.RECEIVE_COUNT),
        message_id=text(A.MESSAGE_ID),
        job_id=text(A.JOB_ID),
        line=whole(A.LINE),
        reason=text(A.REASON),
        last_reason=text(A.LAST_REASON),
        error=text(A.ERROR),
        result_message_id=text(A.RESULT_MESSAGE_ID),
        result_s3_uri=text(A.RESULT_S3_URI),
        dead_letter_message_id=text(A.DEAD_LETTER_MESSAGE_ID),
        claim_until=number(A.CLAIM_UNTIL),
        first_seen_ms=whole(A.FIRST_SEEN_AT),
        updated_ms=whole(A.UPDATED_AT),
        ended_ms=whole(A.ENDED_AT),
        expires_at=whole(A.EXPIRES_AT),
        timeline=timeline,
    )


def attach_result(target: Target, record: RequestRecord) -> None:
    """The result itself when the ledger points at S3; where it is otherwise."""
    if record.state != "delivered":
        return
    if record.result_s3_uri:
        bucket, _, key = record.result_s3_uri.removeprefix("s3://").partition("/")
        try:
            data = target.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            record.result_note = f"{record.result_s3_uri} could not be read: {error_code(exc)}"
            return
        text = data.decode("utf-8", errors="replace")
        if key.endswith(".json"):
            try:
                record.result = json.loads(text)
            except ValueError:
                record.result = text[:MAX_SHOWN_RESULT]
        else:
            record.result = text[:MAX_SHOWN_RESULT]
        if record.result_message_id:
            record.result_note = f"the result message on the results queue is {record.result_message_id}"
        return
    if record.result_message_id:
        record.result_note = (
            f"on the results queue as message {record.result_message_id} (SQS reads no message by id: "
            f"`invoker results --request-id {record.request_id}` takes it off the queue)"
        )
    else:
        record.result_note = "the route discards results (results.queue and results.bucket are off)"
