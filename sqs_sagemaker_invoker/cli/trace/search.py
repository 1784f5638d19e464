"""`invoker trace`: every log line of the function that mentions one request id (or message id)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from sqs_sagemaker_invoker.cli.envelope import REQUEST_ID
from sqs_sagemaker_invoker.cli.errors import CliError, describe_aws_error, error_code

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import ResultFieldTypeDef

    from sqs_sagemaker_invoker.cli.target import Target

Method = Literal["auto", "insights", "filter"]
MAX_LINES = 10_000
INSIGHTS_TIMEOUT_S = 60.0


@dataclass
class LogLine:
    timestamp_ms: int
    stream: str
    message: str

    @property
    def document(self) -> dict[str, Any] | None:
        if not self.message.lstrip().startswith("{"):
            return None
        with contextlib.suppress(ValueError):
            value = json.loads(self.message)
            if isinstance(value, dict):
                return value
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp_ms,
            "logStream": self.stream,
            "message": self.document if self.document is not None else self.message,
        }


def check_id(value: str) -> str:
    # The id goes into a query and a filter pattern: only the characters a request id may have.
    if not REQUEST_ID.fullmatch(value):
        raise CliError(f"{value!r} is not a request id or message id (1-128 of A-Z a-z 0-9 . _ : -)")
    return value


def mentions(line: LogLine, wanted: str) -> bool:
    document = line.document
    if document is not None:
        if wanted in (document.get("request_id"), document.get("message_id")):
            return True
        ids = document.get("message_ids")
        if isinstance(ids, list) and wanted in ids:
            return True
    return wanted in line.message


def find(
    target: Target, log_group: str, wanted: str, *, since_s: int, method: Method
) -> tuple[str, list[LogLine]]:
    end = int(time.time())
    start = end - since_s
    if method in ("auto", "insights"):
        try:
            lines = _insights(target, log_group, wanted, start, end)
            return "Logs Insights", _only(lines, wanted)
        except (ClientError, BotoCoreError, TimeoutError) as exc:
            if method == "insights" or _missing_group(exc):
                raise _explain(exc, log_group) from exc
    try:
        lines = _filter(target, log_group, wanted, start, end)
    except (ClientError, BotoCoreError) as exc:
        raise _explain(exc, log_group) from exc
    return "FilterLogEvents", _only(lines, wanted)


def _only(lines: list[LogLine], wanted: str) -> list[LogLine]:
    # Checked here too: a backend may apply the query's filter loosely (moto ignores it).
    unique = {
        (line.timestamp_ms, line.stream, line.message): line for line in lines if mentions(line, wanted)
    }
    return sorted(unique.values(), key=lambda line: line.timestamp_ms)


def _missing_group(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) == "ResourceNotFoundException"


def _explain(exc: BaseException, log_group: str) -> CliError:
    if _missing_group(exc):
        return CliError(f"log group {log_group} not found (has the function run yet?)")
    return CliError(f"reading {log_group} failed: {describe_aws_error(exc) or exc}")


def _insights(target: Target, log_group: str, wanted: str, start: int, end: int) -> list[LogLine]:
    logs = target.logs(attempts=1)
    query = (
        "fields @timestamp, @logStream, @message\n"
        f'| filter @message like "{wanted}"\n'
        "| sort @timestamp asc\n"
        f"| limit {MAX_LINES}"
    )
    query_id = logs.start_query(logGroupName=log_group, startTime=start, endTime=end, queryString=query)[
        "queryId"
    ]
    deadline = time.monotonic() + INSIGHTS_TIMEOUT_S
    while True:
        response = logs.get_query_results(queryId=query_id)
        status = response.get("status")
        if status == "Complete":
            return [_row(row) for row in response.get("results", [])]
        if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
            raise CliError(f"Logs Insights query {status.lower()} on {log_group}")
        if time.monotonic() > deadline:
            with contextlib.suppress(ClientError, BotoCoreError):
                logs.stop_query(queryId=query_id)
            raise TimeoutError("Logs Insights query did not finish in time")
        time.sleep(0.5)


def _row(row: list[ResultFieldTypeDef]) -> LogLine:
    fields = {f.get("field", ""): f.get("value", "") for f in row}
    return LogLine(
        _timestamp(fields.get("@timestamp", "")), fields.get("@logStream", ""), fields.get("@message", "")
    )


def _timestamp(value: str) -> int:
    if value.isdigit():
        return int(value)
    # Logs Insights prints "2026-11-27 07:13:32.462" (UTC).
    for layout in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        with contextlib.suppress(ValueError):
            return int(datetime.strptime(value, layout).replace(tzinfo=UTC).timestamp() * 1000)
    return 0


def _filter(target: Target, log_group: str, wanted: str, start: int, end: int) -> list[LogLine]:
    logs = target.logs()
    lines: list[LogLine] = []
    token: str | None = None
    while len(lines) < MAX_LINES:
        kwargs: dict[str, Any] = {
            "logGroupName": log_group,
            "startTime": start * 1000,
            "endTime": end * 1000 + 999,
            # A quoted term: the simple pattern syntax every backend understands (moto has no JSON patterns).
            "filterPattern": f'"{wanted}"',
        }
        if token:
            kwargs["nextToken"] = token
        response = logs.filter_log_events(**kwargs)
        for event in response.get("events", []):
            lines.append(
                LogLine(
                    int(event.get("timestamp", 0)), event.get("logStreamName", ""), event.get("message", "")
                )
            )
        token = response.get("nextToken")
        if not token:
            break
    return lines


def outcome(lines: list[LogLine]) -> str:
    """One sentence: how the request ended, as far as the logs say."""
    attempts = [d for d in (line.document for line in lines) if d is not None and d.get("disposition")]
    if not attempts:
        return "no outcome logged yet"
    last = attempts[-1]
    retries = [str(a.get("reason")) for a in attempts if a.get("disposition") == "retry"]
    earlier = [str(a.get("reason")) for a in attempts[:-1] if a.get("disposition") == "dead_letter"]
    history = []
    if retries:
        history.append(f"{len(retries)} retr{'y' if len(retries) == 1 else 'ies'} ({', '.join(retries)})")
    if earlier:
        history.append(f"{len(earlier)} redrive(s) from the DLQ ({', '.join(earlier)})")
    after = f" after {' and '.join(history)}" if history else ""
    disposition = last.get("disposition")
    if disposition == "deliver":
        return f"delivered{after}"
    if disposition == "dead_letter":
        return f"dead-lettered: {last.get('reason')}{after}"
    return f"waiting to be retried: {last.get('reason')}{after}"
