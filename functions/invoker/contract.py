"""The function's contract with everything around it, written once: the AWS limits it relies on and the
names it shares (environment variables, reasons, metrics, dead-letter attributes).

Pure standard library on purpose: the CDK constructs, the local stack and the CLI import this module,
and nothing else of the function (the layering test in tests/unit holds them to it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

# -- AWS limits --------------------------------------------------------------------------------------------

# One SQS message, attributes included; also the most one SendMessageBatch may carry in total.
SQS_MAX_MESSAGE_BYTES: Final = 1_048_576
# Entries per SendMessageBatch, ChangeMessageVisibilityBatch and DeleteMessageBatch call.
SQS_MAX_BATCH_ENTRIES: Final = 10
SQS_MAX_MESSAGE_ATTRIBUTES: Final = 10
# The longest a message can be kept out of sight (visibility timeout ceiling).
SQS_MAX_VISIBILITY_SECONDS: Final = 43_200
# InvokeEndpoint's request body.
INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES: Final = 6_291_456
# Endpoint names: 1-63 characters, alphanumerics and hyphens, no leading or trailing hyphen.
ENDPOINT_NAME_MAX_LENGTH: Final = 63
ENDPOINT_NAME_SYNTAX: Final = "[a-zA-Z0-9](-*[a-zA-Z0-9])*"
# Use with fullmatch: `$` would also accept a trailing newline.
ENDPOINT_NAME: Final = re.compile(rf"(?=.{{1,{ENDPOINT_NAME_MAX_LENGTH}}}\Z){ENDPOINT_NAME_SYNTAX}")


@dataclass(frozen=True, slots=True)
class Range:
    """An inclusive range of whole numbers a setting accepts."""

    low: int
    high: int

    def __iter__(self) -> Iterator[int]:
        """(low, high): spreads into a (minimum, maximum) pair of arguments."""
        return iter((self.low, self.high))

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


# The ranges both the function's configuration and the route schema check.
MAX_CONCURRENCY_RANGE: Final = Range(1, 256)
MAX_RECEIVE_COUNT_RANGE: Final = Range(1, 1000)
RETRY_SECONDS_RANGE: Final = Range(0, SQS_MAX_VISIBILITY_SECONDS)
READ_TIMEOUT_SECONDS_RANGE: Final = Range(1, 900)
DEADLINE_MARGIN_SECONDS_RANGE: Final = Range(0, 300)
# SendMessageBatch calls in flight at once per destination queue inside one function instance.
SQS_SENDS_IN_FLIGHT_RANGE: Final = Range(1, 32)
# InvokeEndpoint calls one endpoint instance (or inference-component copy) takes at once: the route's
# capacity ceiling is this times the instances (copies) serving. 1000 is a serverless variant's bound.
CONCURRENCY_PER_INSTANCE_RANGE: Final = Range(1, 1000)
# How old the shared reading of the endpoint's capacity (Describe*) may get before an instance refreshes it.
CAPACITY_REFRESH_SECONDS_RANGE: Final = Range(1, 300)
# The request ledger: how long an ended request answers a resend as a duplicate (0: never), and how long
# its item is kept (DynamoDB's TTL removes it after that).
LEDGER_DEDUPE_SECONDS_RANGE: Final = Range(0, 366 * 86_400)
LEDGER_EXPIRE_DAYS_RANGE: Final = Range(1, 3650)


# -- the retry schedule ------------------------------------------------------------------------------------


def backoff_ceiling(receive_count: int, base_seconds: int, max_seconds: int) -> int:
    """The longest delay after the `receive_count`-th delivery failed: base x 2^(n-1), capped at max.

    Here because the stack checks at synth what the schedule promises (a scale-out from zero must be
    outlasted by the waits of a message that finds no capacity); the function draws its delays from it."""
    attempt = max(receive_count, 1)
    # 2**k overflows nothing in Python, but bound the exponent so the float stays finite.
    return int(min(max_seconds, base_seconds * 2 ** min(attempt - 1, 32)))


def capacity_wait_floor_seconds(max_receive_count: int, base_seconds: int, max_seconds: int) -> int:
    """The least time a message waits, over all its deliveries, while it finds no capacity (reasons in
    WAITS_FOR_CAPACITY). Those delays are drawn with "equal jitter", at least half of each ceiling, so
    this floor holds for every draw; the last delivery dead-letters instead of waiting."""
    return sum(
        backoff_ceiling(n, base_seconds, max_seconds) // 2 for n in range(1, max(max_receive_count, 1))
    )


# -- shared names ----------------------------------------------------------------------------------------


class Env:
    """The function's environment variables."""

    ENDPOINT_NAME: Final = "ENDPOINT_NAME"
    DEAD_LETTER_QUEUE_URL: Final = "DEAD_LETTER_QUEUE_URL"
    DEAD_LETTER_BUCKET: Final = "DEAD_LETTER_BUCKET"
    DEAD_LETTER_PREFIX: Final = "DEAD_LETTER_PREFIX"
    RESULTS_QUEUE_URL: Final = "RESULTS_QUEUE_URL"
    RESULTS_BUCKET: Final = "RESULTS_BUCKET"
    RESULTS_PREFIX: Final = "RESULTS_PREFIX"
    RESULTS_MODE: Final = "RESULTS_MODE"
    MAX_RECEIVE_COUNT: Final = "MAX_RECEIVE_COUNT"
    RETRY_BASE_SECONDS: Final = "RETRY_BASE_SECONDS"
    RETRY_MAX_SECONDS: Final = "RETRY_MAX_SECONDS"
    MAX_CONCURRENCY: Final = "MAX_CONCURRENCY"
    MESSAGE_FORMAT: Final = "MESSAGE_FORMAT"
    PAYLOAD_S3_PREFIX: Final = "PAYLOAD_S3_PREFIX"
    READ_TIMEOUT_SECONDS: Final = "READ_TIMEOUT_SECONDS"
    DEADLINE_MARGIN_SECONDS: Final = "DEADLINE_MARGIN_SECONDS"
    SQS_SENDS_IN_FLIGHT: Final = "SQS_SENDS_IN_FLIGHT"
    # Route capacity (see CapacityMode): shared through a DynamoDB item, or limited per instance.
    CAPACITY_MODE: Final = "CAPACITY_MODE"
    CAPACITY_TABLE: Final = "CAPACITY_TABLE"
    # The route's partition key in that table; the function's IAM policy is scoped to it.
    CAPACITY_KEY: Final = "CAPACITY_KEY"
    CONCURRENCY_PER_INSTANCE: Final = "CONCURRENCY_PER_INSTANCE"
    # Which capacity counts: one production variant's instances (default: every variant's), or, when
    # set, an inference component's copies.
    CAPACITY_VARIANT: Final = "CAPACITY_VARIANT"
    CAPACITY_INFERENCE_COMPONENT: Final = "CAPACITY_INFERENCE_COMPONENT"
    CAPACITY_REFRESH_SECONDS: Final = "CAPACITY_REFRESH_SECONDS"
    # The request ledger (opt-in per route): set LEDGER_TABLE to turn it on. The route's items are keyed
    # LEDGER_KEY_PREFIX + request id; the function's IAM policy is scoped to that prefix.
    LEDGER_TABLE: Final = "LEDGER_TABLE"
    LEDGER_KEY_PREFIX: Final = "LEDGER_KEY_PREFIX"
    LEDGER_DEDUPE_SECONDS: Final = "LEDGER_DEDUPE_SECONDS"
    LEDGER_EXPIRE_DAYS: Final = "LEDGER_EXPIRE_DAYS"
    # Jobs (opt-in per route, docs/function.md#jobs): the splitter/assembler function's settings. The
    # invoker function itself reads none of them (it only counts a job request's end in the job's item).
    REQUEST_QUEUE_URL: Final = "REQUEST_QUEUE_URL"
    JOB_CONTROL_QUEUE_URL: Final = "JOB_CONTROL_QUEUE_URL"
    JOB_BUCKET: Final = "JOB_BUCKET"
    JOB_MAX_BACKLOG: Final = "JOB_MAX_BACKLOG"
    JOB_WATCH_SECONDS: Final = "JOB_WATCH_SECONDS"
    JOB_PART_BYTES: Final = "JOB_PART_BYTES"
    JOB_EVENT_BUS: Final = "JOB_EVENT_BUS"
    LOG_PAYLOADS: Final = "LOG_PAYLOADS"
    ENABLE_TRACING: Final = "ENABLE_TRACING"
    # Powertools' own
    SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
    METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
    LOG_LEVEL: Final = "POWERTOOLS_LOG_LEVEL"


