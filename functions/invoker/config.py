"""Function configuration: read from the environment once, at cold start, and validated."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from invoker.contract import (
    CAPACITY_REFRESH_SECONDS_RANGE,
    CONCURRENCY_PER_INSTANCE_RANGE,
    DEADLINE_MARGIN_SECONDS_RANGE,
    DEFAULT_LEDGER_DEDUPE_SECONDS,
    DEFAULT_LEDGER_EXPIRE_DAYS,
    ENDPOINT_NAME,
    LEDGER_DEDUPE_SECONDS_RANGE,
    LEDGER_EXPIRE_DAYS_RANGE,
    MAX_CONCURRENCY_RANGE,
    MAX_RECEIVE_COUNT_RANGE,
    READ_TIMEOUT_SECONDS_RANGE,
    RETRY_SECONDS_RANGE,
    SQS_SENDS_IN_FLIGHT_RANGE,
    CapacityMode,
    Env,
    MessageFormat,
    Range,
    ResultsMode,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

# The queue name, ".fifo" included, is at most 80 characters.
_QUEUE_URL = re.compile(
    r"https?://[^/\s]+(/[^/\s]+)?/[^/\s]+/(?=[A-Za-z0-9_.-]{1,80}\Z)[A-Za-z0-9_-]+(\.fifo)?"
)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_PREFIX = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(\S*/)?")
# DynamoDB table names: 3-255 of a-z A-Z 0-9 _ . -
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
# Any non-empty string up to 1024 characters (a DynamoDB partition key takes up to 2048 bytes).
_CAPACITY_KEY = re.compile(r"(?s).{1,1024}")
# Production variant and inference component names follow the endpoint name's rule.
_COMPONENT_NAME = re.compile(r"(?=.{1,63}\Z)[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
# A route name and a slash (infra.config's route names), so a route's items share one IAM-scoped prefix.
_LEDGER_KEY_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,30}/")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """The request ledger's settings (LEDGER_*); the route has no ledger when LEDGER_TABLE is unset."""

    table: str
    key_prefix: str
    dedupe_seconds: int
    expire_days: int


@dataclass(frozen=True, slots=True)
class SharedCapacityConfig:
    """CAPACITY_MODE=shared: where the route's budget lives and how the endpoint's capacity is read."""

    table: str
    key: str
    concurrency_per_instance: int
    # One production variant's instances; None: the sum over every variant.
    variant: str | None = None
    # When set, capacity is this inference component's copies (the variant is then not read).
    inference_component: str | None = None
    refresh_seconds: int = 10


@dataclass(frozen=True, slots=True)
class Config:
    endpoint_name: str
    dead_letter_queue_url: str
    dead_letter_bucket: str
    dead_letter_prefix: str
    results_queue_url: str | None
    results_bucket: str | None
    results_prefix: str
    results_mode: ResultsMode
    max_receive_count: int
    retry_base_seconds: int
    retry_max_seconds: int
    max_concurrency: int
    message_format: MessageFormat
    payload_s3_prefix: str | None
    read_timeout_seconds: int
    deadline_margin_seconds: int
    sqs_sends_in_flight: int
    log_payloads: bool
    enable_tracing: bool
    capacity_mode: CapacityMode = CapacityMode.PER_INSTANCE
    # Set exactly when capacity_mode is SHARED.
    shared_capacity: SharedCapacityConfig | None = None
    ledger: LedgerSettings | None = None

    @property
    def deadline_seconds(self) -> int:
        """No invocation starts with less than this much of the Lambda's time left."""
        return self.read_timeout_seconds + self.deadline_margin_seconds


