"""RESULTS.md, section 6: the system (K function instances, one endpoint, moto between them).

The part sits between two markers, so that a run of this section alone (`--only system`) can replace it
in a RESULTS.md written by a full run and leave every other section's figures as they were."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import analysis
from bench.report.charts import SYSTEM_CHART
from bench.report.table import table, times, verdict
from bench.targets import system_targets

if TYPE_CHECKING:
    from bench.measurements import BenchRun
    from bench.system_measurements import ScaleFromZeroRun, SystemSection

BEGIN = "<!-- system section: begin (python -m bench --only system rewrites it) -->"
END = "<!-- system section: end -->"
HEADING = "## 6. System"
_LABELS = {
    "shared": "invoker, shared capacity",
    "shared_small_batches": "invoker, shared capacity, batches of {small}",
    "per_instance": "invoker, per-instance limiting",
    "textbook": "textbook handler (Powertools, one call at a time)",
}


def label(mode: str, measured: SystemSection) -> str:
    return _LABELS[mode].format(small=measured["small_batch_size"])


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _percent(part: int, whole: int) -> str:
    return "-" if whole <= 0 else f"{100 * part / whole:.1f}%"


def section(run: BenchRun) -> list[str]:
    measured = run.sections.get("system")
    if not measured:
        return []
    return [BEGIN, *_body(run, measured), END, ""]


def _body(run: BenchRun, measured: SystemSection) -> list[str]:
    limit = analysis.physical_limit_s(measured["messages"], measured["latency_ms"], measured["capacity"])
    rate = measured["capacity"] / (measured["latency_ms"] / 1000)
    out = [
        HEADING,
        "",
        f"Measured {run.machine['date']} with `{run.command}`. Repeat with "
        "`uv run --frozen python -m bench --only system` (about 6 minutes; `--smoke` for tiny sizes).",
        "",
        f"**Setup.** The local stack (`sqs_sagemaker_invoker.local.stack`): K = {measured['slots']} function "
        "instances (the event source emulator's slots, each a worker process running the handler, polling "
        f"moto's SQS) against one emulated endpoint of C = {measured['instances']} instances x "
        f"{measured['concurrency_per_instance']} = {measured['capacity']} concurrent requests at "
        f"L = {measured['latency_ms']} ms (above C a request is throttled at once). The function runs with "
        f"MAX_CONCURRENCY {measured['max_concurrency']} and batches of {measured['batch_size']} (cdk.json), so "
        "K x MAX_CONCURRENCY = "
        f"{analysis.oversubscription(measured):g} x C. N = {measured['messages']} messages of "
        f"{run.plan.message_size} B are sent up front with the slots idle (their workers already "
        "initialised); the clock starts when the slots start polling and stops at the last message "
        "settled: its result on the results queue (the result carries the request id), or its copy in the "
        f"dead-letter queue. Physical limit N x L / C = {limit:.1f} s ({rate:g} calls/s). Each run has a "
        "fresh stack; same messages, same endpoint. Latency is from the SendMessageBatch call of a request "
        "to its result's arrival (SentTimestamp on the results queue), so it includes the time queued "
        "behind the others.",
        "",
    ]
    rows = []
    for figures in analysis.system_figures(measured):
        each = figures.run
        if "skipped" in each:
            rows.append([label(each["mode"], measured), f"not run: {each['skipped']}", *["-"] * 12])
            continue
        rows.append(
            [
                label(each["mode"], measured),
                _seconds(each["drain_s"]),
                _seconds(figures.limit_s),
                times(figures.ratio),
                str(each["endpoint_calls"]),
                f"{each['endpoint_throttled']} ({_percent(each['endpoint_throttled'], each['endpoint_calls'])})",
                "-" if figures.calls_per_message is None else f"{figures.calls_per_message:.2f}",
                _seconds(each["latency_p50_s"]),
                _seconds(each["latency_p99_s"]),
                str(each["results"])
                if each["settled_by"] == "results_queue"
                else f"{each['results']} (acked)",
                str(each["dead_lettered"]),
                str(each["lost"]),
                str(each["pending"]),
                str(each["duplicates"]),
            ]
        )
    out += table(
        [
            "run",
            "drain",
            "N x L / C",
            "drain / limit",
            "InvokeEndpoint calls",
            "throttled",
            "calls per message",
            "p50 send to result",
            "p99",
            "results",
            "dead-lettered",
            "lost",
            "pending",
            "duplicates",
        ],
        rows,
    )
    out += _budget_line(measured)
    out += [
        "The textbook handler delivers no result: a message counts as settled when the event source "
        "deletes it (only after a successful call), and its latency ends there. Lost = neither a result "
        "nor a dead-letter copy once the request queue is empty; pending = still on the queue when the run "
        "was called off.",
        "",
        "### Targets (system)",
        "",
    ]
    out += table(
        ["target", "goal", "measured", "result"],
        [[t.name, t.goal, t.measured, verdict(t.passed)] for t in system_targets(measured)],
    )
    out += _scale_part(measured["scale_from_zero"], measured)
    out += _moto_part(measured, rate)
    out += [f"![system: drain curves and scale from zero]({SYSTEM_CHART})", ""]
    return out


def _budget_line(measured: SystemSection) -> list[str]:
    """What the shared runs' budget items say: whether the instances shared one budget at all."""
    out = []
    for run in measured["runs"]:
        if "budget" not in run or "skipped" in run:
            continue
        budget, name = run["budget"], label(run["mode"], measured)
        if not budget.get("ceiling"):
            out.append(
                f"{name}: the route's budget item was never written (no ceiling read from "
                "DescribeEndpoint), so every instance ran on its own limiter: per-instance limiting under "
                "another name."
            )
            continue
        out.append(
            f"{name}: after the drain the route's budget item read ceiling {budget['ceiling']:g} "
            f"({budget.get('capacity', 0):g} instances x concurrency per instance, from DescribeEndpoint), "
            f"AIMD limit {budget.get('limit', 0):.1f}, cut {budget.get('cutEpoch', 0):g} times, written "
            f"{budget.get('version', 0):g} times."
        )
    ceiling, batch = measured["capacity"], measured["batch_size"]
    if out and batch % ceiling and ceiling % batch:
        out.append(
            f"Each batch leases its slots from the route's budget, and a batch of {batch} does not divide a "
            f"ceiling of {ceiling}: the run with batches of {measured['small_batch_size']} shows what the "
            "batch size does to the shared drain."
        )
    return [*(f"- {each}" for each in out), ""] if out else []