DEFAULT_SERVICE_NAME: Final = "invoker"
DEFAULT_METRICS_NAMESPACE: Final = "SqsSageMakerInvoker"


class MessageFormat(StrEnum):
    """MESSAGE_FORMAT: what an SQS body is (the route schema offers the same values)."""

    ENVELOPE = "envelope"
    RAW = "raw"


class ResultsMode(StrEnum):
    """RESULTS_MODE: deliver results, or drop them on purpose (load tests)."""

    DELIVER = "deliver"
    DISCARD = "discard"


class CapacityMode(StrEnum):
    """CAPACITY_MODE: how the function instances of a route share the endpoint.

    SHARED: every instance leases slots from one budget per route (a DynamoDB item), whose ceiling is the
    endpoint's serving capacity and which shrinks on any instance's throttle (AIMD at the route level).
    PER_INSTANCE: each instance limits itself (AIMD per instance), no table; K instances may send K times
    what the endpoint takes, and the throttles show it."""

    SHARED = "shared"
    PER_INSTANCE = "per_instance"


# The capacity table: one item per route, keyed by CAPACITY_KEY. DynamoDB's TTL (on this attribute) only
# removes the items of idle or deleted routes, days later; leases expire by the times written in them.
CAPACITY_TABLE_PARTITION_KEY: Final = "pk"
CAPACITY_TABLE_TTL_ATTRIBUTE: Final = "expiresAt"


