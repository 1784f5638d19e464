"""The splitter/assembler function's configuration: read once at cold start, a bad setting named."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from invoker.config import (
    _BUCKET,
    _CAPACITY_KEY,
    _LEDGER_KEY_PREFIX,
    _QUEUE_URL,
    _TABLE,
    ConfigError,
    _Reader,
)
from invoker.contract import (
    DEADLINE_MARGIN_SECONDS_RANGE,
    DEFAULT_LEDGER_EXPIRE_DAYS,
    ENDPOINT_NAME,
    JOB_MAX_BACKLOG_RANGE,
    JOB_PART_BYTES_RANGE,
    JOB_WATCH_SECONDS_RANGE,
    LEDGER_EXPIRE_DAYS_RANGE,
    Env,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ConfigError", "JobsConfig", "load_jobs_config"]


@dataclass(frozen=True, slots=True)
class JobsConfig:
    endpoint_name: str
    table: str  # the ledger table: the job items and the lines' items
    key_prefix: str  # the route's LEDGER_KEY_PREFIX
    expire_days: int
    request_queue_url: str
    control_queue_url: str
    bucket: str  # the route's results bucket: jobs/<jobId>/...
    max_backlog: int | None  # None: derived from the route's capacity item (or JOB_DEFAULT_BACKLOG)
    capacity_table: str | None = None
    capacity_key: str | None = None
    watch_seconds: int = 10
    part_bytes: int = 8 * 1024 * 1024
    event_bus: str = "default"
    deadline_margin_seconds: int = 10


def load_jobs_config(env: Mapping[str, str] | None = None) -> JobsConfig:
    reader = _Reader(os.environ if env is None else env)
    capacity_table = reader.optional(Env.CAPACITY_TABLE, _TABLE, "a DynamoDB table name")
    return JobsConfig(
        endpoint_name=reader.required(Env.ENDPOINT_NAME, ENDPOINT_NAME, "a SageMaker endpoint name"),
        table=reader.required(Env.LEDGER_TABLE, _TABLE, "a DynamoDB table name (jobs need the ledger)"),
        key_prefix=reader.required(Env.LEDGER_KEY_PREFIX, _LEDGER_KEY_PREFIX, "a route name followed by /"),
        expire_days=reader.integer(
            Env.LEDGER_EXPIRE_DAYS, DEFAULT_LEDGER_EXPIRE_DAYS, LEDGER_EXPIRE_DAYS_RANGE
        ),
        request_queue_url=reader.required(Env.REQUEST_QUEUE_URL, _QUEUE_URL, "an SQS queue URL"),
        control_queue_url=reader.required(Env.JOB_CONTROL_QUEUE_URL, _QUEUE_URL, "an SQS queue URL"),
        bucket=reader.required(Env.JOB_BUCKET, _BUCKET, "an S3 bucket name (the route's results bucket)"),
        max_backlog=_optional_integer(reader, Env.JOB_MAX_BACKLOG),
        capacity_table=capacity_table,
        capacity_key=(
            reader.required(Env.CAPACITY_KEY, _CAPACITY_KEY, "the route's capacity key")
            if capacity_table
            else None
        ),
        watch_seconds=reader.integer(Env.JOB_WATCH_SECONDS, 10, JOB_WATCH_SECONDS_RANGE),
        part_bytes=reader.integer(Env.JOB_PART_BYTES, 8 * 1024 * 1024, JOB_PART_BYTES_RANGE),
        event_bus=(os.environ if env is None else env).get(Env.JOB_EVENT_BUS) or "default",
        deadline_margin_seconds=reader.integer(
            Env.DEADLINE_MARGIN_SECONDS, 10, DEADLINE_MARGIN_SECONDS_RANGE
        ),
    )


def _optional_integer(reader: _Reader, name: str) -> int | None:
    return reader.integer(name, 0, JOB_MAX_BACKLOG_RANGE) if reader.optional_text(name) else None
