"""RESULTS.md and the PNG charts, from the raw results of one run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench import analysis
from bench.plan import ARM64_PRICE_PER_GB_S, ESM_MAX_CONCURRENCY, LAMBDA_MEMORY_MB, MB_PER_VCPU

CONCURRENCY_CHART = "throughput_vs_concurrency.png"
LATENCY_CHART = "throughput_vs_latency.png"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _latency(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.1f} ms"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else "**pass**" if passed else "**FAIL**"


def write_markdown(results: dict[str, Any], path: Path) -> None:
    path.write_text("\n".join(_markdown(results)) + "\n")


def _markdown(results: dict[str, Any]) -> list[str]:
    machine, plan, sections = results["machine"], results["plan"], results["sections"]
    cpu_ms = analysis.bare_cpu_ms(results)
    out = ["# Benchmark results", ""]
    if plan["smoke"]:
        out += [
            "**Smoke run** (tiny sizes, to keep the benchmark from rotting): not the issue's figures.",
            "",
        ]
    out += [
        f"Measured {machine['date']} with `{results['command']}` in {results['elapsed_s'] / 60:.1f} min. "
        f"Raw data: `{results.get('raw_path', 'bench/results/raw/results.json')}` (not committed).",
        "",
        "## Machine",
        "",
    ]
    out += _table(
        ["", ""],
        [
            ["CPU", f"{machine['cpu_model']} ({machine['cores']} cores, {machine['arch']})"],
            ["Python", machine["python"]],
            ["boto3 / botocore", f"{machine['boto3']} / {machine['botocore']}"],
            ["Powertools / moto", f"{machine['aws_lambda_powertools']} / {machine['moto']}"],
            ["Profiler", machine.get("py_spy", "-")],
            ["CPU layout", results["layout"]],
            [
                "Load average (1, 5, 15 min)",
                f"start {machine['load_average_start']}, end {results['load_average_end']}",
            ],
            [
                "Repeat with",
                f"`uv run --frozen {results['command']}`"
                if plan["smoke"]
                else "`make bench` (that is `uv run --frozen python -m bench`)",
            ],
        ],
    )
    out += ["## Targets (issue 6)", ""]
    out += _table(
        ["target", "goal", "measured", "result"],
        [[t["target"], t["goal"], t["measured"], _verdict(t["passed"])] for t in analysis.targets(results)],
    )
    out += [
        "## What the numbers include",
        "",
        "- **Client** = one Lambda instance: `invoker.handler.lambda_handler` (or the textbook handler) in its "
        "own process pinned to one CPU, called in-process with an SQS event built before the clock starts. "
        "Wall time is that one call; CPU is the process's CPU time (all threads) over the call "
        "(`time.process_time`).",
        "- **Endpoint** = the SageMaker Runtime emulator (`local.sagemaker`, `inline` container, SigV4 checked) "
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
    out += _throughput_section(results)
    out += _cpu_section(results)
    out += _delivery_section(results)
    out += _cold_section(results)
    out += _throttling_section(results)
    out += _scale_section(results)
    out += _profile_section(sections.get("profile"))
    out += [
        "## Charts",
        "",
        f"![throughput vs concurrency]({CONCURRENCY_CHART})",
        "",
        f"![throughput vs latency]({LATENCY_CHART})",
        "",
    ]
    return out


def _throughput_section(results: dict[str, Any]) -> list[str]:
    rows = analysis.throughput(results)
    out = ["## 1. Throughput", ""]
    table = []
    for row in rows:
        if row.get("extra"):
            continue
        side = "invoker" if row["side"] == "invoker" else "textbook"
        if row.get("extrapolated"):
            side += f" (ran {row['measured_messages']}, extrapolated)"
        table.append(
            [
                f"{row['latency_ms']} ms",
                f"{row['messages']:,}",
                side,
                str(row["concurrency"]),
                f"{_ms(row['wall_s'])} ({_ms(row['wall_s_min'])}-{_ms(row['wall_s_max'])}, n={row['reps']})",
                f"{row['msgs_per_s']:,.1f}",
                _ms(row["ideal_s"]),
                _ms(row["cpu_limit_s"]),
                _x(row["ratio_to_bound"]),
                _x(row.get("speedup_vs_textbook")),
                f"{row['cpu_ms_per_msg']:.3f}",
                _latency(row.get("invocation_latency_ms_median")),
                _pct(row["server_cpu_util"].get("emulator")),
                str(row["lost"]),
            ]
        )
    out += _table(
        [
            "latency",
            "batch",
            "handler",
            "concurrency",
            "wall per batch (median, min-max)",
            "msg/s",
            "ideal",
            "CPU limit",
            "wall / max(ideal, CPU limit)",
            "vs textbook",
            "client CPU ms/msg",
            "InvokeEndpoint as the function saw it (median)",
            "emulator CPU",
            "lost",
        ],
        table,
    )
    extras = [r for r in rows if r.get("extra")]
    if extras:
        out += ["Extra latencies (invoker only, for the latency chart):", ""]
        out += _table(
            ["latency", "batch", "wall", "msg/s", "ideal", "CPU limit", "wall / max(ideal, CPU limit)"],
            [
                [
                    f"{r['latency_ms']} ms",
                    f"{r['messages']:,}",
                    _ms(r["wall_s"]),
                    f"{r['msgs_per_s']:,.0f}",
                    _ms(r["ideal_s"]),
                    _ms(r["cpu_limit_s"]),
                    _x(r["ratio_to_bound"]),
                ]
                for r in extras
            ],
        )
    sweep = analysis.sweep(results)
    if sweep:
        out += ["### MAX_CONCURRENCY sweep", ""]
        out += _table(
            [
                "latency",
                "MAX_CONCURRENCY",
                "batch",
                "wall",
                "msg/s",
                "ideal",
                "wall / max(ideal, CPU limit)",
                "client CPU ms/msg",
                "emulator CPU",
                "lost",
            ],
            [
                [
                    f"{r['latency_ms']} ms",
                    str(r["concurrency"]),
                    f"{r['messages']:,}",
                    _ms(r["wall_s"]),
                    f"{r['msgs_per_s']:,.0f}",
                    _ms(r["ideal_s"]),
                    _x(r["ratio_to_bound"]),
                    f"{r['cpu_ms_per_msg']:.3f}",
                    _pct(r["server_cpu_util"].get("emulator")),
                    str(r["lost"]),
                ]
                for r in sweep
            ],
        )
        skipped = results["sections"]["sweep"].get("skipped", [])
        if skipped:
            out += [
                "Not run (ideal time over the plan's limit): "
                + ", ".join(
                    f"{s['concurrency']} @ {s['latency_ms']} ms ({s['ideal_s']:.0f} s)" for s in skipped
                ),
                "",
            ]
    return out


def _cpu_section(results: dict[str, Any]) -> list[str]:
    rows = results["sections"].get("cpu", {}).get("rows", [])
    if not rows:
        return []
    calibrations = results["sections"].get("calibration", [])
    out = [
        "## 2. Client CPU per message at 0 ms endpoint latency",
        "",
        f"Batches of {rows[0]['messages']:,} messages; {rows[0]['rounds']} rounds, each running every "
        "configuration once in turn (the bare loop too), so that the machine's drift hits all alike; "
        "medians over the rounds, and the ratio is the median of the per-round ratios. The bare loop is "
        "one `invoke_endpoint` + body read per call, sequential, same client settings (the target's "
        "reference); the threaded bare loop makes the same calls from a thread pool sharing one client, "
        "the least any concurrent client pays. Bare-loop "
        "calibrations at the start and the end of the run (drift check): "
        + ", ".join(f"{c['cpu_ms_per_call']:.3f} ms" for c in calibrations)
        + ".",
        "",
    ]
    names = {"bare": "bare boto3 loop", "invoker": "invoker", "baseline": "textbook"}
    out += _table(
        [
            "client",
            "MAX_CONCURRENCY",
            "per-message log lines",
            "CPU ms/msg (median)",
            "all rounds",
            "user / sys ms/msg",
            "vs bare loop",
            "vs threaded bare loop",
            "log bytes/msg",
            "involuntary context switches/msg",
        ],
        [
            [
                names[r["side"]]
                + (f", {r['concurrency']} threads" if r["side"] == "bare" and r["concurrency"] > 1 else ""),
                str(r["concurrency"]) if r["side"] == "invoker" else "-",
                "-"
                if r["side"] == "bare"
                else "yes"
                if r["per_message_logs"]
                else "no (POWERTOOLS_LOG_LEVEL=WARNING)",
                f"{r['cpu_ms_per_msg']:.3f}",
                ", ".join(f"{c:.3f}" for c in r["cpu_ms_per_msg_all"]),
                f"{1000 * r['user_s'] / r['messages']:.3f} / {1000 * r['sys_s'] / r['messages']:.3f}",
                _x(r["vs_bare"]),
                _x(r.get("vs_bare_threads")),
                f"{r['log_bytes_per_msg']:.0f}",
                f"{r['involuntary_switches_per_msg']:.2f}",
            ]
            for r in rows
        ],
    )
    out += _cpu_breakdown(results)
    return out


def _cpu_breakdown(results: dict[str, Any]) -> list[str]:
    """The invoker's CPU per message split by ablation, from the medians above."""
    plan = results["plan"]
    by_label = {r["label"]: r for r in results["sections"].get("cpu", {}).get("rows", [])}
    concurrency = plan["concurrency"]
    names = ("bare", f"bare-threads{concurrency}", f"c{concurrency}-nolog", f"c{concurrency}")
    if not all(name in by_label for name in names):
        return []
    bare, threaded, nolog, full = (by_label[name]["cpu_ms_per_msg"] for name in names)
    parts = [
        ("the SDK call itself (bare loop)", bare),
        (f"{concurrency} threads sharing the client (threaded bare - bare)", threaded - bare),
        (
            "the rest of the handler: Powertools batch processing, envelope, limiter, metrics (invoker without "
            "log lines - threaded bare)",
            nolog - threaded,
        ),
        ("one log line per message (invoker - invoker without log lines)", full - nolog),
    ]
    out = [
        f"Where the invoker's {full:.3f} ms per message goes (MAX_CONCURRENCY {concurrency}, differences of "
        "the medians above; noise is a few hundredths of a ms):",
        "",
    ]
    out += _table(
        ["part", "ms/msg", "% of the bare call"],
        [
            [name, f"{value:+.3f}" if i else f"{value:.3f}", f"{100 * value / bare:+.0f}%" if i else "100%"]
            for i, (name, value) in enumerate(parts)
        ],
    )
    return out