class Disposition(StrEnum):
    DELIVER = "deliver"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


class Reason(StrEnum):
    # retry later
    MODEL_NOT_READY = "model_not_ready"
    NO_CAPACITY = "no_capacity"
    # Shared capacity: every slot of the route was leased by other instances until this batch's deadline.
    CAPACITY_BUSY = "capacity_busy"
    THROTTLED = "throttled"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_FAILURE = "internal_failure"
    INTERNAL_DEPENDENCY = "internal_dependency"
    TRANSPORT_ERROR = "transport_error"
    UNEXPECTED_ERROR = "unexpected_error"
    DEADLINE = "deadline"
    FIFO_GROUP_BLOCKED = "fifo_group_blocked"
    RESULT_DELIVERY_FAILED = "result_delivery_failed"
    DEAD_LETTER_FAILED = "dead_letter_failed"
    # The request ledger: another delivery of the same request holds an unexpired claim on it.
    IN_PROGRESS_ELSEWHERE = "in_progress_elsewhere"
    # dead-letter now
    MODEL_ERROR = "model_error"
    VALIDATION_ERROR = "validation_error"
    INVALID_MESSAGE = "invalid_message"
    RESULT_TOO_LARGE = "result_too_large"
    RETRIES_EXHAUSTED = "retries_exhausted"


class Metric:
    """CloudWatch metric names (EMF, namespace POWERTOOLS_METRICS_NAMESPACE)."""

    INVOCATION_LATENCY: Final = "InvocationLatency"
    BATCH_SIZE: Final = "BatchSize"
    CONCURRENCY_LIMIT: Final = "ConcurrencyLimit"
    INVOCATIONS: Final = "Invocations"
    INVOCATION_REATTEMPTS: Final = "InvocationReattempts"
    SUCCEEDED: Final = "Succeeded"
    RETRIED: Final = "Retried"
    DEAD_LETTERED: Final = "DeadLettered"
    # Shared capacity (one value per batch): the instances or copies serving as last read, the route's
    # ceiling and limit in calls, the slots this batch leased. EndpointCapacity feeds the scaling policy.
    ENDPOINT_CAPACITY: Final = "EndpointCapacity"
    ROUTE_CEILING: Final = "RouteCeiling"
    ROUTE_LIMIT: Final = "RouteLimit"
    LEASED_SLOTS: Final = "LeasedSlots"
    # The request ledger (one value per batch): requests answered as duplicates of an ended one (not
    # invoked again), and ledger writes that failed (the message's outcome stands) or were refused.
    LEDGER_DUPLICATES: Final = "LedgerDuplicates"
    LEDGER_WRITE_FAILURES: Final = "LedgerWriteFailures"
    LEDGER_WRITES_REFUSED: Final = "LedgerWritesRefused"


# Retry reasons whose delays wait for the endpoint's capacity: drawn with equal jitter so that
# capacity_wait_floor_seconds holds.
WAITS_FOR_CAPACITY: Final = frozenset({Reason.NO_CAPACITY, Reason.CAPACITY_BUSY, Reason.MODEL_NOT_READY})


class Dimension:
    ENDPOINT: Final = "endpoint"
    SERVICE: Final = "service"  # added by Powertools
    REASON: Final = "reason"  # on Retried and DeadLettered, one document per reason


