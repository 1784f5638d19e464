"""Throughput: the matrix (latency x batch size, invoker against the textbook handler) and the
MAX_CONCURRENCY sweep."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench.measurements import throughput_row

if TYPE_CHECKING:
    from bench.measurements import MatrixSection, SkippedPoint, SweepSection, ThroughputRow
    from bench.sections.measure import Session


def matrix(session: Session) -> MatrixSection:
    """Throughput at each endpoint latency and batch size: invoker (headline concurrency) and the
    textbook handler on the same messages; plus invoker-only points for the latency chart."""
    plan = session.plan
    rows: list[ThroughputRow] = []
    with session.invoker(plan.concurrency) as invoker, session.baseline() as baseline:
        for latency in plan.latencies_ms:
            session.stack.set_endpoint(latency)
            for messages in plan.batches:
                seed = 1000 + latency * 10 + messages
                measured = session.measure(
                    invoker,
                    messages,
                    reps=plan.reps_for(messages, baseline=False),
                    warmup=min(messages, 2 * plan.concurrency),
                    seed=seed,
                )
                row = throughput_row(
                    measured, side="invoker", concurrency=plan.concurrency, latency_ms=latency
                )
                rows.append(row)
                run = messages
                if plan.baseline_max_messages is not None:
                    run = min(messages, plan.baseline_max_messages)
                measured = session.measure(
                    baseline, run, reps=plan.reps_for(messages, baseline=True), warmup=5, seed=seed
                )
                base = throughput_row(measured, side="baseline", concurrency=1, latency_ms=latency)
                base["extrapolated"] = run < messages
                if run < messages:
                    scale = messages / run
                    base["measured_messages"] = run
                    base["messages"] = messages
                    base["wall_s"] = base["wall_s"] * scale
                    base["wall_s_min"] = base["wall_s_min"] * scale
                    base["wall_s_max"] = base["wall_s_max"] * scale
                rows.append(base)
                session.progress(
                    f"{latency} ms x {messages}: invoker {row['msgs_per_s']:.0f} msg/s, "
                    f"textbook {base['msgs_per_s']:.1f} msg/s{' (extrapolated)' if run < messages else ''}"
                )
        for latency in plan.extra_latencies_ms:
            session.stack.set_endpoint(latency)
            measured = session.measure(
                invoker,
                plan.sweep_batch,
                reps=plan.extra_reps,
                warmup=min(plan.sweep_batch, 2 * plan.concurrency),
                seed=2000 + latency,
            )
            row = throughput_row(measured, side="invoker", concurrency=plan.concurrency, latency_ms=latency)
            row["extra"] = True
            rows.append(row)
            session.progress(f"{latency} ms x {plan.sweep_batch}: invoker {row['msgs_per_s']:.0f} msg/s")
    return {"rows": rows}


def sweep(session: Session) -> SweepSection:
    """Throughput of one batch against MAX_CONCURRENCY, at each sweep latency."""
    plan = session.plan
    rows: list[ThroughputRow] = []
    skipped: list[SkippedPoint] = []
    for concurrency in plan.sweep_concurrency:
        todo = []
        for latency in plan.sweep_latencies_ms:
            ideal = math.ceil(plan.sweep_batch / concurrency) * latency / 1000
            if ideal > plan.sweep_max_ideal_s:
                skipped.append({"concurrency": concurrency, "latency_ms": latency, "ideal_s": ideal})
            else:
                todo.append((latency, ideal))
        if not todo:
            continue
        with session.invoker(concurrency) as instance:
            for latency, ideal in todo:
                session.stack.set_endpoint(latency)
                reps = 1 if plan.smoke or ideal > 5 else 3  # long points are steady enough once
                measured = session.measure(
                    instance,
                    plan.sweep_batch,
                    reps=reps,
                    warmup=min(plan.sweep_batch, 2 * concurrency),
                    seed=3000 + latency,
                )
                row = throughput_row(measured, side="invoker", concurrency=concurrency, latency_ms=latency)
                rows.append(row)
                session.progress(f"sweep C={concurrency} @ {latency} ms: {row['msgs_per_s']:.0f} msg/s")
    return {"rows": rows, "skipped": skipped}