def _delivery_section(results: dict[str, Any]) -> list[str]:
    section = results["sections"].get("delivery")
    if not section:
        return []
    out = [
        "### Result delivery to SQS (moto)",
        "",
        "Same function, same messages, `RESULTS_MODE=deliver` to a moto SQS queue vs `discard`. The queue is "
        "checked afterwards: every result must be on it. moto is not SQS: its per-call cost grows with the "
        "queue's depth (its `Queue.attributes` re-counts every message on each send), so these wall times are "
        "moto's, not the function's; the client CPU per message is the function's cost of delivery.",
        "",
    ]
    out += _table(
        [
            "mode",
            "batch",
            "latency",
            "wall",
            "msg/s",
            "client CPU ms/msg",
            "moto CPU",
            "results on queue",
            "lost",
        ],
        [
            [
                r["mode"],
                f"{r['messages']:,}",
                f"{r['latency_ms']} ms",
                _ms(r["wall_s"]),
                f"{r['msgs_per_s']:,.0f}",
                f"{r['cpu_ms_per_msg']:.3f}",
                _pct(r["server_cpu_util"].get("moto")),
                f"{r['results_on_queue']}/{r['results_expected']}" if r["mode"] == "deliver" else "-",
                str(r["lost"]),
            ]
            for r in section["rows"]
        ],
    )
    probe = section.get("moto_probe", {}).get("send_message_batch", [])
    if probe:
        out += [
            "moto SendMessageBatch (10 x 1 KB) latency by queue depth: "
            + ", ".join(f"{p['send_batch_ms']:.0f} ms at {p['queue_depth']}" for p in probe)
            + ". The function's sender is one batch call at a time per queue, so moto caps delivery near "
            "10 / that latency messages per second.",
            "",
        ]
    return out