def _scale_part(scale: ScaleFromZeroRun, measured: SystemSection) -> list[str]:
    out = ["### Scale from zero", ""]
    if "skipped" in scale:
        return [*out, f"Not run: {scale['skipped']}.", ""]
    peak = scale["max_copies"] * measured["concurrency_per_instance"]
    after = analysis.physical_limit_s(scale["messages"], measured["latency_ms"], peak)
    out += [
        f"An inference component whose copies start at 0 (each takes {measured['concurrency_per_instance']} "
        f"requests at once, at most {scale['max_copies']} copies: peak capacity {peak}); the route's scaling "
        f"policy (min 0, max {scale['max_copies']}, all copies in one step from zero) applied by the local "
        f"autoscaler (a 1 s tick: it sees the backlog at once, where the deployed CloudWatch alarm takes "
        f"minutes); a copy serves {scale['provisioning_s']} s after it is asked for. {scale['messages']} "
        "messages arrive as one burst while the slots poll; the clock starts at the first send. Retry "
        "settings: the smallest maxReceiveCount that passes the synth check "
        f"(`check_retries_outlast_scale_out`) with retryBaseSeconds {scale['retry_base_seconds']} and "
        f"retryMaxSeconds {scale['retry_max_seconds']}: {scale['max_receive_count']}.",
        "",
    ]
    out += table(
        [
            "first copy serving (sampled each second)",
            "first result",
            "drained",
            "drained after the first copy served",
            "N x L / C at peak",
            "InvokeEndpoint calls",
            "no capacity",
            "throttled",
            "results",
            "dead-lettered",
            "lost",
            "pending",
        ],
        [
            [
                _seconds(scale["first_serving_s"]),
                _seconds(scale["first_result_s"]),
                _seconds(scale["drain_s"]),
                _seconds(
                    scale["drain_s"] - scale["first_serving_s"]
                    if scale["drain_s"] is not None and scale["first_serving_s"] is not None
                    else None
                ),
                _seconds(after),
                str(scale["endpoint_calls"]),
                str(scale["endpoint_no_capacity"]),
                str(scale["endpoint_throttled"]),
                str(scale["results"]),
                str(scale["dead_lettered"]),
                str(scale["lost"]),
                str(scale["pending"]),
            ]
        ],
    )
    out += [
        "No capacity counts calls the endpoint answered with its no-capacity error: the shared budget "
        "reads the copies serving (DescribeInferenceComponent) and hands a batch back without calling "
        "while none serves, with a backoff of at least half its ceiling each time.",
        "",
    ]
    return out


def _moto_part(measured: SystemSection, rate: float) -> list[str]:
    rates = measured["moto"]["rates"]
    out = [
        "### moto's bound",
        "",
        f"A moto server like the stack's, one call at a time from one client, its queue filled to "
        f"{measured['messages']} messages first (moto's cost per call grows with a queue's depth). At "
        f"capacity the system needs {rate:g} messages/s through each of: the event source's receive and "
        "delete on the request queue, the function's result sends, and this driver's receive and delete on "
        "the results queue.",
        "",
    ]
    out += table(
        ["call", "calls", "messages", "calls/s", "messages/s", "vs the endpoint's rate"],
        [
            [
                r["call"],
                str(r["calls"]),
                str(r["messages"]),
                f"{r['calls_per_s']:.1f}",
                f"{r['msgs_per_s']:.1f}",
                times(r["msgs_per_s"] / rate if rate > 0 else None),
            ]
            for r in rates
        ],
    )
    return out


def splice(existing: str, part: list[str]) -> str:
    """`existing` RESULTS.md with its system part replaced by `part` (or, when it has none, inserted before
    the charts, else appended); everything outside the markers is kept byte for byte."""
    block = "\n".join(part).rstrip("\n") + "\n"
    if BEGIN in existing and END in existing:
        head, rest = existing.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + block.rstrip("\n") + tail
    marker = "## Charts"
    if marker in existing:
        head, tail = existing.split(marker, 1)
        return head + block + "\n" + marker + tail
    return existing.rstrip("\n") + "\n\n" + block
