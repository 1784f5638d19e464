"""The benchmark's sections. Each returns plain JSON data (bench.analysis derives ratios and targets).

Invoker and textbook handler get the same messages (same seeds) from the same emulator endpoint, one
after the other, in the same run."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.profiling import py_spy_command, py_spy_path, summarize_collapsed
from bench.stack import ROOT, BenchStack, LambdaInstance

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.plan import Plan


def summarize(reps: list[dict[str, Any]], messages: int) -> dict[str, Any]:
    walls = [r["wall_s"] for r in reps]
    cpus = [r["cpu_s"] for r in reps]
    wall = statistics.median(walls)
    latencies = [r["invocation_latency_ms_median"] for r in reps if r.get("invocation_latency_ms_median")]
    metrics: dict[str, int] = {}
    for rep in reps:
        for name, value in rep.get("metrics", {}).items():
            metrics[name] = metrics.get(name, 0) + int(value)
    return {
        "messages": messages,
        "reps": len(reps),
        "wall_s": wall,
        "wall_s_min": min(walls),
        "wall_s_max": max(walls),
        "msgs_per_s": messages / wall if wall > 0 else 0.0,
        "cpu_s": statistics.median(cpus),
        "cpu_ms_per_msg": 1000 * statistics.median(cpus) / messages,
        "user_s": statistics.median(r["user_s"] for r in reps),
        "sys_s": statistics.median(r["sys_s"] for r in reps),
        "failures": sum(r["failures"] for r in reps),
        "metrics": metrics,
        "log_bytes_per_msg": statistics.median(r.get("log_bytes", 0) for r in reps) / messages,
        "concurrency_limit_min": min(
            (r["concurrency_limit_min"] for r in reps if r.get("concurrency_limit_min") is not None),
            default=None,
        ),
        "involuntary_switches_per_msg": statistics.median(r["involuntary_switches"] for r in reps) / messages,
        "invocation_latency_ms_median": statistics.median(latencies) if latencies else None,
    }


class Runner:
    def __init__(self, stack: BenchStack, plan: Plan, progress: Callable[[str], None]) -> None:
        self.stack = stack
        self.plan = plan
        self.progress = progress

    # -- helpers -----------------------------------------------------------------------------------------
    def _invoker(self, concurrency: int, label: str = "", **env: str) -> LambdaInstance:
        return self.stack.instance(
            "invoker", self.stack.function_env(concurrency=concurrency, **env), label or f"c{concurrency}"
        )

    def _baseline(self) -> LambdaInstance:
        return self.stack.instance("baseline")

    def measure(
        self, instance: LambdaInstance, messages: int, *, reps: int, warmup: int, seed: int
    ) -> dict[str, Any]:
        """Warm-up batch (not measured: connections and threads of a warm instance), then `reps`
        batches; also the endpoint's answers and the servers' CPU over the same time."""
        stats0, cpu0, started = self.stack.endpoint_stats(), self.stack.server_cpu(), time.perf_counter()
        answer = instance.request(
            "batch",
            messages={"count": messages, "size": self.plan.message_size, "seed": seed},
            reps=reps,
            warmup=warmup,
            timeout=1800,
        )
        elapsed, stats1, cpu1 = (
            time.perf_counter() - started,
            self.stack.endpoint_stats(),
            self.stack.server_cpu(),
        )
        summary = summarize(answer["reps"], messages)
        served_ok = stats1["ok"] - stats0["ok"] - warmup
        acknowledged = messages * reps - summary["failures"]
        dead_lettered = summary["metrics"].get("DeadLettered", 0)
        # An acknowledged message must have been answered by the endpoint (or dead-lettered): any
        # shortfall would be a message deleted without a result.
        summary["lost"] = max(0, acknowledged - dead_lettered - served_ok)
        summary["endpoint_throttled"] = stats1["throttled"] - stats0["throttled"]
        summary["server_cpu_util"] = {k: (cpu1[k] - cpu0[k]) / elapsed for k in cpu0 if k in cpu1}
        summary["kind"] = instance.kind
        return summary

    # -- sections ----------------------------------------------------------------------------------------
    def calibrate(self) -> dict[str, Any]:
        """CPU of one bare boto3 invoke_endpoint call (0 ms latency), at the start and the end of the run:
        a drift check (the CPU limit uses the CPU section's interleaved rounds when that section runs)."""
        self.stack.set_endpoint(0)
        with self.stack.instance("bare") as bare:
            answer = bare.request(
                "bare",
                messages={"count": self.plan.bare_calls, "size": self.plan.message_size, "seed": 1},
                warmup=50,
            )
        calls = answer["calls"]
        result = {
            "calls": calls,
            "cpu_ms_per_call": 1000 * answer["cpu_s"] / calls,
            "user_ms_per_call": 1000 * answer["user_s"] / calls,
            "sys_ms_per_call": 1000 * answer["sys_s"] / calls,
            "wall_ms_per_call": 1000 * answer["wall_s"] / calls,
        }
        self.progress(f"bare boto3: {result['cpu_ms_per_call']:.3f} ms CPU per call")
        return result

    def cpu(self) -> dict[str, Any]:
        """Client CPU per message at 0 ms endpoint latency: the bare boto3 loop, the invoker at several
        MAX_CONCURRENCY settings and once without its per-message log lines (their share), and the
        textbook handler. Rounds visit every configuration in turn; each figure is the median over the
        rounds, and the ratio to the bare loop is the median of the per-round ratios."""
        plan = self.plan
        messages = plan.cpu_batch
        self.stack.set_endpoint(0)
        specs: list[tuple[str, str, int, dict[str, str]]] = [("bare", "bare", 1, {})]
        specs.append((f"bare-threads{plan.concurrency}", "bare", plan.concurrency, {}))
        specs += [(f"c{c}", "invoker", c, {}) for c in plan.cpu_concurrency]
        specs.append(
            (f"c{plan.concurrency}-nolog", "invoker", plan.concurrency, {"POWERTOOLS_LOG_LEVEL": "WARNING"})
        )
        specs.append(("textbook", "baseline", 1, {}))
        instances: dict[str, LambdaInstance] = {}
        rounds: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in specs}
        try:
            for label, kind, concurrency, env in specs:
                if kind == "invoker":
                    instances[label] = self._invoker(concurrency, label, **env)
                else:
                    instances[label] = self.stack.instance(kind, label=label)
            for index in range(plan.cpu_rounds):
                shift = index % len(specs)
                for label, kind, concurrency, _ in specs[shift:] + specs[:shift]:
                    instance = instances[label]
                    if kind == "bare":
                        answer = instance.request(
                            "bare",
                            messages={"count": messages, "size": plan.message_size, "seed": 100 + index},
                            warmup=20,
                            threads=concurrency,
                        )
                        rounds[label].append(
                            {
                                "messages": messages,
                                "wall_s": answer["wall_s"],
                                "cpu_ms_per_msg": 1000 * answer["cpu_s"] / messages,
                                "user_s": answer["user_s"],
                                "sys_s": answer["sys_s"],
                                "log_bytes_per_msg": 0.0,
                                "involuntary_switches_per_msg": 0.0,
                                "failures": 0,
                                "lost": 0,
                            }
                        )
                        continue
                    rounds[label].append(
                        self.measure(
                            instance,
                            messages,
                            reps=1,
                            warmup=min(messages, 2 * concurrency) if index == 0 else 0,
                            seed=100 + index,
                        )
                    )
        finally:
            for instance in instances.values():
                instance.close()
        bare = [r["cpu_ms_per_msg"] for r in rounds["bare"]]
        bare_threads = [r["cpu_ms_per_msg"] for r in rounds[f"bare-threads{plan.concurrency}"]]
        rows = []
        for label, kind, concurrency, env in specs:
            runs = rounds[label]
            cpu = [r["cpu_ms_per_msg"] for r in runs]
            row = {
                "side": {"bare": "bare", "invoker": "invoker", "baseline": "baseline"}[kind],
                "label": label,
                "concurrency": concurrency,
                "per_message_logs": kind != "bare" and not env,
                "threads": concurrency,
                "messages": messages,
                "rounds": len(runs),
                "cpu_ms_per_msg": statistics.median(cpu),
                "cpu_ms_per_msg_all": cpu,
                "vs_bare": statistics.median(c / b for c, b in zip(cpu, bare, strict=True)),
                "vs_bare_threads": statistics.median(c / b for c, b in zip(cpu, bare_threads, strict=True)),
                "wall_s": statistics.median(r["wall_s"] for r in runs),
                "user_s": statistics.median(r["user_s"] for r in runs),
                "sys_s": statistics.median(r["sys_s"] for r in runs),
                "log_bytes_per_msg": statistics.median(r["log_bytes_per_msg"] for r in runs),
                "involuntary_switches_per_msg": statistics.median(
                    r["involuntary_switches_per_msg"] for r in runs
                ),
                "failures": sum(r["failures"] for r in runs),
                "lost": sum(r["lost"] for r in runs),
            }
            row["msgs_per_s"] = messages / row["wall_s"]
            if kind == "invoker":
                row["metrics"] = {"Succeeded": sum(r["metrics"].get("Succeeded", 0) for r in runs)}
            rows.append(row)
            self.progress(f"cpu {label}: {row['cpu_ms_per_msg']:.3f} ms/msg ({row['vs_bare']:.2f}x bare)")
        return {"rows": rows}

    def matrix(self) -> dict[str, Any]:
        """Throughput at each endpoint latency and batch size: invoker (headline concurrency) and the
        textbook handler on the same messages; plus invoker-only points for the latency chart."""
        plan = self.plan
        rows = []
        with self._invoker(plan.concurrency) as invoker, self._baseline() as baseline:
            for latency in plan.latencies_ms:
                self.stack.set_endpoint(latency)
                for messages in plan.batches:
                    seed = 1000 + latency * 10 + messages
                    row = self.measure(
                        invoker,
                        messages,
                        reps=plan.reps_for(messages, baseline=False),
                        warmup=min(messages, 2 * plan.concurrency),
                        seed=seed,
                    )
                    row.update(side="invoker", concurrency=plan.concurrency, latency_ms=latency)
                    rows.append(row)
                    run = messages
                    if plan.baseline_max_messages is not None:
                        run = min(messages, plan.baseline_max_messages)
                    base = self.measure(
                        baseline, run, reps=plan.reps_for(messages, baseline=True), warmup=5, seed=seed
                    )
                    base.update(
                        side="baseline", concurrency=1, latency_ms=latency, extrapolated=run < messages
                    )
                    if run < messages:
                        scale = messages / run
                        base.update(
                            measured_messages=run,
                            messages=messages,
                            wall_s=base["wall_s"] * scale,
                            wall_s_min=base["wall_s_min"] * scale,
                            wall_s_max=base["wall_s_max"] * scale,
                        )
                    rows.append(base)
                    self.progress(
                        f"{latency} ms x {messages}: invoker {row['msgs_per_s']:.0f} msg/s, "
                        f"textbook {base['msgs_per_s']:.1f} msg/s{' (extrapolated)' if run < messages else ''}"
                    )
            for latency in plan.extra_latencies_ms:
                self.stack.set_endpoint(latency)
                row = self.measure(
                    invoker,
                    plan.sweep_batch,
                    reps=plan.extra_reps,
                    warmup=min(plan.sweep_batch, 2 * plan.concurrency),
                    seed=2000 + latency,
                )
                row.update(side="invoker", concurrency=plan.concurrency, latency_ms=latency, extra=True)
                rows.append(row)
                self.progress(f"{latency} ms x {plan.sweep_batch}: invoker {row['msgs_per_s']:.0f} msg/s")
        return {"rows": rows}

    def sweep(self) -> dict[str, Any]:
        """Throughput of one batch against MAX_CONCURRENCY, at each sweep latency."""
        plan = self.plan
        rows, skipped = [], []
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
            with self._invoker(concurrency) as instance:
                for latency, ideal in todo:
                    self.stack.set_endpoint(latency)
                    reps = 1 if plan.smoke or ideal > 5 else 3  # long points are steady enough once
                    row = self.measure(
                        instance,
                        plan.sweep_batch,
                        reps=reps,
                        warmup=min(plan.sweep_batch, 2 * concurrency),
                        seed=3000 + latency,
                    )
                    row.update(side="invoker", concurrency=concurrency, latency_ms=latency)
                    rows.append(row)
                    self.progress(f"sweep C={concurrency} @ {latency} ms: {row['msgs_per_s']:.0f} msg/s")
        return {"rows": rows, "skipped": skipped}

    def delivery(self) -> dict[str, Any]:
        """Results delivered to a real SQS queue on moto, against the same run with results discarded.
        Every result must be on the queue."""
        plan = self.plan
        latency = plan.delivery_latency_ms
        self.stack.set_endpoint(latency)
        rows = []
        for index, messages in enumerate(plan.delivery_batches):
            warmup = min(messages, 2 * plan.concurrency)
            seed = 4000 + messages
            with self._invoker(plan.concurrency, f"c{plan.concurrency}-discard") as instance:
                discard = self.measure(instance, messages, reps=1, warmup=warmup, seed=seed)
            discard.update(side="invoker", mode="discard", concurrency=plan.concurrency, latency_ms=latency)
            queue = self.stack.create_queue(f"bench-results-{index}-{messages}")
            with self._invoker(
                plan.concurrency, f"c{plan.concurrency}-deliver", results_queue_url=queue
            ) as instance:
                deliver = self.measure(instance, messages, reps=1, warmup=warmup, seed=seed)
            expected = warmup + messages - deliver["failures"]
            on_queue = self.stack.queue_depth(queue)
            deliver.update(
                side="invoker",
                mode="deliver",
                concurrency=plan.concurrency,
                latency_ms=latency,
                results_expected=expected,
                results_on_queue=on_queue,
                lost=deliver["lost"] + max(0, expected - on_queue),
            )
            rows += [discard, deliver]
            self.progress(
                f"delivery {messages}: discard {discard['msgs_per_s']:.0f} msg/s, deliver "
                f"{deliver['msgs_per_s']:.0f} msg/s, moto CPU {deliver['server_cpu_util'].get('moto', 0):.0%}, "
                f"{on_queue}/{expected} results on the queue"
            )
        return {"rows": rows, "moto_probe": self._moto_probe()}

    def _moto_probe(self) -> dict[str, Any]:
        """SendMessageBatch (10 x 1 KB) latency on moto at a few queue depths, from this process."""
        queue = self.stack.create_queue("bench-moto-probe")
        body = "x" * self.plan.message_size
        out = []
        depth = 0
        steps = (0, 100, 500, 1000) if not self.plan.smoke else (0, 50)
        for target in steps:
            while depth < target:
                self.stack.sqs.send_message_batch(
                    QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)]
                )
                depth += 10
            timings = []
            for _ in range(5):
                started = time.perf_counter()
                self.stack.sqs.send_message_batch(
                    QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)]
                )
                timings.append(time.perf_counter() - started)
                depth += 10
            out.append({"queue_depth": target, "send_batch_ms": 1000 * statistics.median(timings)})
        self.stack.sqs.delete_queue(QueueUrl=queue)
        return {"send_message_batch": out}

    def throttling(self) -> dict[str, Any]:
        """An endpoint of capacity K, the function configured far above it and right-sized, on the same
        messages. Each run is the event source mapping's loop over one batch: failed messages come back
        until every message is acknowledged (the function's backoff is not waited for; it is reported)."""
        plan = self.plan
        over, right = plan.throttle_concurrency
        self.stack.set_endpoint(plan.throttle_latency_ms, capacity=plan.throttle_capacity)
        runs: dict[int, list[dict[str, Any]]] = {over: [], right: []}
        try:
            with self._invoker(over) as over_instance, self._invoker(right) as right_instance:
                for rep in range(plan.throttle_reps):
                    for concurrency, instance in ((over, over_instance), (right, right_instance)):
                        runs[concurrency].append(self._drain(instance, 5000 + rep))
                        last = runs[concurrency][-1]
                        self.progress(
                            f"throttling C={concurrency}, capacity {plan.throttle_capacity}: "
                            f"{last['handler_wall_s']:.2f} s in {last['rounds']} round(s), "
                            f"{last['reattempts']} re-attempts, lost {last['lost']}"
                        )
        finally:
            self.stack.set_endpoint(0)
        return {
            "capacity": plan.throttle_capacity,
            "latency_ms": plan.throttle_latency_ms,
            "messages": plan.throttle_messages,
            "over": over,
            "right": right,
            "runs": {str(k): v for k, v in runs.items()},
        }

    def _drain(self, instance: LambdaInstance, seed: int) -> dict[str, Any]:
        messages = self.plan.throttle_messages
        stats0 = self.stack.endpoint_stats()
        answer = instance.request(
            "drain",
            messages={"count": messages, "size": self.plan.message_size, "seed": seed},
            max_rounds=12,
            timeout=1800,
        )
        stats1 = self.stack.endpoint_stats()
        rounds = answer["rounds"]

        def total(name: str) -> int:
            return sum(int(r["metrics"].get(name, 0)) for r in rounds)

        succeeded, dead = total("Succeeded"), total("DeadLettered")
        served_ok = stats1["ok"] - stats0["ok"]
        pending = answer["pending"]
        lost = messages - succeeded - dead - pending + max(0, succeeded - served_ok)
        return {
            "handler_wall_s": sum(r["wall_s"] for r in rounds),
            "first_round_wall_s": rounds[0]["wall_s"] if rounds else 0.0,
            "cpu_s": sum(r["cpu_s"] for r in rounds),
            "rounds": len(rounds),
            "retried": total("Retried"),
            "reattempts": total("InvocationReattempts"),
            "invocations": total("Invocations"),
            "succeeded": succeeded,
            "dead_lettered": dead,
            "pending": pending,
            "acknowledged": answer["acknowledged"],
            "lost": lost,
            "endpoint_requests": stats1["total"] - stats0["total"],
            "endpoint_throttled": stats1["throttled"] - stats0["throttled"],
            "endpoint_ok": served_ok,
            "concurrency_limit_min": min(
                (r["concurrency_limit_min"] for r in rounds if r.get("concurrency_limit_min") is not None),
                default=None,
            ),
            # What the retried messages would add in a deployment: the longest backoff of each round
            # before the next one can start.
            "backoff_wait_s": sum(max(r["retry_delays_s"], default=0.0) for r in rounds[:-1]),
        }

    def memory(self) -> dict[str, Any]:
        """Peak RSS of a fresh instance after one batch of `rss_messages` 1 KB messages."""
        plan = self.plan
        self.stack.set_endpoint(0)
        rows = []
        for kind in ("invoker", "baseline"):
            instance = self._invoker(plan.concurrency) if kind == "invoker" else self._baseline()
            with instance:
                idle = instance.request("rss")["maxrss_kb"]
                row = self.measure(instance, plan.rss_messages, reps=1, warmup=0, seed=6000)
                peak = instance.request("rss")["maxrss_kb"]
            rows.append(
                {
                    "side": kind,
                    "messages": plan.rss_messages,
                    "message_size": plan.message_size,
                    "maxrss_after_import_mb": idle / 1024,
                    "maxrss_mb": peak / 1024,
                    "lost": row["lost"],
                    "failures": row["failures"],
                }
            )
            self.progress(f"peak RSS {kind}: {peak / 1024:.1f} MB")
        return {"rows": rows}

    def cold_start(self) -> dict[str, Any]:
        """Import and initialisation in fresh interpreters, interleaved: the handler module, a bare
        `import boto3, aws_lambda_powertools`, and the textbook handler module."""
        statements = {
            "bare_import": "import boto3, aws_lambda_powertools",
            "invoker": "import invoker.handler",
            "baseline": "import bench.baseline",
            # Where the difference goes: what any handler of this design must do at cold start.
            "one_client": 'import boto3, aws_lambda_powertools; boto3.client("sagemaker-runtime")',
            "floor": (
                "import boto3; from aws_lambda_powertools import Logger, Metrics; "
                "from aws_lambda_powertools.utilities.batch import BatchProcessor; "
                'boto3.client("sagemaker-runtime"); boto3.client("sqs")'
            ),
        }
        env = {**self.stack.env, **self.stack.function_env(concurrency=self.plan.concurrency)}
        cpus = sorted(self.stack.layout.client)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in statements}
        names = list(statements)
        # One unmeasured run each: bytecode caches written, files in the page cache, as on a warm host.
        for name in names:
            _probe(statements[name], env, cpus)
        for run in range(self.plan.cold_runs):
            order = names[run % len(names) :] + names[: run % len(names)]
            for name in order:
                samples[name].append(_probe(statements[name], env, cpus))
        out: dict[str, Any] = {"runs": self.plan.cold_runs, "statements": statements}
        for name, runs in samples.items():
            out[name] = {
                key: statistics.median(run[key] for run in runs)
                for key in ("import_s", "import_cpu_s", "process_s", "maxrss_mb")
            }
            out[name]["import_s_all"] = [run["import_s"] for run in runs]
        out["profile"] = _cold_profile(env, cpus)
        self.progress(
            f"cold start: invoker {out['invoker']['import_s'] * 1000:.0f} ms, bare import "
            f"{out['bare_import']['import_s'] * 1000:.0f} ms"
        )
        return out

    def profile(self) -> dict[str, Any]:
        """py-spy over the instance while it runs batches at 0 ms latency: where the client CPU goes."""
        plan = self.plan
        if py_spy_path() is None:
            return {"skipped": "py-spy is not installed (add py-spy to the bench dependency group)"}
        self.stack.set_endpoint(0)
        with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
            output = str(Path(tmp) / "profile.txt")
            instance = self.stack.instance(
                "invoker",
                self.stack.function_env(concurrency=plan.concurrency),
                f"c{plan.concurrency}-profiled",
                wrapper=py_spy_command(output),
            )
            with instance:
                row = self.measure(
                    instance,
                    plan.profile_batch,
                    reps=plan.profile_reps,
                    warmup=min(plan.profile_batch, 2 * plan.concurrency),
                    seed=7000,
                )
            text = Path(output).read_text() if Path(output).exists() else ""
        summary = summarize_collapsed(text)
        summary.update(
            concurrency=plan.concurrency,
            messages=plan.profile_batch,
            reps=plan.profile_reps,
            cpu_ms_per_msg_while_profiled=row["cpu_ms_per_msg"],
        )
        self.progress(f"profile: {summary['samples']} samples in lambda_handler")
        return summary


