"""From raw measurements to the figures the issue asks for: bounds, ratios, targets, the scale model."""

from __future__ import annotations

import math
import statistics
from typing import Any

from bench.plan import (
    ARM64_PRICE_PER_GB_S,
    ESM_MAX_CONCURRENCY,
    LAMBDA_MEMORY_MB,
    MB_PER_VCPU,
    PRICE_PER_MILLION_REQUESTS,
)


def bare_cpu_ms(results: dict[str, Any]) -> float:
    """CPU of one bare boto3 call: the median of the CPU section's rounds (interleaved with the handlers),
    else the mean of the calibrations at the start and the end of the run."""
    for row in results["sections"].get("cpu", {}).get("rows", []):
        if row["label"] == "bare":
            return float(row["cpu_ms_per_msg"])
    values = [c["cpu_ms_per_call"] for c in results["sections"].get("calibration", [])]
    return statistics.fmean(values) if values else float("nan")


def with_bounds(row: dict[str, Any], cpu_ms: float) -> dict[str, Any]:
    """Ideal time ceil(N/C) x latency, client CPU limit N x one bare call, and the ratios to them."""
    messages, concurrency, latency = row["messages"], row["concurrency"], row.get("latency_ms", 0)
    ideal = math.ceil(messages / concurrency) * latency / 1000
    cpu_limit = messages * cpu_ms / 1000
    bound = max(ideal, cpu_limit)
    return {
        **row,
        "ideal_s": ideal,
        "cpu_limit_s": cpu_limit,
        "bound_s": bound,
        "ratio_to_bound": row["wall_s"] / bound if bound > 0 else None,
        "ratio_to_ideal": row["wall_s"] / ideal if ideal > 0 else None,
    }


def throughput(results: dict[str, Any]) -> list[dict[str, Any]]:
    cpu_ms = bare_cpu_ms(results)
    rows = [with_bounds(r, cpu_ms) for r in results["sections"].get("matrix", {}).get("rows", [])]
    baseline = {(r["latency_ms"], r["messages"]): r for r in rows if r["side"] == "baseline"}
    for row in rows:
        base = baseline.get((row["latency_ms"], row["messages"]))
        if row["side"] == "invoker" and base is not None and base["msgs_per_s"] > 0:
            row["speedup_vs_textbook"] = row["msgs_per_s"] / base["msgs_per_s"]
    return rows


def sweep(results: dict[str, Any]) -> list[dict[str, Any]]:
    cpu_ms = bare_cpu_ms(results)
    return [with_bounds(r, cpu_ms) for r in results["sections"].get("sweep", {}).get("rows", [])]


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()) and not row.get("extra"):
            return row
    return None


def _target(name: str, goal: str, measured: str, passed: bool | None, detail: str = "") -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": measured, "passed": passed, "detail": detail}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    plan = results["plan"]
    sections = results["sections"]
    rows = throughput(results)
    out = []
    batch = max(plan["batches"])
    low, high = min(plan["latencies_ms"]), max(plan["latencies_ms"])
    fast = _find(rows, side="invoker", latency_ms=low, messages=batch)
    if fast is not None:
        speedup = fast.get("speedup_vs_textbook")
        out.append(
            _target(
                f"batch {batch} @ {low} ms: throughput vs textbook",
                ">= 20x",
                f"{speedup:.1f}x ({fast['msgs_per_s']:.0f} vs {fast['msgs_per_s'] / speedup:.1f} msg/s)"
                if speedup
                else "n/a",
                speedup is not None and speedup >= 20,
            )
        )
        out.append(
            _target(
                f"batch {batch} @ {low} ms: wall vs max(ideal, CPU limit)",
                "<= 1.25x",
                f"{fast['ratio_to_bound']:.2f}x ({fast['wall_s']:.3f} s vs max({fast['ideal_s']:.3f}, "
                f"{fast['cpu_limit_s']:.3f}) s)",
                fast["ratio_to_bound"] <= 1.25,
            )
        )
    slow = _find(rows, side="invoker", latency_ms=high, messages=batch) if high != low else None
    if slow is not None:
        out.append(
            _target(
                f"batch {batch} @ {high} ms: wall vs ideal",
                "<= 1.15x",
                f"{slow['ratio_to_ideal']:.2f}x ({slow['wall_s']:.3f} s vs {slow['ideal_s']:.3f} s)",
                slow["ratio_to_ideal"] <= 1.15,
            )
        )
    cpu_rows = sections.get("cpu", {}).get("rows", [])
    headline = _find(cpu_rows, side="invoker", label=f"c{plan['concurrency']}")
    cpu_ms = bare_cpu_ms(results)
    if headline is not None:
        per_msg = headline["cpu_ms_per_msg"]
        ratio = headline["vs_bare"]
        out.append(
            _target(
                f"client CPU per message (MAX_CONCURRENCY {plan['concurrency']}, 0 ms)",
                "<= 1.0 ms",
                f"{per_msg:.3f} ms",
                per_msg <= 1.0,
            )
        )
        out.append(
            _target(
                "client CPU vs bare boto3 loop",
                "<= 1.15x",
                f"{ratio:.2f}x ({per_msg:.3f} vs {cpu_ms:.3f} ms; median of {headline['rounds']} paired rounds)",
                ratio <= 1.15,
            )
        )
    cold = sections.get("cold_start")
    if cold:
        ratio = cold["invoker"]["import_s"] / cold["bare_import"]["import_s"]
        out.append(
            _target(
                "cold start vs bare boto3 + Powertools import",
                "<= 1.3x",
                f"{ratio:.2f}x ({cold['invoker']['import_s'] * 1000:.0f} vs "
                f"{cold['bare_import']['import_s'] * 1000:.0f} ms, median of {cold['runs']})",
                ratio <= 1.3,
            )
        )
    memory = _find(sections.get("memory", {}).get("rows", []), side="invoker")
    if memory is not None:
        out.append(
            _target(
                f"peak RSS, {memory['messages']} messages of {memory['message_size']} B",
                "< 128 MB",
                f"{memory['maxrss_mb']:.1f} MB",
                memory["maxrss_mb"] < 128,
            )
        )
    throttle = throttling(results)
    if throttle:
        out.append(
            _target(
                f"throttling: MAX_CONCURRENCY {throttle['over']} vs {throttle['right']} on capacity "
                f"{throttle['capacity']}",
                "<= 1.5x",
                f"{throttle['ratio']:.2f}x ({throttle['over_wall_s']:.2f} vs {throttle['right_wall_s']:.2f} s)",
                throttle["ratio"] <= 1.5,
            )
        )
    lost = total_lost(results)
    out.append(_target("messages lost (every run)", "0", str(lost), lost == 0))
    return out