class LetterAttribute:
    """Message attributes of a dead-letter copy."""

    PREFIX: Final = "invoker."
    REASON: Final = "invoker.reason"
    ERROR: Final = "invoker.error"
    REQUEST_ID: Final = "invoker.request_id"
    MESSAGE_ID: Final = "invoker.message_id"
    RECEIVE_COUNT: Final = "invoker.receive_count"
    SOURCE_QUEUE_ARN: Final = "invoker.source_queue_arn"
    LAST_REASON: Final = "invoker.last_reason"
    ORIGINAL_STATUS_CODE: Final = "invoker.original_status_code"
    LOG_STREAM_ARN: Final = "invoker.log_stream_arn"
    # How often the letter was redriven; the CLI's redrive sets it.
    REDRIVE_COUNT: Final = "invoker.redrive_count"
    # Where the original body is when it was too large to travel next to the reason.
    BODY_S3_URI: Final = "invoker.body_s3_uri"


# The body of a letter whose original body is in the dead-letter bucket: {"invokerBodyS3Uri": "s3://..."}.
LETTER_POINTER_KEY: Final = "invokerBodyS3Uri"


# -- the request ledger ------------------------------------------------------------------------------------


class LedgerState(StrEnum):
    """A request's state in the ledger (docs/function.md#the-request-ledger)."""

    RECEIVED = "received"  # registered before it was sent (a producer, jobs); the function never writes it
    INVOKING = "invoking"  # claimed by one delivery until claimUntil
    RETRYING = "retrying"  # came back to the queue, with its reason
    DELIVERED = "delivered"  # result written (resultMessageId and/or resultS3Uri)
    DEAD_LETTERED = "dead_lettered"  # dead-letter copy written, with its reason


class LedgerAttribute:
    """The attributes of a ledger item (one per request, keyed LEDGER_KEY_PREFIX + request id)."""

    KEY: Final = "pk"
    REQUEST_ID: Final = "requestId"
    STATE: Final = "state"
    REASON: Final = "reason"  # retrying / dead_lettered: the reason; retries_exhausted: see LAST_REASON
    LAST_REASON: Final = "lastReason"
    ERROR: Final = "error"  # the payload-free summary, as the log line says it
    MESSAGE_ID: Final = "messageId"  # the SQS message id of the latest delivery
    RECEIVE_COUNT: Final = "receiveCount"
    ENDPOINT: Final = "endpoint"
    JOB_ID: Final = "jobId"
    LINE: Final = "line"
    RESULT_MESSAGE_ID: Final = "resultMessageId"  # the result's message id on the results queue
    RESULT_S3_URI: Final = "resultS3Uri"  # the result document (bucket only) or its body (too large)
    # A job request's result document, kept here when small (JOB_INLINE_RESULT_BYTES) so the assembler
    # reads a job's results with BatchGetItem, 100 lines a call; a larger one is at RESULT_S3_URI.
    RESULT: Final = "result"
    DEAD_LETTER_MESSAGE_ID: Final = "deadLetterMessageId"
    CLAIM_UNTIL: Final = "claimUntil"  # epoch seconds; a claim past it may be taken over
    CLAIM_TOKEN: Final = "claimToken"  # noqa: S105 - an attribute name, not a secret
    FIRST_SEEN_AT: Final = "firstSeenAt"  # epoch milliseconds
    UPDATED_AT: Final = "updatedAt"
    ENDED_AT: Final = "endedAt"  # delivered / dead_lettered: when; the dedupe window counts from it
    # [{"s": state, "t": epoch ms, "r": reason?, "m": message id?}, ...], oldest first
    TIMELINE: Final = "timeline"
    EXPIRES_AT: Final = "expiresAt"  # epoch seconds, DynamoDB's TTL attribute


LEDGER_TABLE_PARTITION_KEY: Final = LedgerAttribute.KEY
LEDGER_TABLE_TTL_ATTRIBUTE: Final = LedgerAttribute.EXPIRES_AT
DEFAULT_LEDGER_DEDUPE_SECONDS: Final = 86_400
DEFAULT_LEDGER_EXPIRE_DAYS: Final = 30


def ledger_key_prefix(route_name: str) -> str:
    """The LEDGER_KEY_PREFIX of a route: its items in the stack's one ledger table."""
    return f"{route_name}/"


# -- jobs: a JSON Lines file in, one file out (docs/function.md#jobs) ---------------------------------------