def _cold_section(results: dict[str, Any]) -> list[str]:
    cold = results["sections"].get("cold_start")
    memory = results["sections"].get("memory", {}).get("rows", [])
    out = ["## 3. Cold start and memory", ""]
    if cold:
        out += [
            f"Fresh interpreters pinned to the client CPU, {cold['runs']} runs each, interleaved, median. "
            "Import = the import statement alone (in-process clock); process = spawn to exit, with "
            "interpreter start-up. `one_client` and `floor` are references, not handlers: the bare import plus "
            "one boto3 client, and the imports and the two clients any handler of this design needs (no "
            "handler code).",
            "",
        ]
        bare = cold["bare_import"]
        out += _table(
            [
                "what",
                "statement",
                "import (wall)",
                "import (CPU)",
                "process",
                "vs bare import (wall / CPU)",
                "RSS after import",
            ],
            [
                [
                    name,
                    f"`{cold['statements'][name]}`",
                    _ms(cold[name]["import_s"]),
                    _ms(cold[name]["import_cpu_s"]),
                    _ms(cold[name]["process_s"]),
                    f"{cold[name]['import_s'] / bare['import_s']:.2f}x / {cold[name]['import_cpu_s'] / bare['import_cpu_s']:.2f}x",
                    f"{cold[name]['maxrss_mb']:.1f} MB",
                ]
                for name in ("bare_import", "invoker", "baseline", "one_client", "floor")
                if name in cold
            ],
        )
    profile = (cold or {}).get("profile") or {}
    if profile.get("rows"):
        out += [
            "Where `import invoker.handler` spends its time after a bare `import boto3, aws_lambda_powertools` "
            f"(cProfile, inclusive; {profile['total_ms']:.0f} ms under the profiler):",
            "",
        ]
        out += _table(
            ["function", "ms", "% of the handler's import"],
            [[f"`{r['function']}`", f"{r['ms']:.1f}", f"{r['percent']:.0f}"] for r in profile["rows"][:18]],
        )
    if memory:
        out += _table(
            ["handler", "messages", "peak RSS after import", "peak RSS after the batch"],
            [
                [
                    r["side"] if r["side"] == "invoker" else "textbook",
                    f"{r['messages']:,} x {r['message_size']} B",
                    f"{r['maxrss_after_import_mb']:.1f} MB",
                    f"{r['maxrss_mb']:.1f} MB",
                ]
                for r in memory
            ],
        )
    return out


