"""One benchmark run: the stack up, the bare-boto3 calibration, the chosen sections in order, the
calibration again, and raw/results.json rewritten after every section (a failed run keeps what it had)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bench.machine import load_average, machine_info
from bench.measurements import BenchRun
from bench.sections import (
    client_cpu,
    delivery,
    footprint,
    profile,
    round_trip,
    system,
    throttling,
    throughput,
)
from bench.sections.measure import Session
from bench.stack import ROOT, BenchStack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bench.plan import Plan

SECTIONS = (
    "cpu",
    "matrix",
    "sweep",
    "delivery",
    "round_trip",
    "throttling",
    "memory",
    "cold_start",
    "profile",
    "system",
)


def run_benchmark(
    plan: Plan, only: list[str], raw: Path, command: str, progress: Callable[[str], None]
) -> BenchRun:
    raw.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    raw_path = raw / "results.json"
    run = BenchRun(
        command=command,
        machine=machine_info(),
        plan=plan,
        raw_path=str(raw_path.relative_to(ROOT)) if raw_path.is_relative_to(ROOT) else str(raw_path),
    )

    def save() -> None:
        run.elapsed_s = time.monotonic() - started
        run.load_average_end = load_average()
        run.write(raw_path)

    with BenchStack(raw) as stack:
        run.layout = stack.layout.note
        progress(f"servers up ({stack.layout.note})")
        session = Session(stack, plan, progress)
        sections = run.sections
        sections["calibration"] = [client_cpu.calibrate(session)]
        for name in SECTIONS:
            if name not in only:
                continue
            progress(f"section {name}")
            if name == "cpu":
                sections["cpu"] = client_cpu.run(session)
            elif name == "matrix":
                sections["matrix"] = throughput.matrix(session)
            elif name == "sweep":
                sections["sweep"] = throughput.sweep(session)
            elif name == "delivery":
                sections["delivery"] = delivery.run(session)
            elif name == "round_trip":
                sections["round_trip"] = round_trip.run(session)
            elif name == "throttling":
                sections["throttling"] = throttling.run(session)
            elif name == "memory":
                sections["memory"] = footprint.memory(session)
            elif name == "cold_start":
                sections["cold_start"] = footprint.cold_start(session)
            elif name == "profile":
                sections["profile"] = profile.run(session)
            elif name == "system":
                sections["system"] = system.run(session)
            save()
        sections["calibration"].append(client_cpu.calibrate(session))
    save()
    return run
