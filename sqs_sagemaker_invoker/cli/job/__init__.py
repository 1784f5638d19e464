"""`invoker job`: a JSON Lines file in, one output file out, on a route with jobs (docs/cli.md#jobs)."""

import json
import sys
import time
from typing import Annotated, Any

import typer
from invoker.contract import JOB_FINAL_STATES, JOB_SUCCEEDED_OUTCOME, JobState, JoinMode
from invoker.contract import JobAttribute as J

from sqs_sagemaker_invoker.cli.job import jobs as ops
from sqs_sagemaker_invoker.cli.options import TargetOptions, targeted
from sqs_sagemaker_invoker.cli.ui import (
    format_age,
    format_ms_timestamp,
    progress,
    stderr_console,
    stdout_console,
)

job = typer.Typer(
    help="Jobs: a JSON Lines file in, one output file out (exit codes of wait: 0 succeeded, 1 partially "
    "failed, 2 cancelled or failed).",
    no_args_is_help=True,
)


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    counts = dict(item.get(J.COUNTS) or {})
    failed = sum(n for outcome, n in counts.items() if outcome != JOB_SUCCEEDED_OUTCOME)
    return {
        "jobId": item.get(J.JOB_ID),
        "state": item.get(J.STATE),
        "lines": item.get(J.TOTAL),
        "linesRead": item.get(J.LINES),
        "sent": item.get(J.SENT),
        "ended": item.get(J.ENDED),
        "succeeded": counts.get(JOB_SUCCEEDED_OUTCOME, 0),
        "failed": failed,
        "counts": counts,
        "etaSeconds": ops.eta_seconds(item),
        "output": item.get(J.OUTPUT),
        "manifest": item.get(J.MANIFEST),
        "submittedAt": item.get(J.SUBMITTED_AT),
        "endedAt": item.get(J.ENDED_AT),
    }


@job.command()
@targeted
def submit(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    source: Annotated[str, typer.Argument(help="A JSON Lines file, or s3://bucket/key.")],
    join: Annotated[
        JoinMode, typer.Option(help="input: each output line carries its input line.")
    ] = JoinMode.NONE,
) -> None:
    """Uploads the input to the route's bucket, creates the job and starts its split; prints the job id."""
    target, route = opts.open_route()
    job_id = ops.submit(target, ops.job_route(target, route), source, join=join.value)
    sys.stdout.write(job_id + "\n")


@job.command()
@targeted
def status(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    job_id: Annotated[str, typer.Argument(help="The job id submit printed.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """A job's state, counts by outcome and, while it runs, the time left at the rate so far."""
    target, route = opts.open_route()
    summary = _summary(ops.read(ops.job_route(target, route), job_id))
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    console = stdout_console()
    for name, raw in summary.items():
        shown = raw
        if raw is not None and name == "etaSeconds":
            shown = format_age(raw)
        elif raw is not None and name in {"submittedAt", "endedAt"}:
            shown = format_ms_timestamp(raw)
        if shown not in (None, {}):
            console.print(f"[bold]{name}[/bold]: {shown}", highlight=False)


@job.command()
@targeted
def wait(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    job_id: Annotated[str, typer.Argument(help="The job id submit printed.")],
    interval: Annotated[float, typer.Option(help="Seconds between looks.", min=0.2)] = 2.0,
) -> None:
    """Waits for the job's end with a progress bar; exit 0 succeeded, 1 partially failed, 2 cancelled/failed."""
    target, route = opts.open_route()
    jobs = ops.job_route(target, route)
    console = stderr_console()
    with progress(console, enabled=True) as bar:
        task = bar.add_task(f"job {job_id}", total=None)
        while True:
            item = ops.read(jobs, job_id)
            counts = dict(item.get(J.COUNTS) or {})
            failed = sum(n for outcome, n in counts.items() if outcome != JOB_SUCCEEDED_OUTCOME)
            bar.update(
                task,
                total=ops.estimated_total(item),
                completed=int(item.get(J.ENDED) or 0),
                description=f"{item.get(J.STATE)}: {counts.get(JOB_SUCCEEDED_OUTCOME, 0)} ok, {failed} failed",
            )
            if item.get(J.STATE) in JOB_FINAL_STATES:
                break
            time.sleep(interval)
    summary = _summary(item)
    sys.stdout.write(json.dumps(summary) + "\n")
    raise typer.Exit(ops.EXIT_CODES[JobState(item[J.STATE])])


@job.command(name="list")
@targeted
def list_jobs(ctx: typer.Context, *, opts: TargetOptions) -> None:
    """The route's jobs, oldest first: state, lines, counts."""
    target, route = opts.open_route()
    jobs = ops.job_route(target, route)
    console = stdout_console()
    for job_id in ops.job_ids(target, jobs):
        summary = _summary(ops.read(jobs, job_id))
        console.print(
            f"{job_id}  {summary['state']:<16} lines={summary['lines'] or summary['linesRead']} "
            f"ok={summary['succeeded']} failed={summary['failed']}",
            highlight=False,
        )


@job.command()
@targeted
def cancel(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    job_id: Annotated[str, typer.Argument(help="The job id submit printed.")],
) -> None:
    """Stops what has not been sent (lines already sent still run) and says how many lines went."""
    target, route = opts.open_route()
    done = ops.cancel(target, ops.job_route(target, route), job_id)
    stdout_console().print(
        f"job {job_id} cancelled: {done.sent} lines sent, {done.not_sent} not sent", highlight=False
    )
