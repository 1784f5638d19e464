"""Throttling: an endpoint of capacity K, the function configured far above it and right-sized, on the
same messages, each run replaying the event source mapping's loop until every message is acknowledged."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.instances import LambdaInstance
    from bench.measurements import ThrottlingRun, ThrottlingSection
    from bench.sections.measure import Session

# Rounds of the event source mapping's loop before a run stops with messages still pending.
MAX_ROUNDS = 12


def run(session: Session) -> ThrottlingSection:
    """An endpoint of capacity K, the function configured far above it and right-sized, on the same
    messages. Each run is the event source mapping's loop over one batch: failed messages come back
    until every message is acknowledged (the function's backoff is not waited for; it is reported)."""
    plan = session.plan
    over, right = plan.throttle_concurrency
    session.stack.set_endpoint(plan.throttle_latency_ms, capacity=plan.throttle_capacity)
    runs: dict[int, list[ThrottlingRun]] = {over: [], right: []}
    try:
        with session.invoker(over) as over_instance, session.invoker(right) as right_instance:
            for rep in range(plan.throttle_reps):
                for concurrency, instance in ((over, over_instance), (right, right_instance)):
                    runs[concurrency].append(drain(session, instance, 5000 + rep))
                    last = runs[concurrency][-1]
                    session.progress(
                        f"throttling C={concurrency}, capacity {plan.throttle_capacity}: "
                        f"{last['handler_wall_s']:.2f} s in {last['rounds']} round(s), "
                        f"{last['reattempts']} re-attempts, lost {last['lost']}"
                    )
    finally:
        session.stack.set_endpoint(0)
    return {
        "capacity": plan.throttle_capacity,
        "latency_ms": plan.throttle_latency_ms,
        "messages": plan.throttle_messages,
        "over": over,
        "right": right,
        "runs": {str(k): v for k, v in runs.items()},
    }


def drain(session: Session, instance: LambdaInstance, seed: int) -> ThrottlingRun:
    messages = session.plan.throttle_messages
    stats0 = session.stack.endpoint_stats()
    answer = instance.drain(session.messages(messages, seed), max_rounds=MAX_ROUNDS, timeout=1800)
    stats1 = session.stack.endpoint_stats()
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
            (limit for r in rounds if (limit := r["concurrency_limit_min"]) is not None),
            default=None,
        ),
        # What the retried messages would add in a deployment: the longest backoff of each round
        # before the next one can start.
        "backoff_wait_s": sum(max(r["retry_delays_s"], default=0.0) for r in rounds[:-1]),
    }
