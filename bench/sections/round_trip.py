"""Result delivery against an SQS whose every call takes a real round trip (bench.slow_sqs), by
SendMessageBatch calls in flight per queue, beside the same run with results discarded: how many results
per second one instance delivers, against how many invocations per second it makes."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Literal, cast

from invoker.contract import Env

from bench.sections.delivery import delivery_row
from bench.slow_sqs import SlowSqs

if TYPE_CHECKING:
    from bench.measurements import Measurement, RoundTripRow, RoundTripSection
    from bench.plan import Plan
    from bench.sections.measure import Session


def run(session: Session) -> RoundTripSection:
    """Discarded first, then delivered with each bound; every result must arrive exactly once."""
    plan = session.plan
    session.stack.set_endpoint(plan.delivery_latency_ms)
    messages = plan.round_trip_messages
    warmup = min(messages, 2 * plan.concurrency)
    seed = 7000
    rows: list[RoundTripRow] = []
    with SlowSqs(plan.round_trip_sqs_ms) as sqs:
        env = {"AWS_ENDPOINT_URL_SQS": sqs.url, Env.DEAD_LETTER_QUEUE_URL: sqs.queue_url("bench-rt-dlq")}
        with session.invoker(plan.concurrency, "rt-discard", **env) as instance:
            measured = session.measure(instance, messages, reps=1, warmup=warmup, seed=seed)
        discard = round_trip_row(measured, None, sqs, plan, warmup)
        rows.append(discard)
        for bound in plan.round_trip_in_flight:
            sqs.reset()
            with session.invoker(
                plan.concurrency,
                f"rt-deliver-{bound}",
                results_queue_url=sqs.queue_url("bench-rt-results"),
                **{**env, Env.SQS_SENDS_IN_FLIGHT: str(bound)},
            ) as instance:
                measured = session.measure(instance, messages, reps=1, warmup=warmup, seed=seed)
            row = round_trip_row(measured, bound, sqs, plan, warmup)
            rows.append(row)
            session.progress(
                f"round trip {plan.round_trip_sqs_ms} ms, {bound} in flight: {row['msgs_per_s']:.0f} results/s "
                f"(discarded: {discard['msgs_per_s']:.0f} invocations/s), {row['sqs_calls']} calls, "
                f"{row['results_on_queue']}/{row['results_expected']} results, {row['duplicates']} twice"
            )
    return {"sqs_round_trip_ms": plan.round_trip_sqs_ms, "rows": rows}


def round_trip_row(
    measured: Measurement, bound: int | None, sqs: SlowSqs, plan: Plan, warmup: int
) -> RoundTripRow:
    """The measurement with the stand-in's counts: results that arrived (by request id), twice or more."""
    mode: Literal["discard", "deliver"] = "discard" if bound is None else "deliver"
    row = cast("RoundTripRow", delivery_row(measured, mode, plan.concurrency, plan.delivery_latency_ms))
    row["sends_in_flight"] = bound
    row["sqs_calls"] = sqs.calls
    row["most_calls_in_flight"] = sqs.most_in_flight
    row["other_sqs_calls"] = dict(sqs.other_calls)
    arrived = Counter(json.loads(body)["requestId"] for body in sqs.bodies.elements())
    row["duplicates"] = sum(count - 1 for count in arrived.values())
    if bound is not None:
        # The warm-up batch's results arrive too (its own request ids).
        expected = measured["messages"] + warmup - measured["failures"]
        row["results_expected"] = expected
        row["results_on_queue"] = len(arrived)
        row["lost"] = measured["lost"] + max(0, expected - len(arrived))
    return row
