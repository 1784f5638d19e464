"""What the request ledger costs per message: the same batches through the function's processor with and
without it, side by side, in one run.

    python -m bench.ledger_cost                 # 40 batches of 10 per side
    python -m bench.ledger_cost --batches 3     # smoke size

DynamoDB and SQS are a moto server in its own process (real HTTP on loopback, so its CPU is not the
client's); the endpoint is the SageMaker Runtime emulator's inline endpoint at a fixed latency. Figures:
DynamoDB calls per message (the ledger's own count), wall time per batch (median), and this process's
CPU per message (the function's client side plus the in-process emulator, the same on both sides: the
difference is the ledger's). moto answers in about a millisecond, faster than DynamoDB's usual few:
the wall figure shows how the claim sits on each message's path, not DynamoDB's own latency.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import time
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import process_partial_response
from botocore.config import Config as BotoConfig
from invoker.backoff import Pacing
from invoker.config import load_config
from invoker.processor import Clients, build_processor

from sqs_sagemaker_invoker.local.aws import client_kwargs
from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec, SageMakerEmulator
from sqs_sagemaker_invoker.local.stand_ins import LambdaContext, MotoServer, sqs_event, sqs_record

ENDPOINT = "ledger-bench"
TABLE = "ledger-bench"
BATCH = 10
CONCURRENCY = 10


def _side(moto_url: str, emulator_url: str, *, ledger: bool, batches: int, seed: int) -> dict[str, Any]:
    sqs = boto3.client("sqs", **client_kwargs(moto_url))
    queue = sqs.create_queue(QueueName=f"results-{int(ledger)}")["QueueUrl"]
    dlq = sqs.create_queue(QueueName=f"dlq-{int(ledger)}")["QueueUrl"]
    env = {
        "ENDPOINT_NAME": ENDPOINT,
        "DEAD_LETTER_QUEUE_URL": dlq,
        "DEAD_LETTER_BUCKET": "bench-dead-letters",
        "RESULTS_QUEUE_URL": queue,
        "MAX_RECEIVE_COUNT": "5",
        "MAX_CONCURRENCY": str(CONCURRENCY),
    }
    pool = BotoConfig(
        max_pool_connections=CONCURRENCY + 10, retries={"mode": "standard", "total_max_attempts": 1}
    )
    dynamodb: Any = None  # a counting stand-in for the typed client
    if ledger:
        env |= {"LEDGER_TABLE": TABLE, "LEDGER_KEY_PREFIX": "bench/"}
        dynamodb = _Counting(boto3.client("dynamodb", **{**client_kwargs(moto_url), "config": pool}))
    config = load_config(env)
    runtime = boto3.client("sagemaker-runtime", **{**client_kwargs(emulator_url), "config": pool})
    processor = build_processor(
        config,
        Clients(
            runtime=runtime,
            sqs=sqs,
            s3=lambda: boto3.client("s3", **client_kwargs(moto_url)),
            ledger_dynamodb=dynamodb,
        ),
        logger=logging.getLogger("bench.ledger"),
        pacing=Pacing(random.Random(seed), sleep=time.sleep),
    )
    walls: list[float] = []
    cpu = 0.0
    for number in range(batches + 1):  # the first batch warms connections up and is not counted
        records = [
            sqs_record({"requestId": f"b{seed}-{number}-{i}", "body": {"instances": [[1, 2, 3, 4]]}})
            for i in range(BATCH)
        ]
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        response = process_partial_response(
            event=sqs_event(records),
            record_handler=processor.handle,
            processor=processor,
            context=LambdaContext.starting_now(180_000),  # type: ignore[arg-type]
        )
        wall, used = time.perf_counter() - wall_start, time.process_time() - cpu_start
        assert not response["batchItemFailures"], response
        if number:
            walls.append(wall)
            cpu += used
    calls = dynamodb.calls if dynamodb is not None else 0
    messages = batches * BATCH
    return {
        "ledger": ledger,
        "messages": messages,
        "dynamodb_calls_per_message": calls / ((batches + 1) * BATCH),
        "wall_ms_per_batch_median": 1000 * statistics.median(walls),
        "cpu_ms_per_message": 1000 * cpu / messages,
    }


class _Counting:
    """The ledger's DynamoDB client, counting its calls."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def update_item(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self._client.update_item(**kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40, help="batches of 10 per side (default 40)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the endpoint's latency")
    args = parser.parse_args(argv)
    moto = MotoServer(mode="process")
    moto.start()
    try:
        dynamodb = boto3.client("dynamodb", **client_kwargs(moto.url))
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        spec = EndpointSpec(name=ENDPOINT, container="inline", latency_ms=args.latency_ms)
        with SageMakerEmulator([spec], port=0) as emulator:
            emulator.wait_ready(ENDPOINT, timeout=30)
            # Interleaved halves, so a drift of the machine weighs on both sides alike.
            rows = []
            for round_number in range(2):
                for ledger in (False, True):
                    rows.append(
                        _side(
                            moto.url,
                            emulator.url,
                            ledger=ledger,
                            batches=max(1, args.batches // 2),
                            seed=10 * round_number + ledger,
                        )
                    )
    finally:
        moto.stop()
    summary = {}
    for ledger in (False, True):
        mine = [r for r in rows if r["ledger"] is ledger]
        summary["with_ledger" if ledger else "without_ledger"] = {
            "messages": sum(r["messages"] for r in mine),
            "dynamodb_calls_per_message": statistics.mean(r["dynamodb_calls_per_message"] for r in mine),
            "wall_ms_per_batch_median": statistics.median(r["wall_ms_per_batch_median"] for r in mine),
            "cpu_ms_per_message": statistics.mean(r["cpu_ms_per_message"] for r in mine),
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
