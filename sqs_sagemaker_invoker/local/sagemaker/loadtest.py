"""Measure the emulator's throughput: N client threads calling InvokeEndpoint for a few seconds.

    python -m sqs_sagemaker_invoker.local.sagemaker.loadtest --container inline --threads 32 --seconds 5
    python -m sqs_sagemaker_invoker.local.sagemaker.loadtest --container echo --client raw --emulator process

--client boto3 is what the function does (about 1 ms of client CPU per call, so on a small machine the
client is the limit); --client raw replays one pre-signed request over http.client keep-alive connections
to find the emulator's own limit. --emulator process runs the emulator in a child process (its own GIL),
inprocess shares this interpreter with the client.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from sqs_sagemaker_invoker.local.sagemaker.emulator import SageMakerEmulator
from sqs_sagemaker_invoker.local.sagemaker.process import EmulatorProcess
from sqs_sagemaker_invoker.local.sagemaker.spec import EndpointSpec
from sqs_sagemaker_invoker.local.sagemaker.testing import runtime_client

if TYPE_CHECKING:
    from collections.abc import Callable

NAME = "loadtest"
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()


def _boto3_caller(url: str, threads: int) -> Callable[[], bool]:
    client = runtime_client(
        url, Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=threads)
    )

    def call() -> bool:
        try:
            client.invoke_endpoint(EndpointName=NAME, Body=BODY, ContentType="application/json")[
                "Body"
            ].read()
        except ClientError:
            return False
        return True

    return call


def _raw_caller(url: str) -> Callable[[], bool]:
    # One signed request replayed (valid for the 15 minutes of allowed clock skew).
    request = AWSRequest(
        "POST", f"{url}/endpoints/{NAME}/invocations", data=BODY, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials("testing", "testing"), "sagemaker", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    host, port = url.removeprefix("http://").split(":")
    local = threading.local()

    def call() -> bool:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        conn.request("POST", f"/endpoints/{NAME}/invocations", BODY, headers)
        response = conn.getresponse()
        response.read()
        return response.status == 200

    return call


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = EndpointSpec(
        NAME,
        container=args.container,
        latency_ms=args.latency_ms,
        capacity=max(64, args.threads),
        record_requests=False,
    )
    emulator: SageMakerEmulator | EmulatorProcess = (
        EmulatorProcess([spec]) if args.emulator == "process" else SageMakerEmulator([spec])
    )
    with emulator:
        emulator.wait_ready(NAME, timeout=120)
        call = (
            _boto3_caller(emulator.url, args.threads) if args.client == "boto3" else _raw_caller(emulator.url)
        )
        call()  # warm up
        ok = [0] * args.threads
        failed = [0] * args.threads
        stop_at = time.monotonic() + args.seconds

        def worker(index: int) -> None:
            while time.monotonic() < stop_at:
                if call():
                    ok[index] += 1
                else:
                    failed[index] += 1

        workers = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
        started = time.monotonic()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        elapsed = time.monotonic() - started
    return {
        "container": args.container,
        "client": args.client,
        "emulator": args.emulator,
        "threads": args.threads,
        "latency_ms": args.latency_ms,
        "seconds": round(elapsed, 2),
        "ok": sum(ok),
        "failed": sum(failed),
        "requests_per_s": round(sum(ok) / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sqs_sagemaker_invoker.local.sagemaker.loadtest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--container", choices=("inline", "echo", "sklearn"), default="inline")
    parser.add_argument("--client", choices=("boto3", "raw"), default="boto3")
    parser.add_argument("--emulator", choices=("process", "inprocess"), default="process")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    print(json.dumps(run(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
