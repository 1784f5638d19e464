"""What one benchmark run measured: the document written to raw/results.json, section by section.

The sections (bench.sections) build these; bench.analysis, bench.targets, bench.scale_model and the report
(bench.report) read them. They are TypedDicts because the document is JSON: `--report-only` reads the
same shapes back from the file."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, cast, final

from bench.plan import Plan

if TYPE_CHECKING:
    from pathlib import Path

    from bench.system_measurements import SystemSection

Side = Literal["invoker", "baseline", "bare"]


class MachineInfo(TypedDict):
    date: str
    cpu_model: str
    cores: int | None
    arch: str
    kernel: str
    python: str
    boto3: str
    botocore: str
    aws_lambda_powertools: str
    moto: str
    py_spy: str
    load_average_start: list[float] | None


class Calibration(TypedDict):
    """One bare boto3 loop at 0 ms, per call."""

    calls: int
    cpu_ms_per_call: float
    user_ms_per_call: float
    sys_ms_per_call: float
    wall_ms_per_call: float


class BatchSummary(TypedDict):
    """A handler's repetitions of one batch (bench.sections.measure.summarize)."""

    messages: int
    reps: int
    wall_s: float
    wall_s_min: float
    wall_s_max: float
    msgs_per_s: float
    cpu_s: float
    cpu_ms_per_msg: float
    user_s: float
    sys_s: float
    failures: int
    metrics: dict[str, int]
    log_bytes_per_msg: float
    concurrency_limit_min: int | None
    involuntary_switches_per_msg: float
    invocation_latency_ms_median: float | None


class Measurement(BatchSummary):
    """A batch summary checked against the endpoint's counters, with the servers' CPU over it."""

    lost: int
    endpoint_throttled: int
    server_cpu_util: dict[str, float]
    kind: str


class ThroughputRow(Measurement):
    side: Side
    concurrency: int
    latency_ms: int
    # Invoker-only points at the extra latencies (the latency chart), not in the main table.
    extra: NotRequired[bool]
    # The textbook handler ran `measured_messages` and its wall time was scaled to `messages`.
    extrapolated: NotRequired[bool]
    measured_messages: NotRequired[int]


def throughput_row(measured: Measurement, *, side: Side, concurrency: int, latency_ms: int) -> ThroughputRow:
    """The measurement with a throughput row's keys appended (in this order in raw/results.json)."""
    # A cast, not `{**measured, ...}`: mypy's strict checks refuse that for a type with optional keys.
    row = cast("ThroughputRow", {**measured})
    row["side"] = side
    row["concurrency"] = concurrency
    row["latency_ms"] = latency_ms
    return row


class DeliveryRow(ThroughputRow):
    mode: Literal["discard", "deliver"]
    results_expected: NotRequired[int]
    results_on_queue: NotRequired[int]


class CpuRow(TypedDict):
    """One configuration of the CPU section: medians over the rounds."""

    side: Side
    label: str
    concurrency: int
    per_message_logs: bool
    threads: int
    messages: int
    rounds: int
    cpu_ms_per_msg: float
    cpu_ms_per_msg_all: list[float]
    vs_bare: float
    vs_bare_threads: float
    wall_s: float
    user_s: float
    sys_s: float
    log_bytes_per_msg: float
    involuntary_switches_per_msg: float
    failures: int
    lost: int
    msgs_per_s: float
    metrics: NotRequired[dict[str, int]]


class CpuSection(TypedDict):
    rows: list[CpuRow]


class MatrixSection(TypedDict):
    rows: list[ThroughputRow]


class SkippedPoint(TypedDict):
    concurrency: int
    latency_ms: int
    ideal_s: float


class SweepSection(TypedDict):
    rows: list[ThroughputRow]
    skipped: list[SkippedPoint]


class MotoSendTiming(TypedDict):
    queue_depth: int
    send_batch_ms: float


class MotoProbe(TypedDict):
    send_message_batch: list[MotoSendTiming]


class DeliverySection(TypedDict):
    rows: list[DeliveryRow]
    moto_probe: MotoProbe


class RoundTripRow(DeliveryRow):
    """One run of the round-trip section: results discarded, or delivered to the slow SQS stand-in with
    `sends_in_flight` SendMessageBatch calls allowed per queue."""

    sends_in_flight: int | None
    sqs_calls: int
    most_calls_in_flight: int
    duplicates: int
    other_sqs_calls: dict[str, int]


class RoundTripSection(TypedDict):
    sqs_round_trip_ms: int
    rows: list[RoundTripRow]