JOB_MAX_BACKLOG_RANGE: Final = Range(10, 1_000_000)
JOB_WATCH_SECONDS_RANGE: Final = Range(1, 900)
# S3 multipart: every part but the last is at least 5 MiB; at most 10,000 parts.
S3_MIN_PART_BYTES: Final = 5 * 1024 * 1024
S3_MAX_PARTS: Final = 10_000
JOB_PART_BYTES_RANGE: Final = Range(S3_MIN_PART_BYTES, 512 * 1024 * 1024)
# Without maxBacklog, the request queue's backlog is kept under this many messages per call the endpoint
# takes at once (the route's capacity ceiling): a few seconds of work at tens of milliseconds a call.
JOB_BACKLOG_PER_SLOT: Final = 50
JOB_DEFAULT_BACKLOG: Final = 1000  # no capacity item to read (per-instance capacity): this bound
# EventBridge: what a job's end is published as, on the default bus.
JOB_EVENT_SOURCE: Final = "sqs-sagemaker-invoker"
JOB_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


class JobState(StrEnum):
    SUBMITTED = "submitted"  # the item and the input exist; the splitter has not started
    SPLITTING = "splitting"  # lines are being sent (checkpoint says how far)
    RUNNING = "running"  # every line sent or refused; waiting for them to end
    ASSEMBLING = "assembling"  # every line ended: the output is being written
    SUCCEEDED = "succeeded"  # output written, every line delivered
    PARTIALLY_FAILED = "partially_failed"  # output written, some lines failed (their reasons are in it)
    CANCELLED = "cancelled"
    FAILED = "failed"  # the job itself could not go on (input unreadable, ...): `error` says why


JOB_FINAL_STATES: Final = frozenset(
    {JobState.SUCCEEDED, JobState.PARTIALLY_FAILED, JobState.CANCELLED, JobState.FAILED}
)
JOB_EVENT_DETAIL_TYPES: Final = {
    JobState.SUCCEEDED: "Job Succeeded",
    JobState.PARTIALLY_FAILED: "Job Partially Failed",
    JobState.FAILED: "Job Failed",
}


class JoinMode(StrEnum):
    """A job's `join`: each output line carries its input line too (Batch Transform's JoinSource=Input)."""

    NONE = "none"
    INPUT = "input"


class JobAttribute:
    """The attributes of a job item (ledger table, key LEDGER_KEY_PREFIX + "job/" + job id)."""

    KEY: Final = "pk"
    JOB_ID: Final = "jobId"
    STATE: Final = "state"
    INPUT: Final = "input"  # S3 key of the input in JOB_BUCKET
    JOIN: Final = "join"
    ENDPOINT: Final = "endpoint"
    INPUT_BYTES: Final = "inputBytes"
    OFFSET: Final = "offset"  # checkpoint: bytes of the input consumed
    LINES: Final = "lines"  # checkpoint: lines read so far (the next line is lines + 1)
    TOTAL: Final = "total"  # every line, known when the split is done
    SENT: Final = "sent"  # lines sent to the request queue
    ENDED: Final = "ended"  # lines ended (delivered, dead-lettered or refused by the splitter)
    COUNTS: Final = "counts"  # outcome ("succeeded" or a reason) -> lines
    ERROR: Final = "error"
    SUBMITTED_AT: Final = "submittedAt"  # epoch ms
    STARTED_AT: Final = "startedAt"
    SPLIT_AT: Final = "splitAt"
    ENDED_AT: Final = "endedAt"
    UPDATED_AT: Final = "updatedAt"
    OUTPUT: Final = "output"  # S3 key of the output
    MANIFEST: Final = "manifest"
    EXPIRES_AT: Final = "expiresAt"


# A job request's result document up to this size stays in its ledger item (DynamoDB items hold 400 KB, the
# timeline included); a larger one is written to JOB_BUCKET at job_result_key.
JOB_INLINE_RESULT_BYTES: Final = 64 * 1024
JOB_SUCCEEDED_OUTCOME: Final = "succeeded"  # the counts' key of a delivered line; failures count by reason


def job_key(key_prefix: str, job_id: str) -> str:
    """A job's item in the ledger table, under its route's prefix (so the route's IAM scope covers it)."""
    return f"{key_prefix}job/{job_id}"


def job_request_id(job_id: str, line: int) -> str:
    return f"{job_id}:{line}"


def job_input_key(job_id: str) -> str:
    return f"jobs/{job_id}/input.jsonl"


def job_output_key(job_id: str) -> str:
    return f"jobs/{job_id}/output.jsonl"


def job_manifest_key(job_id: str) -> str:
    return f"jobs/{job_id}/manifest.json"


def job_result_key(job_id: str, line: int) -> str:
    """A job line's result document when too large to keep in its ledger item."""
    return f"jobs/{job_id}/results/{line}.json"