def _throttling_section(results: dict[str, Any]) -> list[str]:
    summary = analysis.throttling(results)
    if not summary:
        return []
    out = [
        "## 4. Throttling",
        "",
        f"Endpoint capacity {summary['capacity']} concurrent requests at {summary['latency_ms']} ms "
        f"(over it: ThrottlingException at once), {summary['messages']:,} messages in one batch. The event "
        "source mapping's loop is replayed in the instance: messages reported in `batchItemFailures` come "
        "back with their receive count + 1 until all are acknowledged. Handler time is the sum of the "
        "handler calls; the function's backoff before a message comes back (RETRY_BASE_SECONDS 2) is not "
        "waited for, and shown apart. The first run of each instance starts with a fresh concurrency limit; "
        "later runs keep what the limiter learnt (a warm instance).",
        "",
    ]
    rows = []
    for concurrency in (summary["over"], summary["right"]):
        for index, run in enumerate(summary["runs"][str(concurrency)]):
            rows.append(
                [
                    str(concurrency),
                    str(index + 1),
                    _ms(run["handler_wall_s"]),
                    _ms(run["first_round_wall_s"]),
                    str(run["rounds"]),
                    str(run["endpoint_throttled"]),
                    str(run["endpoint_requests"] - run["invocations"]),
                    str(run["reattempts"]),
                    str(run["retried"]),
                    str(run["concurrency_limit_min"]),
                    f"{run['backoff_wait_s']:.1f} s",
                    str(run["lost"]),
                ]
            )
    out += _table(
        [
            "MAX_CONCURRENCY",
            "run",
            "handler time",
            "first call",
            "rounds",
            "throttled by endpoint",
            "SDK retries (endpoint requests - Invocations)",
            "in-function re-attempts (InvocationReattempts)",
            "reported for retry (Retried)",
            "lowest ConcurrencyLimit",
            "backoff not waited",
            "lost",
        ],
        rows,
    )
    out += [
        f"Median handler time ratio {summary['ratio']:.2f}x (first runs {summary['first_ratio']:.2f}x; with the "
        f"backoff waits added {summary['with_backoff_ratio']:.2f}x). SDK retries are counted as the "
        "endpoint's requests minus the function's `Invocations` metric (every attempt, re-attempts "
        "included): the client is pinned to one attempt per call (`total_max_attempts` 1).",
        "",
    ]
    return out


