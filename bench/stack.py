"""The benchmark's processes: a moto server and the SageMaker Runtime emulator on the server CPU(s), and
Lambda instances (bench.instances) on the client CPU. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from invoker.contract import Env

from bench.instances import LambdaInstance
from bench.messages import ENDPOINT_NAME, QUEUE_NAME, REGION
from sqs_sagemaker_invoker.local.sagemaker import EmulatorProcess, EndpointSpec, FaultSpec
from sqs_sagemaker_invoker.local.stand_ins import MotoServer

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

ROOT = Path(__file__).resolve().parents[1]
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Room for the widest concurrency sweep: throughput runs must never be throttled by the endpoint.
ENDPOINT_CAPACITY = 1024


@dataclass(frozen=True)
class CpuLayout:
    """Client (the Lambda instance) on one CPU, servers and this driver on the others."""

    client: frozenset[int]
    servers: frozenset[int]
    pinned: bool
    note: str

    @classmethod
    def detect(cls) -> CpuLayout:
        if not hasattr(os, "sched_getaffinity"):
            return cls(
                frozenset(), frozenset(), False, "no sched_setaffinity on this OS: processes not pinned"
            )
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            one = frozenset(cpus)
            return cls(one, one, False, "one CPU only: client and servers share it")
        return cls(
            frozenset(cpus[:1]),
            frozenset(cpus[1:]),
            True,
            f"client pinned to CPU {cpus[0]}; emulator, moto and driver to CPU(s) {','.join(map(str, cpus[1:]))}",
        )


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc; 0.0 where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def base_environment() -> dict[str, str]:
    """Dummy credentials and no AWS configuration files: nothing here may reach AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # the emulator's SigV4 verifier expects these
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT), str(ROOT / "functions"), env.get("PYTHONPATH")) if p
        ),
    )
    return env


@dataclass
class Queues:
    requests: str
    dlq: str


@dataclass
class BenchStack:
    raw_dir: Path
    layout: CpuLayout = field(default_factory=CpuLayout.detect)
    env: dict[str, str] = field(default_factory=base_environment)

    def __post_init__(self) -> None:
        self.moto: MotoServer | None = None
        self.emulator: EmulatorProcess | None = None
        self.queues: Queues | None = None
        self._sqs: SQSClient | None = None
        self._instances = 0

    def __enter__(self) -> BenchStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.layout.pinned:
            # The servers inherit this: they never run on the client's CPU.
            os.sched_setaffinity(0, self.layout.servers)
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("AWS_")})
        try:
            self.moto = MotoServer(mode="process").start()
            self.emulator = EmulatorProcess(
                [
                    EndpointSpec(
                        ENDPOINT_NAME, container="inline", capacity=ENDPOINT_CAPACITY, record_requests=False
                    )
                ]
            ).start()
            self.emulator.wait_ready(ENDPOINT_NAME, timeout=60)
            self.env["AWS_ENDPOINT_URL_SQS"] = self.moto.url
            self.env["AWS_ENDPOINT_URL_S3"] = self.moto.url
            self.env["AWS_ENDPOINT_URL"] = self.moto.url  # anything else goes to moto, never to AWS
            self.env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.emulator.url
            self._sqs = boto3.client("sqs", endpoint_url=self.moto.url, region_name=REGION)
            self.queues = Queues(requests=self.create_queue(QUEUE_NAME), dlq=self.create_queue("bench-dlq"))
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    # -- AWS side --------------------------------------------------------------------------------------
    @property
    def sqs(self) -> SQSClient:
        assert self._sqs is not None, "the stack is not started"
        return self._sqs

    def create_queue(self, name: str) -> str:
        return self.sqs.create_queue(QueueName=name)["QueueUrl"]

    def queue_depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    # -- endpoint --------------------------------------------------------------------------------------
    def set_endpoint(self, latency_ms: float, capacity: int | None = None) -> None:
        assert self.emulator is not None
        self.emulator.set_faults(ENDPOINT_NAME, FaultSpec(latency_ms=latency_ms, capacity=capacity))

    def endpoint_stats(self) -> dict[str, int]:
        assert self.emulator is not None
        return self.emulator.stats(ENDPOINT_NAME)

    def server_cpu(self) -> dict[str, float]:
        out = {}
        if self.emulator is not None and self.emulator.pid is not None:
            out["emulator"] = process_cpu_seconds(self.emulator.pid)
        if self.moto is not None and self.moto.pid is not None:
            out["moto"] = process_cpu_seconds(self.moto.pid)
        return out

    # -- Lambda instances ------------------------------------------------------------------------------
    def function_env(
        self, *, concurrency: int, results_queue_url: str | None = None, **extra: str
    ) -> dict[str, str]:
        assert self.queues is not None
        env = {
            Env.ENDPOINT_NAME: ENDPOINT_NAME,
            Env.DEAD_LETTER_QUEUE_URL: self.queues.dlq,
            # Required setting; benchmark messages are small, so no letter ever needs the bucket.
            Env.DEAD_LETTER_BUCKET: "invoker-bench-dead-letters",
            Env.MAX_RECEIVE_COUNT: "10",
            Env.MAX_CONCURRENCY: str(concurrency),
            Env.SERVICE_NAME: "invoker-bench",
            Env.METRICS_NAMESPACE: "InvokerBench",
        }
        if results_queue_url is None:
            env[Env.RESULTS_MODE] = "discard"
        else:
            env[Env.RESULTS_MODE] = "deliver"
            env[Env.RESULTS_QUEUE_URL] = results_queue_url
        env.update(extra)
        return env

    def instance(
        self,
        kind: str,
        function_env: dict[str, str] | None = None,
        label: str = "",
        wrapper: list[str] | None = None,
    ) -> LambdaInstance:
        self._instances += 1
        name = f"{self._instances:03d}-{kind}{'-' + label if label else ''}"
        env = {**self.env, **(function_env or {Env.ENDPOINT_NAME: ENDPOINT_NAME})}
        return LambdaInstance(
            kind, env, self.layout.client, self.raw_dir / "logs", name, cwd=ROOT, wrapper=wrapper
        )
