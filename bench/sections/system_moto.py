"""The system section's measure of moto itself: how many messages per second its SQS takes here, so a reader
sees the endpoint, not moto, binds the drains."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import boto3

from sqs_sagemaker_invoker.local.aws import client_kwargs
from sqs_sagemaker_invoker.local.stand_ins import MotoServer

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs import SQSClient

    from bench.plan import Plan
    from bench.system_measurements import MotoBound, MotoRate


# -- moto's bound ---------------------------------------------------------------------------------------


def probe_moto(plan: Plan) -> MotoBound:
    """ReceiveMessage + DeleteMessageBatch, SendMessage and SendMessageBatch against a moto server like
    the local stack's, one call at a time from one client, each for a third of the probe's time. The queue
    is filled to the system section's depth first: moto's per-call cost grows with a queue's depth."""
    server = MotoServer(mode="process")
    server.start()
    try:
        sqs: SQSClient = boto3.client("sqs", **client_kwargs(server.url))
        url = sqs.create_queue(QueueName="bench-moto-probe")["QueueUrl"]
        body = "x" * plan.message_size
        for start in range(0, plan.system_messages, 10):
            entries = min(10, plan.system_messages - start)
            sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(entries)]
            )
        phase = plan.system_moto_probe_s / 3
        rates: list[MotoRate] = []

        def timed(call: str, one: Callable[[], int]) -> None:
            calls = messages = 0
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < phase:
                moved = one()
                calls += 1
                messages += moved
                if moved == 0:
                    break
            elapsed = time.perf_counter() - started
            rates.append(
                {
                    "call": call,
                    "calls": calls,
                    "messages": messages,
                    "seconds": round(elapsed, 3),
                    "calls_per_s": calls / elapsed if elapsed > 0 else 0.0,
                    "msgs_per_s": messages / elapsed if elapsed > 0 else 0.0,
                }
            )

        def send_one() -> int:
            sqs.send_message(QueueUrl=url, MessageBody=body)
            return 1

        def send_batch() -> int:
            sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)]
            )
            return 10

        def receive_delete() -> int:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if messages:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
            return len(messages)

        # Receives first, from the depth the drains start at; the sends then add to what is left.
        timed("ReceiveMessage (10) + DeleteMessageBatch", receive_delete)
        timed("SendMessage", send_one)
        timed("SendMessageBatch (10)", send_batch)
    finally:
        server.stop()
    return {"rates": rates}
