"""Client CPU: the bare boto3 calibration and the CPU section's interleaved rounds at 0 ms latency."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from bench.instances import LambdaInstance
    from bench.measurements import Calibration, CpuRow, CpuSection, Side
    from bench.sections.measure import Session


def calibrate(session: Session) -> Calibration:
    """CPU of one bare boto3 invoke_endpoint call (0 ms latency), at the start and the end of the run:
    a drift check (the CPU limit uses the CPU section's interleaved rounds when that section runs)."""
    session.stack.set_endpoint(0)
    with session.stack.instance("bare") as bare:
        answer = bare.bare(session.messages(session.plan.bare_calls, seed=1), warmup=50)
    calls = answer["calls"]
    result: Calibration = {
        "calls": calls,
        "cpu_ms_per_call": 1000 * answer["cpu_s"] / calls,
        "user_ms_per_call": 1000 * answer["user_s"] / calls,
        "sys_ms_per_call": 1000 * answer["sys_s"] / calls,
        "wall_ms_per_call": 1000 * answer["wall_s"] / calls,
    }
    session.progress(f"bare boto3: {result['cpu_ms_per_call']:.3f} ms CPU per call")
    return result


@dataclass(frozen=True)
class Configuration:
    """One client of the CPU section: the bare loop (from `concurrency` threads), the invoker at
    MAX_CONCURRENCY `concurrency` (with `env` on top of the function's), or the textbook handler."""

    label: str
    side: Side
    concurrency: int
    env: dict[str, str] = field(default_factory=dict)


class Round(TypedDict):
    """One configuration in one round."""

    messages: int
    wall_s: float
    cpu_ms_per_msg: float
    user_s: float
    sys_s: float
    log_bytes_per_msg: float
    involuntary_switches_per_msg: float
    failures: int
    lost: int
    metrics: dict[str, int]


def configurations(session: Session) -> list[Configuration]:
    plan = session.plan
    return [
        Configuration("bare", "bare", 1),
        Configuration(f"bare-threads{plan.concurrency}", "bare", plan.concurrency),
        *(Configuration(f"c{c}", "invoker", c) for c in plan.cpu_concurrency),
        Configuration(
            f"c{plan.concurrency}-nolog", "invoker", plan.concurrency, {"POWERTOOLS_LOG_LEVEL": "WARNING"}
        ),
        Configuration("textbook", "baseline", 1),
    ]


def run(session: Session) -> CpuSection:
    """Client CPU per message at 0 ms endpoint latency: the bare boto3 loop, the invoker at several
    MAX_CONCURRENCY settings and once without its per-message log lines (their share), and the
    textbook handler. Rounds visit every configuration in turn; each figure is the median over the
    rounds, and the ratio to the bare loop is the median of the per-round ratios."""
    plan = session.plan
    messages = plan.cpu_batch
    session.stack.set_endpoint(0)
    specs = configurations(session)
    instances: dict[str, LambdaInstance] = {}
    rounds: dict[str, list[Round]] = {spec.label: [] for spec in specs}
    try:
        for spec in specs:
            if spec.side == "invoker":
                instances[spec.label] = session.invoker(spec.concurrency, spec.label, **spec.env)
            else:
                instances[spec.label] = session.stack.instance(spec.side, label=spec.label)
        for index in range(plan.cpu_rounds):
            shift = index % len(specs)
            for spec in specs[shift:] + specs[:shift]:
                rounds[spec.label].append(_one_round(session, instances[spec.label], spec, index))
    finally:
        for instance in instances.values():
            instance.close()
    bare = [r["cpu_ms_per_msg"] for r in rounds["bare"]]
    bare_threads = [r["cpu_ms_per_msg"] for r in rounds[f"bare-threads{plan.concurrency}"]]
    rows = []
    for spec in specs:
        runs = rounds[spec.label]
        cpu = [r["cpu_ms_per_msg"] for r in runs]
        wall_s = statistics.median(r["wall_s"] for r in runs)
        row: CpuRow = {
            "side": spec.side,
            "label": spec.label,
            "concurrency": spec.concurrency,
            "per_message_logs": spec.side != "bare" and not spec.env,
            "threads": spec.concurrency,
            "messages": messages,
            "rounds": len(runs),
            "cpu_ms_per_msg": statistics.median(cpu),
            "cpu_ms_per_msg_all": cpu,
            "vs_bare": statistics.median(c / b for c, b in zip(cpu, bare, strict=True)),
            "vs_bare_threads": statistics.median(c / b for c, b in zip(cpu, bare_threads, strict=True)),
            "wall_s": wall_s,
            "user_s": statistics.median(r["user_s"] for r in runs),
            "sys_s": statistics.median(r["sys_s"] for r in runs),
            "log_bytes_per_msg": statistics.median(r["log_bytes_per_msg"] for r in runs),
            "involuntary_switches_per_msg": statistics.median(
                r["involuntary_switches_per_msg"] for r in runs
            ),
            "failures": sum(r["failures"] for r in runs),
            "lost": sum(r["lost"] for r in runs),
            "msgs_per_s": messages / wall_s,
        }
        if spec.side == "invoker":
            row["metrics"] = {"Succeeded": sum(r["metrics"].get("Succeeded", 0) for r in runs)}
        rows.append(row)
        session.progress(f"cpu {spec.label}: {row['cpu_ms_per_msg']:.3f} ms/msg ({row['vs_bare']:.2f}x bare)")
    return {"rows": rows}


def _one_round(session: Session, instance: LambdaInstance, spec: Configuration, index: int) -> Round:
    messages = session.plan.cpu_batch
    if spec.side == "bare":
        answer = instance.bare(session.messages(messages, 100 + index), warmup=20, threads=spec.concurrency)
        return {
            "messages": messages,
            "wall_s": answer["wall_s"],
            "cpu_ms_per_msg": 1000 * answer["cpu_s"] / messages,
            "user_s": answer["user_s"],
            "sys_s": answer["sys_s"],
            "log_bytes_per_msg": 0.0,
            "involuntary_switches_per_msg": 0.0,
            "failures": 0,
            "lost": 0,
            "metrics": {},
        }
    measured = session.measure(
        instance,
        messages,
        reps=1,
        warmup=min(messages, 2 * spec.concurrency) if index == 0 else 0,
        seed=100 + index,
    )
    return {
        "messages": messages,
        "wall_s": measured["wall_s"],
        "cpu_ms_per_msg": measured["cpu_ms_per_msg"],
        "user_s": measured["user_s"],
        "sys_s": measured["sys_s"],
        "log_bytes_per_msg": measured["log_bytes_per_msg"],
        "involuntary_switches_per_msg": measured["involuntary_switches_per_msg"],
        "failures": measured["failures"],
        "lost": measured["lost"],
        "metrics": measured["metrics"],
    }