def _scale_section(results: dict[str, Any]) -> list[str]:
    rows = analysis.scale_model(results)
    if not rows:
        return []
    share = LAMBDA_MEMORY_MB / MB_PER_VCPU
    out = [
        "## 5. Scale model",
        "",
        "From the measured batches above (batch of the largest size, results discarded). Assumptions: one "
        f"function instance = the measured client CPU; Lambda gives {LAMBDA_MEMORY_MB} MB "
        f"{share:.2f} of a vCPU ({MB_PER_VCPU} MB = 1 vCPU), so a concurrent handler's wall time at "
        f"{LAMBDA_MEMORY_MB} MB is max(measured, CPU / {share:.2f}) and a sequential one's grows by its CPU x "
        f"({1 / share:.2f} - 1); an arm64 vCPU is taken as fast as this machine's core (not verified); the "
        f"endpoint has capacity for every in-flight request (at the event source mapping's maximum of "
        f"{ESM_MAX_CONCURRENCY} instances that is {ESM_MAX_CONCURRENCY} x MAX_CONCURRENCY); prices arm64 "
        f"${ARM64_PRICE_PER_GB_S:.10f} per GB-s and $0.20 per million requests; SQS, SageMaker and CloudWatch "
        "Logs ingestion are not included.",
        "",
    ]
    out += _table(
        [
            "handler",
            "MAX_CONCURRENCY",
            "latency",
            "msg/s per instance (1 vCPU, measured)",
            f"msg/s per instance ({LAMBDA_MEMORY_MB} MB, modelled)",
            f"msg/s at {ESM_MAX_CONCURRENCY} instances ({LAMBDA_MEMORY_MB} MB)",
            "endpoint in-flight needed",
            f"Lambda $ per million messages ({LAMBDA_MEMORY_MB} MB)",
            "Lambda $ per million (1,769 MB)",
        ],
        [
            [
                "invoker" if r["side"] == "invoker" else "textbook",
                str(r["concurrency"]),
                f"{r['latency_ms']} ms",
                f"{r['msgs_per_s_1vcpu']:,.0f}",
                f"{r['msgs_per_s_512mb']:,.0f}",
                f"{r['fleet_msgs_per_s_512mb']:,.0f}",
                f"{r['endpoint_in_flight_at_fleet']:,}",
                f"${r['cost_per_million_512mb']:.2f}",
                f"${r['cost_per_million_1769mb']:.2f}",
            ]
            for r in rows
        ],
    )
    return out


