"""What the local-stack tests drive: a toy Lambda handler whose behaviour each message chooses, its queue,
and a collector of the whole local stack's outcomes. The fixtures are in tests/integration/local/conftest.py."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.polling import wait_for

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.local.stack import LocalStack
    from sqs_sagemaker_invoker.local.worker import FunctionSpec

# A handler whose behaviour each message's body chooses (JSON), so one module covers every ESM rule.
# It appends what it saw to $TOY_STATE/events.jsonl; a command with "once": KEY acts on its first
# delivery only (a marker file in $TOY_STATE), so that a redelivered message then succeeds.
TOY_HANDLER = textwrap.dedent(
    """
    import json, os, signal, time
    import boto3

    STATE = os.environ["TOY_STATE"]
    INVOCATIONS = 0  # module state: survives across warm invocations
    SQS = boto3.client("sqs")

    def _once(key):
        path = os.path.join(STATE, "once-" + key)
        if os.path.exists(path):
            return False
        open(path, "w").close()
        return True

    def handler(event, context):
        global INVOCATIONS
        INVOCATIONS += 1
        records = event["Records"]
        with open(os.path.join(STATE, "events.jsonl"), "a") as out:
            out.write(json.dumps({"pid": os.getpid(), "invocation": INVOCATIONS, "event": event,
                                  "remaining_ms": context.get_remaining_time_in_millis(),
                                  "function_name": context.function_name,
                                  "started": time.time()}) + "\\n")
        print(json.dumps({"level": "INFO", "message": "toy batch", "size": len(records)}))
        print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
            {"Namespace": "Toy", "Dimensions": [["service"]],
             "Metrics": [{"Name": "Records", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}]}]},
            "service": "toy", "Records": len(records), "Latency": [1.5, 2.5]}))
        failures = []
        respond = None
        for record in records:
            try:
                command = json.loads(record["body"])
            except ValueError:
                command = {}
            if not isinstance(command, dict):
                command = {}
            if command.get("once") and not _once(command["once"]):
                command = {}  # a "once" action happens on the first delivery only
            if "sleep" in command:
                time.sleep(command["sleep"])
            if command.get("crash"):
                os.kill(os.getpid(), signal.SIGKILL)
            if "raise" in command:
                raise RuntimeError(command["raise"])
            if "visibility" in command:
                queue_url = command["queue_url"]
                SQS.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"],
                                              VisibilityTimeout=command["visibility"])
                failures.append({"itemIdentifier": record["messageId"]})
            if command.get("fail"):
                failures.append({"itemIdentifier": record["messageId"]})
            if "respond" in command:
                respond = command["respond"]
        if respond is not None:
            return respond["value"]
        return {"batchItemFailures": failures}
    """
)


def toy_events(function: FunctionSpec) -> list[dict[str, Any]]:
    path = Path(function.environment["TOY_STATE"]) / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@dataclass
class ToyQueue:
    sqs: SQSClient
    url: str
    arn: str

    def send(self, body: Any, **kwargs: Any) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return self.sqs.send_message(QueueUrl=self.url, MessageBody=text, **kwargs)["MessageId"]

    def send_many(self, bodies: list[Any], **kwargs: Any) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(i), "MessageBody": b if isinstance(b, str) else json.dumps(b), **kwargs}
                for i, b in enumerate(bodies[start : start + 10])
            ]
            response = self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)  # type: ignore[arg-type]
            if response.get("Failed"):
                raise RuntimeError(f"SendMessageBatch failed: {response['Failed']}")
            ordered = sorted(response["Successful"], key=lambda e: int(e["Id"]))
            ids.extend(e["MessageId"] for e in ordered)
        return ids

    def counts(self) -> tuple[int, int]:
        """(visible, in flight)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


# -- the whole local stack ------------------------------------------------------------------------


@dataclass
class Outcome:
    place: str  # "result" or "dlq"
    request_id: str
    message_id: str
    document: dict[str, Any]  # the result document, or the DLQ message's attributes (string values)
    body: str  # the raw message body


class OutcomeCollector:
    """Drains every route's results queue and DLQ in the background, keeping outcomes by request id."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.outcomes: dict[str, list[Outcome]] = {}
        self.order: dict[str, list[str]] = {}  # route -> request ids in the order results were read
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outcome-collector", daemon=True)

    def start(self) -> OutcomeCollector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        sqs = self.stack.sqs()
        while not self._stop.is_set():
            busy = False
            for name, route in self.stack.routes.items():
                try:
                    if route.results_queue_url:
                        busy |= self._drain(sqs, name, route.results_queue_url, "result")
                    busy |= self._drain(sqs, name, route.dead_letter_queue_url, "dlq")
                except Exception as exc:  # keep collecting; wait() reports it
                    self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            if not busy:
                self._stop.wait(0.1)

    def _drain(self, sqs: SQSClient, route: str, url: str, place: str) -> bool:
        try:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=30
            ).get("Messages", [])
        except Exception:
            if self._stop.is_set():
                return False
            raise
        for message in messages:
            if place == "result":
                document = json.loads(message["Body"])
                request_id, message_id = document["requestId"], document["messageId"]
            else:
                document = {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()}
                message_id = document.get("invoker.message_id") or message["MessageId"]
                request_id = document.get("invoker.request_id") or message_id
            with self._lock:
                self.outcomes.setdefault(request_id, []).append(
                    Outcome(place, request_id, message_id, document, message["Body"])
                )
                if place == "result":
                    self.order.setdefault(route, []).append(request_id)
        if messages:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return bool(messages)

    def get(self, request_id: str) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes.get(request_id, []))

    def wait(self, request_ids: list[str], timeout: float = 30.0) -> dict[str, Outcome]:
        """The first outcome of each request, once all have one."""

        def missing() -> list[str]:
            return [r for r in request_ids if not self.get(r)]

        try:
            wait_for(lambda: not missing(), timeout=timeout, what="outcomes")
        except AssertionError:
            raise AssertionError(
                f"no outcome for {missing()[:5]}; collector errors: {self.errors[-3:]}"
            ) from None
        return {r: self.get(r)[0] for r in request_ids}


def function_log_records(stack: LocalStack, route: str) -> list[dict[str, Any]]:
    """The function's JSON log lines, read back from the local CloudWatch Logs."""
    assert_true(stack.telemetry is not None and stack.telemetry.flush(), "telemetry flushed")
    logs = stack.logs()
    group = f"/aws/lambda/{stack.route(route).function_name}"
    records: list[dict[str, Any]] = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )
        for event in events["events"]:
            if event["message"].startswith("{"):
                try:
                    records.append(json.loads(event["message"]))
                except ValueError:
                    continue
    return records


def assert_true(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def send_envelopes(
    stack: LocalStack,
    route: str,
    envelopes: list[dict[str, Any]],
    group_of: Callable[[dict[str, Any]], str] | None = None,
) -> list[str]:
    """Send one message per envelope, in order; ``group_of`` gives a FIFO message group."""
    sqs = stack.sqs()
    url = stack.route(route).request_queue_url
    ids: list[str] = []
    for envelope in envelopes:
        body = json.dumps(envelope)
        if group_of is None:
            ids.append(sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"])
        else:
            ids.append(
                sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group_of(envelope))[
                    "MessageId"
                ]
            )
    return ids