def load_config(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    reader = _Reader(env)
    endpoint_name = reader.required(
        Env.ENDPOINT_NAME, ENDPOINT_NAME, "an endpoint name (1-63 of a-z A-Z 0-9 -)"
    )
    dlq = reader.required(Env.DEAD_LETTER_QUEUE_URL, _QUEUE_URL, "an SQS queue URL")
    results_queue = reader.optional(Env.RESULTS_QUEUE_URL, _QUEUE_URL, "an SQS queue URL")
    results_bucket = reader.optional(Env.RESULTS_BUCKET, _BUCKET, "an S3 bucket name")
    results_mode = reader.choice(Env.RESULTS_MODE, ResultsMode, ResultsMode.DELIVER)
    if results_mode is ResultsMode.DELIVER and not (results_queue or results_bucket):
        raise ConfigError(
            f"{Env.RESULTS_QUEUE_URL} or {Env.RESULTS_BUCKET} must be set"
            f" (or {Env.RESULTS_MODE}=discard to drop results on purpose)"
        )
    # Per instance by default: a deployment that sets nothing keeps today's behaviour; the stack sets shared.
    capacity_mode = reader.choice(Env.CAPACITY_MODE, CapacityMode, CapacityMode.PER_INSTANCE)
    retry_base = reader.integer(Env.RETRY_BASE_SECONDS, 2, RETRY_SECONDS_RANGE)
    retry_max = reader.integer(Env.RETRY_MAX_SECONDS, 900, RETRY_SECONDS_RANGE)
    if retry_max < retry_base:
        raise ConfigError(
            f"{Env.RETRY_MAX_SECONDS} ({retry_max}) must not be below {Env.RETRY_BASE_SECONDS} ({retry_base})"
        )
    return Config(
        endpoint_name=endpoint_name,
        dead_letter_queue_url=dlq,
        # Where a dead-letter copy's body goes when it cannot fit in an SQS message with its reason.
        dead_letter_bucket=reader.required(Env.DEAD_LETTER_BUCKET, _BUCKET, "an S3 bucket name"),
        dead_letter_prefix=reader.key_prefix(Env.DEAD_LETTER_PREFIX, "dead-letters/"),
        results_queue_url=results_queue,
        results_bucket=results_bucket,
        results_prefix=reader.key_prefix(Env.RESULTS_PREFIX, "results/"),
        results_mode=results_mode,
        max_receive_count=reader.required_integer(Env.MAX_RECEIVE_COUNT, MAX_RECEIVE_COUNT_RANGE),
        retry_base_seconds=retry_base,
        retry_max_seconds=retry_max,
        max_concurrency=reader.integer(Env.MAX_CONCURRENCY, 16, MAX_CONCURRENCY_RANGE),
        message_format=reader.choice(Env.MESSAGE_FORMAT, MessageFormat, MessageFormat.ENVELOPE),
        payload_s3_prefix=reader.optional(
            Env.PAYLOAD_S3_PREFIX, _S3_PREFIX, "an s3://bucket/prefix/ URI ending in /"
        ),
        read_timeout_seconds=reader.integer(Env.READ_TIMEOUT_SECONDS, 70, READ_TIMEOUT_SECONDS_RANGE),
        deadline_margin_seconds=reader.integer(Env.DEADLINE_MARGIN_SECONDS, 5, DEADLINE_MARGIN_SECONDS_RANGE),
        # 4 calls of 10 at a 20 ms round trip: about 2,000 results per second per instance, well above
        # what an instance invokes; each call holds one of the SQS client's pooled connections.
        sqs_sends_in_flight=reader.integer(Env.SQS_SENDS_IN_FLIGHT, 4, SQS_SENDS_IN_FLIGHT_RANGE),
        log_payloads=reader.boolean(Env.LOG_PAYLOADS),
        enable_tracing=reader.boolean(Env.ENABLE_TRACING),
        capacity_mode=capacity_mode,
        shared_capacity=_shared_capacity(reader) if capacity_mode is CapacityMode.SHARED else None,
        ledger=_ledger_settings(reader),
    )


def _shared_capacity(reader: _Reader) -> SharedCapacityConfig:
    return SharedCapacityConfig(
        table=reader.required(Env.CAPACITY_TABLE, _TABLE, "a DynamoDB table name"),
        key=reader.required(Env.CAPACITY_KEY, _CAPACITY_KEY, "the route's key, 1-1024 characters"),
        concurrency_per_instance=reader.required_integer(
            Env.CONCURRENCY_PER_INSTANCE, CONCURRENCY_PER_INSTANCE_RANGE
        ),
        variant=reader.optional(Env.CAPACITY_VARIANT, _COMPONENT_NAME, "a production variant name"),
        inference_component=reader.optional(
            Env.CAPACITY_INFERENCE_COMPONENT, _COMPONENT_NAME, "an inference component name"
        ),
        refresh_seconds=reader.integer(Env.CAPACITY_REFRESH_SECONDS, 10, CAPACITY_REFRESH_SECONDS_RANGE),
    )


def _ledger_settings(reader: _Reader) -> LedgerSettings | None:
    table = reader.optional(Env.LEDGER_TABLE, _TABLE, "a DynamoDB table name")
    if table is None:
        return None  # no ledger: the other LEDGER_* variables are not read
    return LedgerSettings(
        table=table,
        key_prefix=reader.required(
            Env.LEDGER_KEY_PREFIX, _LEDGER_KEY_PREFIX, "a route name followed by / (e.g. demo/)"
        ),
        dedupe_seconds=reader.integer(
            Env.LEDGER_DEDUPE_SECONDS, DEFAULT_LEDGER_DEDUPE_SECONDS, LEDGER_DEDUPE_SECONDS_RANGE
        ),
        expire_days=reader.integer(
            Env.LEDGER_EXPIRE_DAYS, DEFAULT_LEDGER_EXPIRE_DAYS, LEDGER_EXPIRE_DAYS_RANGE
        ),
    )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _get(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def required(self, name: str, pattern: re.Pattern[str], what: str) -> str:
        value = self._get(name)
        if value is None:
            raise ConfigError(f"{name} is required ({what})")
        return self._match(name, value, pattern, what)

    def optional_text(self, name: str) -> str | None:
        return self._get(name)

    def optional(self, name: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self._get(name)
        return None if value is None else self._match(name, value, pattern, what)

    @staticmethod
    def _match(name: str, value: str, pattern: re.Pattern[str], what: str) -> str:
        if not pattern.fullmatch(value):
            raise ConfigError(f"{name}={value!r} is not {what}")
        return value

    def key_prefix(self, name: str, default: str) -> str:
        prefix = self._env.get(name, default)
        if prefix.startswith("/") or len(prefix) > 512:
            raise ConfigError(f"{name}={prefix!r} must be a relative S3 key prefix of at most 512 characters")
        return prefix

    def required_integer(self, name: str, allowed: Range) -> int:
        if self._get(name) is None:
            raise ConfigError(f"{name} is required (an integer {allowed})")
        return self.integer(name, 0, allowed)

    def integer(self, name: str, default: int, allowed: Range) -> int:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not an integer") from None
        if value not in allowed:
            raise ConfigError(f"{name}={value} is out of range ({allowed})")
        return value

    def boolean(self, name: str) -> bool:
        raw = self._get(name)
        if raw is None:
            return False
        lowered = raw.lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean (true or false)")

    def choice[E: StrEnum](self, name: str, enum: type[E], default: E) -> E:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            return enum(raw.lower())
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise ConfigError(f"{name}={raw!r} is not one of: {allowed}") from None