def _profile_section(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    out = ["## Where the client CPU goes", ""]
    if profile.get("skipped"):
        return [*out, f"Not profiled: {profile['skipped']}.", ""]
    out += [
        f"py-spy (`--gil`: samples of the thread holding the GIL, i.e. Python CPU; syscalls with the GIL "
        f"released are not in it) over {profile['reps']} batches of {profile['messages']:,} messages at 0 ms, "
        f"MAX_CONCURRENCY {profile['concurrency']}: {profile['samples']:,} samples inside `lambda_handler` "
        f"({profile['cpu_ms_per_msg_while_profiled']:.3f} ms CPU/msg while profiled). Caveat: py-spy charges "
        "a sample to the thread that last held the GIL, so waits for a lock held across a write "
        "(`Handler.acquire`) and the main thread's work after the fan-out can be over-counted; read it "
        "with the ablation in section 2 (per-message log lines off).",
        "",
        "By package (the innermost frame's):",
        "",
    ]
    out += _table(
        ["package", "% of samples"],
        [[p["name"], f"{p['percent']:.1f}"] for p in profile["self_by_package"]],
    )
    out += ["Functions by own time (file:function):", ""]
    out += _table(
        ["function", "% self"],
        [[f"`{p['name']}`", f"{p['percent']:.1f}"] for p in profile["self_by_function"]],
    )
    out += ["Functions by inclusive time:", ""]
    out += _table(
        ["function", "% inclusive"],
        [[f"`{p['name']}`", f"{p['percent']:.1f}"] for p in profile["inclusive_by_function"]],
    )
    return out


# -- charts ------------------------------------------------------------------------------------------------
def write_charts(results: dict[str, Any], directory: Path) -> list[Path]:
    import matplotlib  # noqa: PLC0415 - only when charts are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    cpu_ms = analysis.bare_cpu_ms(results)
    plan = results["plan"]
    batch = plan["sweep_batch"]
    rows = analysis.throughput(results)
    sweep = analysis.sweep(results)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    written = []

    def model(messages: int, concurrency: int, latency_ms: float) -> float:
        bound = max(math.ceil(messages / concurrency) * latency_ms / 1000, messages * cpu_ms / 1000)
        return messages / bound if bound > 0 else float("nan")

    fig, ax = plt.subplots(figsize=(8, 5))
    for color, latency in zip(colors, plan["sweep_latencies_ms"], strict=False):
        points = sorted((r["concurrency"], r["msgs_per_s"]) for r in sweep if r["latency_ms"] == latency)
        if not points:
            continue
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], "o-", color=color, label=f"invoker, {latency} ms (measured)")
        grid = sorted({*xs, *(2**i for i in range(0, 9))})
        grid = [c for c in grid if min(xs) <= c <= max(xs)]
        ax.plot(
            grid,
            [model(batch, c, latency) for c in grid],
            "--",
            color=color,
            alpha=0.6,
            label=f"N / max(ideal, CPU limit), {latency} ms",
        )
        textbook = next(
            (
                r
                for r in rows
                if r["side"] == "baseline" and r["latency_ms"] == latency and not r.get("extra")
            ),
            None,
        )
        if textbook is not None:
            ax.axhline(textbook["msgs_per_s"], color=color, linestyle=":", label=f"textbook, {latency} ms")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("MAX_CONCURRENCY")
    ax.set_ylabel("messages / s (one instance, one CPU)")
    ax.set_title(f"Throughput vs concurrency, batch of {batch:,}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(directory / CONCURRENCY_CHART)
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    invoker = sorted(
        (r["latency_ms"], r["msgs_per_s"])
        for r in rows
        if r["side"] == "invoker" and r["messages"] == batch and r["concurrency"] == plan["concurrency"]
    )
    textbook_points = sorted(
        (r["latency_ms"], r["msgs_per_s"]) for r in rows if r["side"] == "baseline" and r["messages"] == batch
    )
    cpu_rows = results["sections"].get("cpu", {}).get("rows", [])
    textbook_zero = next((r for r in cpu_rows if r["side"] == "baseline"), None)
    if textbook_zero is not None:
        textbook_points = sorted([(0, textbook_zero["msgs_per_s"]), *textbook_points])
    if invoker:
        ax.plot(
            [p[0] for p in invoker],
            [p[1] for p in invoker],
            "o-",
            color="tab:blue",
            label=f"invoker, MAX_CONCURRENCY {plan['concurrency']} (measured)",
        )
        grid = sorted({p[0] for p in invoker} | set(range(0, max(p[0] for p in invoker) + 1, 5)))
        ax.plot(
            grid,
            [model(batch, plan["concurrency"], latency) for latency in grid],
            "--",
            color="tab:blue",
            alpha=0.6,
            label="N / max(ideal, CPU limit)",
        )
    if textbook_points:
        ax.plot(
            [p[0] for p in textbook_points],
            [p[1] for p in textbook_points],
            "s",
            color="tab:gray",
            label="textbook sequential handler (measured)",
        )
        grid = list(range(0, max(p[0] for p in textbook_points) + 1, 2))
        ax.plot(
            grid,
            [1000 / (latency + cpu_ms) for latency in grid],
            ":",
            color="tab:gray",
            label="1 / (latency + CPU of one bare call)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("endpoint latency (ms)")
    ax.set_ylabel("messages / s (one instance, one CPU)")
    ax.set_title(f"Throughput vs endpoint latency, batch of {batch:,}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(directory / LATENCY_CHART)
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written
