"""RESULTS.md, section 2 (client CPU per message, and where the invoker's goes) and the py-spy profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.report.table import table, times

if TYPE_CHECKING:
    from bench.measurements import BenchRun, CpuRow, ProfileSection, ProfileSkipped

_CLIENTS = {"bare": "bare boto3 loop", "invoker": "invoker", "baseline": "textbook"}


def section(run: BenchRun) -> list[str]:
    rows = run.sections.get("cpu", {"rows": []})["rows"]
    if not rows:
        return []
    calibrations = run.sections.get("calibration", [])
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
    out += table(
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
        [_row(r) for r in rows],
    )
    out += _breakdown(run, rows)
    return out


def _row(r: CpuRow) -> list[str]:
    return [
        _CLIENTS[r["side"]]
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
        times(r["vs_bare"]),
        times(r.get("vs_bare_threads")),
        f"{r['log_bytes_per_msg']:.0f}",
        f"{r['involuntary_switches_per_msg']:.2f}",
    ]


def _breakdown(run: BenchRun, rows: list[CpuRow]) -> list[str]:
    """The invoker's CPU per message split by ablation, from the medians above."""
    by_label = {r["label"]: r for r in rows}
    concurrency = run.plan.concurrency
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
    out += table(
        ["part", "ms/msg", "% of the bare call"],
        [
            [name, f"{value:+.3f}" if i else f"{value:.3f}", f"{100 * value / bare:+.0f}%" if i else "100%"]
            for i, (name, value) in enumerate(parts)
        ],
    )
    return out


def profile_section(profile: ProfileSection | ProfileSkipped | None) -> list[str]:
    if not profile:
        return []
    out = ["## Where the client CPU goes", ""]
    if "skipped" in profile:
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
    out += table(
        ["package", "% of samples"],
        [[p["name"], f"{p['percent']:.1f}"] for p in profile["self_by_package"]],
    )
    out += ["Functions by own time (file:function):", ""]
    out += table(
        ["function", "% self"],
        [[f"`{p['name']}`", f"{p['percent']:.1f}"] for p in profile["self_by_function"]],
    )
    out += ["Functions by inclusive time:", ""]
    out += table(
        ["function", "% inclusive"],
        [[f"`{p['name']}`", f"{p['percent']:.1f}"] for p in profile["inclusive_by_function"]],
    )
    return out
