"""RESULTS.md: the machine, the targets, what the numbers include, then one part per section (the modules
beside this one) and the charts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import analysis
from bench.report import client_cpu, footprint, round_trip, scale, system, throttling, throughput
from bench.report.charts import CONCURRENCY_CHART, LATENCY_CHART
from bench.report.table import table, verdict
from bench.targets import targets

if TYPE_CHECKING:
    from pathlib import Path

    from bench.measurements import BenchRun


def write_markdown(run: BenchRun, path: Path, *, system_only: bool = False) -> None:
    """The whole report; `system_only` (a run of the system section alone) replaces only the system part
    of the RESULTS.md already there, so the other sections keep the figures of their last full run."""
    if system_only and path.exists():
        path.write_text(system.splice(path.read_text(), system.section(run)))
        return
    path.write_text("\n".join(markdown(run)) + "\n")


def system_only(run: BenchRun) -> bool:
    """The run measured the system section and nothing else (the calibration always runs)."""
    return set(run.sections) - {"calibration"} == {"system"}


def markdown(run: BenchRun) -> list[str]:
    out = _preamble(run)
    out += throughput.section(run)
    out += client_cpu.section(run)
    out += throughput.delivery_section(run)
    out += round_trip.section(run)
    out += footprint.section(run)
    out += throttling.section(run)
    out += scale.section(run)
    out += client_cpu.profile_section(run.sections.get("profile"))
    out += system.section(run)
    out += [
        "## Charts",
        "",
        f"![throughput vs concurrency]({CONCURRENCY_CHART})",
        "",
        f"![throughput vs latency]({LATENCY_CHART})",
        "",
    ]
    return out


def _preamble(run: BenchRun) -> list[str]:
    machine, plan = run.machine, run.plan
    cpu_ms = analysis.bare_cpu_ms(run)
    out = ["# Benchmark results", ""]
    if plan.smoke:
        out += [
            "**Smoke run** (tiny sizes, to keep the benchmark from rotting): not the issue's figures.",
            "",
        ]
    out += [
        f"Measured {machine['date']} with `{run.command}` in {run.elapsed_s / 60:.1f} min. "
        f"Raw data: `{run.raw_path}` (not committed).",
        "",
        "## Machine",
        "",
    ]
    out += table(
        ["", ""],
        [
            ["CPU", f"{machine['cpu_model']} ({machine['cores']} cores, {machine['arch']})"],
            ["Python", machine["python"]],
            ["boto3 / botocore", f"{machine['boto3']} / {machine['botocore']}"],
            ["Powertools / moto", f"{machine['aws_lambda_powertools']} / {machine['moto']}"],
            ["Profiler", machine.get("py_spy", "-")],
            ["CPU layout", run.layout],
            [
                "Load average (1, 5, 15 min)",
                f"start {machine['load_average_start']}, end {run.load_average_end}",
            ],
            [
                "Repeat with",
                f"`uv run --frozen {run.command}`"
                if plan.smoke
                else "`make bench` (that is `uv run --frozen python -m bench`)",
            ],
        ],
    )
    out += ["## Targets", ""]
    out += table(
        ["target", "goal", "measured", "result"],
        [[t.name, t.goal, t.measured, verdict(t.passed)] for t in targets(run)],
    )
    out += [
        "## What the numbers include",
        "",
        "- **Client** = one Lambda instance: `invoker.handler.lambda_handler` (or the textbook handler) in its "
        "own process pinned to one CPU, called in-process with an SQS event built before the clock starts. "
        "Wall time is that one call; CPU is the process's CPU time (all threads) over the call "
        "(`time.process_time`).",
        "- **Endpoint** = the SageMaker Runtime emulator (`sqs_sagemaker_invoker.local.sagemaker`, `inline` container, SigV4 checked) "
        "in another process on the other CPU(s), with the latency added per request (`FaultSpec.latency_ms`).",
        "- **Throughput runs discard results on both sides** (`RESULTS_MODE=discard`; the textbook handler "
        "delivers nothing anyway): they measure InvokeEndpoint fan-out, logging (one JSON line per message, "
        "written unbuffered to a file as Lambda's runtime writes to its log pipe) and the EMF metrics. Result "
        "delivery to SQS is measured separately below, against moto.",
        f"- **Ideal** = ceil(N / MAX_CONCURRENCY) x latency. **CPU limit** = N x {cpu_ms:.3f} ms, the CPU of "
        "one bare boto3 `invoke_endpoint` call with the same client settings, measured in this run (section 2).",
        "- Each batch is the median of several repetitions on a warm instance (one unmeasured warm-up batch "
        "first: connections open, threads started), as Lambda reuses an execution environment.",
        "- **Lost** = messages acknowledged (not in `batchItemFailures`) that the endpoint did not answer "
        "successfully and that were not dead-lettered; delivery runs also count results missing from the "
        "queue.",
        "",
    ]
    return out
