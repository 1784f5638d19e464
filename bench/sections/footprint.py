"""Footprint: peak RSS after a batch, and the cold start (import and initialisation) measured in fresh
interpreters by the probes in bench/probes."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Literal

from bench.measurements import COLD_STATEMENTS
from bench.stack import ROOT

if TYPE_CHECKING:
    from bench.measurements import (
        ColdProbe,
        ColdProfile,
        ColdStartSection,
        ColdStatement,
        MemoryRow,
        MemorySection,
        ProbeRun,
    )
    from bench.sections.measure import Session

PROBES = ROOT / "bench" / "probes"

# What each cold-start probe imports. `one_client` and `floor` are references, not handlers: where the
# difference goes, i.e. what any handler of this design must do at cold start.
STATEMENTS: dict[ColdStatement, str] = {
    "bare_import": "import boto3, aws_lambda_powertools",
    "invoker": "import invoker.handler",
    "baseline": "import bench.baseline",
    "one_client": 'import boto3, aws_lambda_powertools; boto3.client("sagemaker-runtime")',
    "floor": (
        "import boto3; from aws_lambda_powertools import Logger, Metrics; "
        "from aws_lambda_powertools.utilities.batch import BatchProcessor; "
        'boto3.client("sagemaker-runtime"); boto3.client("sqs")'
    ),
}


def memory(session: Session) -> MemorySection:
    """Peak RSS of a fresh instance after one batch of `rss_messages` 1 KB messages."""
    plan = session.plan
    session.stack.set_endpoint(0)
    rows: list[MemoryRow] = []
    sides: tuple[Literal["invoker", "baseline"], ...] = ("invoker", "baseline")
    for side in sides:
        instance = session.invoker(plan.concurrency) if side == "invoker" else session.baseline()
        with instance:
            idle = instance.rss_kb()
            measured = session.measure(instance, plan.rss_messages, reps=1, warmup=0, seed=6000)
            peak = instance.rss_kb()
        rows.append(
            {
                "side": side,
                "messages": plan.rss_messages,
                "message_size": plan.message_size,
                "maxrss_after_import_mb": idle / 1024,
                "maxrss_mb": peak / 1024,
                "lost": measured["lost"],
                "failures": measured["failures"],
            }
        )
        session.progress(f"peak RSS {side}: {peak / 1024:.1f} MB")
    return {"rows": rows}


def cold_start(session: Session) -> ColdStartSection:
    """Import and initialisation in fresh interpreters, interleaved: the handler module, a bare
    `import boto3, aws_lambda_powertools`, and the textbook handler module."""
    env = {**session.stack.env, **session.stack.function_env(concurrency=session.plan.concurrency)}
    cpus = ",".join(map(str, sorted(session.stack.layout.client)))
    samples: dict[ColdStatement, list[ProbeRun]] = {name: [] for name in COLD_STATEMENTS}
    names = list(COLD_STATEMENTS)
    # One unmeasured run each: bytecode caches written, files in the page cache, as on a warm host.
    for name in names:
        probe_import(STATEMENTS[name], env, cpus)
    for run in range(session.plan.cold_runs):
        order = names[run % len(names) :] + names[: run % len(names)]
        for name in order:
            samples[name].append(probe_import(STATEMENTS[name], env, cpus))

    def medians(runs: list[ProbeRun]) -> ColdProbe:
        return {
            "import_s": statistics.median(run["import_s"] for run in runs),
            "import_cpu_s": statistics.median(run["import_cpu_s"] for run in runs),
            "process_s": statistics.median(run["process_s"] for run in runs),
            "maxrss_mb": statistics.median(run["maxrss_mb"] for run in runs),
            "import_s_all": [run["import_s"] for run in runs],
        }

    out: ColdStartSection = {
        "runs": session.plan.cold_runs,
        "statements": STATEMENTS,
        "bare_import": medians(samples["bare_import"]),
        "invoker": medians(samples["invoker"]),
        "baseline": medians(samples["baseline"]),
        "one_client": medians(samples["one_client"]),
        "floor": medians(samples["floor"]),
        "profile": probe_profile(env, cpus),
    }
    session.progress(
        f"cold start: invoker {out['invoker']['import_s'] * 1000:.0f} ms, bare import "
        f"{out['bare_import']['import_s'] * 1000:.0f} ms"
    )
    return out


def _run_probe(script: str, arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROBES / script), *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def probe_import(statement: str, env: dict[str, str], cpus: str) -> ProbeRun:
    """One fresh interpreter timing `statement` (bench/probes/cold_import.py), and its spawn-to-exit."""
    started = time.perf_counter()
    done = _run_probe("cold_import.py", ["--cpus", cpus, "--statement", statement], env)
    process_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold-start probe {statement!r} failed:\n{done.stderr[-2000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "import_s": answer["import_s"],
        "import_cpu_s": answer["import_cpu_s"],
        "maxrss_mb": answer["maxrss_mb"],
        "process_s": process_s,
    }


def probe_profile(env: dict[str, str], cpus: str) -> ColdProfile:
    """cProfile of `import invoker.handler` after a bare `import boto3, aws_lambda_powertools`: what the
    handler's cold start adds, by inclusive time (cProfile inflates it; the shares are what count)."""
    done = _run_probe("cold_profile.py", ["--cpus", cpus], env)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    profile: ColdProfile = json.loads(done.stdout.strip().splitlines()[-1])
    return profile
