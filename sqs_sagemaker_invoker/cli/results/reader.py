"""`invoker results`: the results queue as JSON Lines; a message is deleted only after its line is written.

Messages that do not match the requested ids are held (kept invisible) while the command runs, so one
run does not read them over and over, and are made visible again (visibility 0) before it ends.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sqs_sagemaker_invoker.cli.envelope import compact_json
from sqs_sagemaker_invoker.cli.errors import CliError, describe_aws_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from sqs_sagemaker_invoker.cli.target import Route, Target

MAX_RECEIVE = 10


def is_json_content_type(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def inline_body(data: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as the function would have put it in the document (body, bodyText or bodyBase64)."""
    if is_json_content_type(content_type):
        with contextlib.suppress(ValueError):
            return {"body": json.loads(data)}
    try:
        return {"bodyText": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"bodyBase64": base64.b64encode(data).decode("ascii")}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return bucket, key


@dataclass
class ResultsRun:
    written: int = 0
    matched_ids: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)  # message id -> latest receipt handle
    seen: set[str] = field(default_factory=set)
    undeleted: list[str] = field(default_factory=list)
    fetch_errors: list[str] = field(default_factory=list)
    interrupted: bool = False


class ResultsReader:
    def __init__(  # noqa: PLR0913 - the results command's options, one keyword each
        self,
        target: Target,
        route: Route,
        out: IO[str],
        *,
        wanted: set[str] | None,
        fetch: bool,
        visibility_timeout: int,
        note: Callable[[str], None],
    ) -> None:
        if route.results_queue_url is None:
            raise CliError(
                f"route {route.name} has no results queue (ResultsQueueUrl); its results are objects "
                f"in s3://{route.results_bucket}/results/"
                if route.results_bucket
                else f"route {route.name} has no results queue and no results bucket (results discarded)"
            )
        self.target = target
        self.queue_url = route.results_queue_url
        self.sqs: SQSClient = target.sqs()
        self.out = out
        self.wanted = wanted
        self.fetch = fetch
        self.visibility_timeout = visibility_timeout
        self.note = note
        self.run = ResultsRun()

    @property
    def pending(self) -> set[str]:
        return (self.wanted or set()) - self.run.matched_ids

    def read(
        self, *, follow: bool, wait_seconds: int, timeout: float | None, limit: int | None
    ) -> ResultsRun:
        deadline = time.monotonic() + timeout if timeout else None
        try:
            while True:
                if limit is not None and self.run.written >= limit:
                    break
                if self.wanted is not None and not self.pending:
                    break
                remaining = deadline - time.monotonic() if deadline is not None else None
                if remaining is not None and remaining <= 0:
                    break
                wait = wait_seconds if remaining is None else max(0, min(wait_seconds, int(remaining)))
                batch = min(MAX_RECEIVE, limit - self.run.written) if limit is not None else MAX_RECEIVE
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=batch,
                    WaitTimeSeconds=wait,
                    VisibilityTimeout=self.visibility_timeout,
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
                fresh = self._handle(messages)
                if not fresh and not follow:
                    break  # drained: nothing new was visible during a long poll
        except KeyboardInterrupt:
            # Ctrl-C is how a plain --follow ends: what was written stays written (and deleted).
            self.run.interrupted = True
        finally:
            self._release_held()
        return self.run

    def _handle(self, messages: list[MessageTypeDef]) -> int:
        to_delete: list[tuple[str, str]] = []
        fresh = 0
        for message in messages:
            message_id = message["MessageId"]
            handle = message["ReceiptHandle"]
            fresh += message_id not in self.run.seen
            # Held until deleted: if anything below fails, the message is made visible again at the end.
            self.run.held[message_id] = handle
        for message in messages:
            message_id = message["MessageId"]
            if message_id in self.run.seen:
                continue  # came back after its hold expired: held again above
            self.run.seen.add(message_id)
            handle = message["ReceiptHandle"]
            document = self._document(message)
            request_id = document.get("requestId") if isinstance(document, dict) else None
            if self.wanted is not None and request_id not in self.wanted:
                continue
            if self.fetch and isinstance(document, dict) and isinstance(document.get("bodyS3Uri"), str):
                try:
                    document = self._fetched(document)
                except (ClientError, BotoCoreError, ValueError) as exc:
                    detail = describe_aws_error(exc) or str(exc)
                    self.note(
                        f"result {request_id}: cannot fetch {document['bodyS3Uri']}: {detail}; left on the queue"
                    )
                    self.run.fetch_errors.append(str(request_id))
                    continue
            self.out.write(compact_json(document) + "\n")
            self.run.written += 1
            if isinstance(request_id, str):
                self.run.matched_ids.add(request_id)
            to_delete.append((message_id, handle))
        if to_delete:
            self._flush()
            self._delete(to_delete)
        return fresh

    def _document(self, message: MessageTypeDef) -> Any:
        body = message.get("Body", "")
        try:
            return json.loads(body)
        except ValueError:
            # Not the function's output; keep it visible in the output rather than dropping it.
            return {"messageId": message["MessageId"], "raw": body}

    def _fetched(self, document: dict[str, Any]) -> dict[str, Any]:
        bucket, key = parse_s3_uri(document["bodyS3Uri"])
        data = self.target.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        merged = {k: v for k, v in document.items() if k not in ("body", "bodyText", "bodyBase64")}
        merged.update(inline_body(data, document.get("contentType")))
        return merged

    def _flush(self) -> None:
        # The lines must be on disk before the messages are gone from the queue.
        self.out.flush()
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if not self.out.isatty():
                os.fsync(self.out.fileno())

    def _delete(self, items: list[tuple[str, str]]) -> None:
        for start in range(0, len(items), MAX_RECEIVE):
            chunk = items[start : start + MAX_RECEIVE]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, (_, handle) in enumerate(chunk)],
            )
            failed = {int(failure["Id"]): failure for failure in response.get("Failed", [])}
            for index, (message_id, _) in enumerate(chunk):
                if index in failed:
                    self.run.undeleted.append(message_id)
                    code = failed[index].get("Code")
                    self.note(
                        f"message {message_id} was written but not deleted ({code}); it will be read again"
                    )
                else:
                    self.run.held.pop(message_id, None)

    def _release_held(self) -> None:
        release_messages(self.sqs, self.queue_url, list(self.run.held.values()))


def release_messages(sqs: SQSClient, queue_url: str, handles: list[str]) -> None:
    """Make held messages visible again at once (ChangeMessageVisibility 0), best effort."""
    for start in range(0, len(handles), MAX_RECEIVE):
        chunk = handles[start : start + MAX_RECEIVE]
        # A failure here only delays the messages until their visibility timeout ends.
        with contextlib.suppress(ClientError, BotoCoreError):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)
                ],
            )
