"""`invoker send`: envelopes to the route's request queue in SendMessageBatch calls, large payloads via S3."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from invoker.contract import SQS_MAX_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES
from invoker.envelope import MEMBERS as ENVELOPE_MEMBERS

from sqs_sagemaker_invoker.cli.envelope import Request, compact_json
from sqs_sagemaker_invoker.cli.errors import CliError, describe_aws_error

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageBatchRequestEntryTypeDef

    from sqs_sagemaker_invoker.cli.target import Route, Target

MAX_BATCH_ENTRIES = SQS_MAX_BATCH_ENTRIES
MessageFormat = Literal["envelope", "raw"]


@dataclass
class Outgoing:
    request: Request
    body: str
    attributes: dict[str, MessageAttributeValueTypeDef] = field(default_factory=dict)
    upload: tuple[str, str, bytes, str | None] | None = None  # bucket, key, data, content type

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def size(self) -> int:
        # SQS counts the body and each attribute's name, type and value against the message limit.
        size = len(self.body.encode())
        for name, value in self.attributes.items():
            size += len(name.encode()) + len(value["DataType"].encode())
            size += len(value.get("StringValue", "").encode())
            binary = value.get("BinaryValue")
            size += len(binary) if isinstance(binary, bytes | str) else 0
        return size


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (request id, why)
    unknown: list[str] = field(default_factory=list)  # the call failed: maybe sent, maybe not
    not_attempted: list[str] = field(default_factory=list)
    via_s3: int = 0
    error: str | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def split_s3_prefix(prefix: str) -> tuple[str, str]:
    bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
    return bucket, key_prefix


def plan(
    requests: Sequence[Request],
    route: Route,
    *,
    max_message_bytes: int,
    message_format: MessageFormat,
) -> list[Outgoing]:
    """The SQS messages to send; raises (naming the request) before anything is sent if one cannot go."""
    outgoing: list[Outgoing] = []
    for request in requests:
        if message_format == "raw":
            outgoing.append(_raw_message(request, max_message_bytes))
            continue
        item = Outgoing(request, request.message_body())
        if item.size() > max_message_bytes:
            item = _offload(request, route, max_message_bytes)
        outgoing.append(item)
    return outgoing


def _raw_message(request: Request, limit: int) -> Outgoing:
    envelope = request.envelope
    if "body" in envelope:
        text = compact_json(envelope["body"])
    elif "bodyText" in envelope:
        text = envelope["bodyText"]
    else:
        raise CliError(
            f"{request.source}: a raw-format message carries text only (bodyText or JSON body), not "
            f"{next(k for k in ('bodyBase64', 'bodyS3Uri') if k in envelope)}; nothing sent"
        )
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        "RequestId": {"DataType": "String", "StringValue": request.request_id}
    }
    if "body" in envelope:
        attributes["ContentType"] = {"DataType": "String", "StringValue": "application/json"}
    # Raw mode reads every InvokeEndpoint header member from the attribute named by the member.
    for key, rule in ENVELOPE_MEMBERS.items():
        if envelope.get(key):
            attributes[rule.member] = {"DataType": "String", "StringValue": envelope[key]}
    item = Outgoing(request, text, attributes)
    if item.size() > limit:
        raise CliError(
            f"{request.source}: raw message of {item.size():,} bytes is over the queue's limit of "
            f"{limit:,} bytes (raw messages cannot travel through S3); nothing sent"
        )
    return item


def _offload(request: Request, route: Route, limit: int) -> Outgoing:
    if route.payload_s3_prefix is None or request.payload is None:
        raise CliError(
            f"{request.source}: message of {request.message_size():,} bytes is over the queue's limit of "
            f"{limit:,} bytes and route {route.name} has no PayloadS3Prefix (largePayloads is off) to "
            "carry it through S3; nothing sent"
        )
    bucket, key_prefix = split_s3_prefix(route.payload_s3_prefix)
    # A random suffix: a reused request id must not overwrite a payload still waiting in the queue.
    key = f"{key_prefix}{request.request_id}.{uuid.uuid4().hex[:12]}"
    envelope = {k: v for k, v in request.envelope.items() if k not in ("body", "bodyText", "bodyBase64")}
    if "body" in request.envelope:
        envelope.setdefault("contentType", "application/json")  # what the function assumes for `body`
    envelope["bodyS3Uri"] = f"s3://{bucket}/{key}"
    item = Outgoing(
        request,
        compact_json(envelope),
        upload=(bucket, key, request.payload, envelope.get("contentType")),
    )
    if item.size() > limit:
        raise CliError(f"{request.source}: envelope too large even without its payload; nothing sent")
    return item


def batches(items: Sequence[Outgoing], *, max_entries: int) -> list[list[Outgoing]]:
    """Up to `max_entries` messages per call and at most 1 MiB in total (SendMessageBatch's limits)."""
    out: list[list[Outgoing]] = []
    current: list[Outgoing] = []
    total = 0
    for item in items:
        size = item.size()
        if current and (len(current) >= max_entries or total + size > SQS_MAX_MESSAGE_BYTES):
            out.append(current)
            current, total = [], 0
        current.append(item)
        total += size
    if current:
        out.append(current)
    return out


def queue_message_limit(target: Target, route: Route) -> int:
    attributes = target.sqs().get_queue_attributes(
        QueueUrl=route.request_queue_url, AttributeNames=["MaximumMessageSize"]
    )["Attributes"]
    return int(attributes.get("MaximumMessageSize", SQS_MAX_MESSAGE_BYTES))


def send_all(  # noqa: PLR0913 - the send command's options, one keyword each
    target: Target,
    route: Route,
    items: Sequence[Outgoing],
    *,
    group_id: str | None,
    rate: float | None,
    on_sent: Callable[[list[str]], None],
    on_progress: Callable[[int], None],
) -> SendReport:
    """Send in order; stop at the first failure and say exactly what was and was not sent."""
    sqs = target.sqs()
    s3 = target.s3()
    report = SendReport()
    max_entries = MAX_BATCH_ENTRIES if not rate else max(1, min(MAX_BATCH_ENTRIES, int(rate)))
    groups = batches(items, max_entries=max_entries)
    started = time.monotonic()
    done = 0
    for index, batch in enumerate(groups):
        try:
            if rate:
                # Pace by messages: batch k starts no earlier than (messages before it) / rate.
                wait = started + done / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            _upload(s3, batch)
        except KeyboardInterrupt:
            report.error = "interrupted"
            report.interrupted = True
            report.not_attempted = [i.request_id for b in groups[index:] for i in b]
            return report
        except (ClientError, BotoCoreError) as exc:
            report.error = f"uploading a payload to S3 failed: {describe_aws_error(exc) or exc}"
            report.not_attempted = [i.request_id for b in groups[index:] for i in b]
            return report
        entries = _entries(batch, group_id=group_id, fifo=route.fifo)
        try:
            response = sqs.send_message_batch(QueueUrl=route.request_queue_url, Entries=entries)
        except KeyboardInterrupt:
            # Ctrl-C during the call: SQS may or may not have taken this batch.
            report.error = "interrupted"
            report.interrupted = True
            report.unknown.extend(i.request_id for i in batch)
            report.not_attempted = [i.request_id for b in groups[index + 1 :] for i in b]
            return report
        except (ClientError, BotoCoreError) as exc:
            _call_failed(report, exc, batch)
            report.not_attempted = [i.request_id for b in groups[index + 1 :] for i in b]
            return report
        ok = {entry["Id"] for entry in response.get("Successful", [])}
        sent_now = [item.request_id for position, item in enumerate(batch) if str(position) in ok]
        report.sent.extend(sent_now)
        report.via_s3 += sum(1 for position, item in enumerate(batch) if str(position) in ok and item.upload)
        on_sent(sent_now)
        done += len(batch)
        on_progress(len(batch))
        failures = response.get("Failed", [])
        if failures or len(ok) != len(batch):
            why = {f["Id"]: f"{f.get('Code', 'error')}: {f.get('Message', '')}".strip() for f in failures}
            for position, item in enumerate(batch):
                if str(position) not in ok:
                    report.failed.append((item.request_id, why.get(str(position), "not in the response")))
            report.error = f"SendMessageBatch refused {len(batch) - len(ok)} of {len(batch)} messages"
            report.not_attempted = [i.request_id for b in groups[index + 1 :] for i in b]
            return report
    return report


def _upload(s3: S3Client, batch: list[Outgoing]) -> None:
    for item in batch:
        if item.upload is not None:
            bucket, key, data, content_type = item.upload
            extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
            s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)


def _entries(
    batch: list[Outgoing], *, group_id: str | None, fifo: bool
) -> list[SendMessageBatchRequestEntryTypeDef]:
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    for position, item in enumerate(batch):
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(position), "MessageBody": item.body}
        if item.attributes:
            entry["MessageAttributes"] = item.attributes
        if group_id is not None:
            entry["MessageGroupId"] = group_id
        if fifo:
            # The request id is the deduplication id: resending the same request within 5 minutes is a
            # no-op instead of a duplicate.
            entry["MessageDeduplicationId"] = item.request_id
        entries.append(entry)
    return entries


def _call_failed(report: SendReport, exc: ClientError | BotoCoreError, batch: list[Outgoing]) -> None:
    report.error = f"SendMessageBatch failed: {describe_aws_error(exc) or exc}"
    status = (
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if isinstance(exc, ClientError)
        else 0
    )
    if isinstance(exc, ClientError) and 400 <= status < 500:
        # The service refused the call as a whole: none of its messages were sent.
        report.failed.extend((i.request_id, report.error) for i in batch)
    else:
        # A server error or a lost connection: SQS may or may not have taken them.
        report.unknown.extend(i.request_id for i in batch)