class ThrottlingRun(TypedDict):
    """The event source mapping's loop over one batch, until every message is acknowledged."""

    handler_wall_s: float
    first_round_wall_s: float
    cpu_s: float
    rounds: int
    retried: int
    reattempts: int
    invocations: int
    succeeded: int
    dead_lettered: int
    pending: int
    acknowledged: int
    lost: int
    endpoint_requests: int
    endpoint_throttled: int
    endpoint_ok: int
    concurrency_limit_min: int | None
    backoff_wait_s: float


class ThrottlingSection(TypedDict):
    capacity: int
    latency_ms: int
    messages: int
    over: int
    right: int
    # By MAX_CONCURRENCY, as a string (JSON keys are strings).
    runs: dict[str, list[ThrottlingRun]]


class MemoryRow(TypedDict):
    side: Side
    messages: int
    message_size: int
    maxrss_after_import_mb: float
    maxrss_mb: float
    lost: int
    failures: int


class MemorySection(TypedDict):
    rows: list[MemoryRow]


class ProbeRun(TypedDict):
    """One fresh interpreter (bench/probes/cold_import.py), and its spawn-to-exit time."""

    import_s: float
    import_cpu_s: float
    maxrss_mb: float
    process_s: float


class ColdProbe(TypedDict):
    """Medians over the runs of one statement."""

    import_s: float
    import_cpu_s: float
    process_s: float
    maxrss_mb: float
    import_s_all: list[float]


class ColdProfileRow(TypedDict):
    function: str
    ms: float
    percent: float


class ColdProfile(TypedDict, total=False):
    """bench/probes/cold_profile.py's answer, or its stderr if it failed."""

    total_ms: float
    rows: list[ColdProfileRow]
    error: str


ColdStatement = Literal["bare_import", "invoker", "baseline", "one_client", "floor"]
COLD_STATEMENTS: tuple[ColdStatement, ...] = ("bare_import", "invoker", "baseline", "one_client", "floor")


class ColdStartSection(TypedDict):
    runs: int
    statements: dict[ColdStatement, str]
    bare_import: ColdProbe
    invoker: ColdProbe
    baseline: ColdProbe
    one_client: ColdProbe
    floor: ColdProbe
    profile: ColdProfile


class Share(TypedDict):
    name: str
    samples: int
    percent: float


class ProfileSummary(TypedDict):
    """py-spy samples inside `lambda_handler` (bench.profiling.summarize_collapsed)."""

    samples: int
    samples_outside_handler: int
    self_by_function: list[Share]
    inclusive_by_function: list[Share]
    self_by_package: list[Share]


@final
class ProfileSection(ProfileSummary):
    concurrency: int
    messages: int
    reps: int
    cpu_ms_per_msg_while_profiled: float


@final
class ProfileSkipped(TypedDict):
    skipped: str


class Sections(TypedDict, total=False):
    """Only the sections that ran (`--only`); the calibration always runs, at the start and the end."""

    calibration: list[Calibration]
    cpu: CpuSection
    matrix: MatrixSection
    sweep: SweepSection
    delivery: DeliverySection
    round_trip: RoundTripSection
    throttling: ThrottlingSection
    memory: MemorySection
    cold_start: ColdStartSection
    profile: ProfileSection | ProfileSkipped
    system: SystemSection


@dataclass
class BenchRun:
    """One run: how it was started, on what, with which plan, and what each section measured."""

    command: str
    machine: MachineInfo
    plan: Plan
    raw_path: str
    sections: Sections = field(default_factory=Sections)
    layout: str = ""
    elapsed_s: float = 0.0
    load_average_end: list[float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "machine": self.machine,
            "plan": dataclasses.asdict(self.plan),
            "sections": self.sections,
            "raw_path": self.raw_path,
            "layout": self.layout,
            "elapsed_s": self.elapsed_s,
            "load_average_end": self.load_average_end,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1, default=str))

    @classmethod
    def read(cls, path: Path) -> BenchRun:
        """A run written by `write` (our own file: its shapes are the ones above)."""
        doc = json.loads(path.read_text())
        return cls(
            command=doc["command"],
            machine=cast("MachineInfo", doc["machine"]),
            plan=Plan.from_record(doc["plan"]),
            raw_path=doc.get("raw_path", "bench/results/raw/results.json"),
            sections=cast("Sections", doc["sections"]),
            layout=doc["layout"],
            elapsed_s=doc["elapsed_s"],
            load_average_end=doc["load_average_end"],
        )