def throttling(results: dict[str, Any]) -> dict[str, Any] | None:
    section = results["sections"].get("throttling")
    if not section:
        return None
    over = section["runs"][str(section["over"])]
    right = section["runs"][str(section["right"])]
    over_wall = statistics.median(r["handler_wall_s"] for r in over)
    right_wall = statistics.median(r["handler_wall_s"] for r in right)
    return {
        **section,
        "over_wall_s": over_wall,
        "right_wall_s": right_wall,
        "ratio": over_wall / right_wall,
        "first_ratio": over[0]["handler_wall_s"] / right[0]["handler_wall_s"],
        "with_backoff_ratio": statistics.median(r["handler_wall_s"] + r["backoff_wait_s"] for r in over)
        / statistics.median(r["handler_wall_s"] + r["backoff_wait_s"] for r in right),
    }


def total_lost(results: dict[str, Any]) -> int:
    sections = results["sections"]
    lost = 0
    for name in ("cpu", "matrix", "sweep", "delivery", "memory"):
        lost += sum(int(r.get("lost", 0)) for r in sections.get(name, {}).get("rows", []))
    for runs in (sections.get("throttling") or {}).get("runs", {}).values():
        lost += sum(int(r["lost"]) for r in runs)
    return lost


def scale_model(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-instance and fleet throughput, and Lambda cost per million messages, from measured rows.

    Measured: one batch on one dedicated CPU (Lambda at 1,769 MB). Modelled for 512 MB, where Lambda
    gives 512/1769 of a vCPU: a concurrent handler's wall time becomes max(measured, CPU / share); a
    sequential handler's grows by its CPU x (1/share - 1)."""
    plan = results["plan"]
    share = LAMBDA_MEMORY_MB / MB_PER_VCPU
    candidates = [r for r in throughput(results) + sweep(results) if not r.get("extra")]
    batch = max(plan["batches"])
    chosen: dict[tuple[str, int, int], dict[str, Any]] = {}
    for row in candidates:
        if row["messages"] != batch or row.get("latency_ms") not in plan["latencies_ms"]:
            continue
        key = (row["side"], row["concurrency"], row["latency_ms"])
        chosen.setdefault(key, row)
    out = []
    for (side, concurrency, latency), row in sorted(
        chosen.items(), key=lambda kv: (kv[0][2], kv[0][0] != "baseline", kv[0][1])
    ):
        if side == "invoker" and concurrency not in (16, plan["concurrency"]):
            continue
        wall = float(row["wall_s"])
        messages = int(row["messages"])
        cpu_s = row["cpu_ms_per_msg"] * messages / 1000
        # Sequential: CPU and waiting add up. Concurrent: CPU overlaps the waiting.
        wall_512 = wall + cpu_s * (1 / share - 1) if side == "baseline" else max(wall, cpu_s / share)
        out.append(
            {
                "side": side,
                "concurrency": concurrency,
                "latency_ms": latency,
                "batch": row["messages"],
                "msgs_per_s_1vcpu": row["messages"] / wall,
                "msgs_per_s_512mb": row["messages"] / wall_512,
                "fleet_msgs_per_s_512mb": ESM_MAX_CONCURRENCY * row["messages"] / wall_512,
                "endpoint_in_flight_at_fleet": ESM_MAX_CONCURRENCY * concurrency,
                "cost_per_million_512mb": cost_per_million(messages, wall_512, LAMBDA_MEMORY_MB),
                "cost_per_million_1769mb": cost_per_million(messages, wall, MB_PER_VCPU),
                "wall_s": wall,
                "wall_s_512mb": wall_512,
            }
        )
    return out


def cost_per_million(batch: int, seconds: float, memory_mb: int) -> float:
    """Lambda's price of a million messages in batches of `batch`, each invocation `seconds` long."""
    invocations = 1_000_000 / batch
    gb = memory_mb / 1024
    return invocations * (seconds * gb * ARM64_PRICE_PER_GB_S + PRICE_PER_MILLION_REQUESTS / 1_000_000)