_PROBE = """
import os, time
if {cpus!r} and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {cpus!r})
started, cpu = time.perf_counter(), time.process_time()
{statement}
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
import json, resource
print(json.dumps({{"import_s": elapsed, "import_cpu_s": cpu,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


_COLD_PROFILE = """
import os
if {cpus!r} and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {cpus!r})
import boto3, aws_lambda_powertools
import cProfile, json, pstats
profiler = cProfile.Profile()
profiler.enable()
import invoker.handler
profiler.disable()
stats = pstats.Stats(profiler).stats
total = max(ct for (_, _, _, ct, _) in stats.values())
rows = []
for (path, line, name), (_, _, _, ct, _) in stats.items():
    if path.startswith(("<", "~")) or name.startswith("<built-in"):
        continue
    short = path
    for marker in ("site-packages/", "functions/", "/lib/python3"):
        if marker in path:
            short = path.split(marker, 1)[1]
            short = short.split("/", 1)[1] if marker == "/lib/python3" else short
            break
    rows.append({{"function": short + ":" + name, "ms": ct * 1000, "percent": 100 * ct / total}})
rows.sort(key=lambda r: -r["ms"])
print(json.dumps({{"total_ms": total * 1000, "rows": rows[:25]}}))
"""


def _cold_profile(env: dict[str, str], cpus: list[int]) -> dict[str, Any]:
    """cProfile of `import invoker.handler` after a bare `import boto3, aws_lambda_powertools`: what the
    handler's cold start adds, by inclusive time (cProfile inflates it; the shares are what count)."""
    code = _COLD_PROFILE.format(cpus=set(cpus))
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _probe(statement: str, env: dict[str, str], cpus: list[int]) -> dict[str, float]:
    code = _PROBE.format(cpus=set(cpus), statement=statement)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    process_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold-start probe {statement!r} failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = process_s
    return result


__all__ = ["Runner", "summarize"]
