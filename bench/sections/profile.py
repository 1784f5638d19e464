"""Where the client CPU goes: py-spy over a Lambda instance while it runs batches at 0 ms latency."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bench.profiling import py_spy_command, py_spy_path, summarize_collapsed

if TYPE_CHECKING:
    from bench.measurements import ProfileSection, ProfileSkipped
    from bench.sections.measure import Session


def run(session: Session) -> ProfileSection | ProfileSkipped:
    """py-spy over the instance while it runs batches at 0 ms latency: where the client CPU goes."""
    plan = session.plan
    if py_spy_path() is None:
        return {"skipped": "py-spy is not installed (add py-spy to the bench dependency group)"}
    session.stack.set_endpoint(0)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        output = str(Path(tmp) / "profile.txt")
        instance = session.stack.instance(
            "invoker",
            session.stack.function_env(concurrency=plan.concurrency),
            f"c{plan.concurrency}-profiled",
            wrapper=py_spy_command(output),
        )
        with instance:
            measured = session.measure(
                instance,
                plan.profile_batch,
                reps=plan.profile_reps,
                warmup=min(plan.profile_batch, 2 * plan.concurrency),
                seed=7000,
            )
        text = Path(output).read_text() if Path(output).exists() else ""
    summary: ProfileSection = {
        **summarize_collapsed(text),
        "concurrency": plan.concurrency,
        "messages": plan.profile_batch,
        "reps": plan.profile_reps,
        "cpu_ms_per_msg_while_profiled": measured["cpu_ms_per_msg"],
    }
    session.progress(f"profile: {summary['samples']} samples in lambda_handler")
    return summary
