"""Result delivery to a real SQS queue on moto, against the same run with results discarded; and how
moto's SendMessageBatch latency grows with the queue's depth."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:
    from bench.measurements import DeliveryRow, DeliverySection, Measurement, MotoProbe, MotoSendTiming
    from bench.sections.measure import Session


def run(session: Session) -> DeliverySection:
    """Results delivered to a real SQS queue on moto, against the same run with results discarded.
    Every result must be on the queue."""
    plan = session.plan
    latency = plan.delivery_latency_ms
    session.stack.set_endpoint(latency)
    rows: list[DeliveryRow] = []
    for index, messages in enumerate(plan.delivery_batches):
        warmup = min(messages, 2 * plan.concurrency)
        seed = 4000 + messages
        with session.invoker(plan.concurrency, f"c{plan.concurrency}-discard") as instance:
            measured = session.measure(instance, messages, reps=1, warmup=warmup, seed=seed)
        discard = delivery_row(measured, "discard", plan.concurrency, latency)
        queue = session.stack.create_queue(f"bench-results-{index}-{messages}")
        with session.invoker(
            plan.concurrency, f"c{plan.concurrency}-deliver", results_queue_url=queue
        ) as instance:
            measured = session.measure(instance, messages, reps=1, warmup=warmup, seed=seed)
        expected = warmup + messages - measured["failures"]
        on_queue = session.stack.queue_depth(queue)
        deliver = delivery_row(measured, "deliver", plan.concurrency, latency)
        deliver["results_expected"] = expected
        deliver["results_on_queue"] = on_queue
        deliver["lost"] = measured["lost"] + max(0, expected - on_queue)
        rows += [discard, deliver]
        session.progress(
            f"delivery {messages}: discard {discard['msgs_per_s']:.0f} msg/s, deliver "
            f"{deliver['msgs_per_s']:.0f} msg/s, moto CPU {deliver['server_cpu_util'].get('moto', 0):.0%}, "
            f"{on_queue}/{expected} results on the queue"
        )
    return {"rows": rows, "moto_probe": moto_probe(session)}


def delivery_row(
    measured: Measurement, mode: Literal["discard", "deliver"], concurrency: int, latency_ms: int
) -> DeliveryRow:
    """The invoker's measurement with a delivery row's keys appended (in this order in raw/results.json)."""
    # A cast, not `{**measured, ...}`: mypy's strict checks refuse that for a type with optional keys.
    row = cast("DeliveryRow", {**measured})
    row["side"] = "invoker"
    row["mode"] = mode
    row["concurrency"] = concurrency
    row["latency_ms"] = latency_ms
    return row


def moto_probe(session: Session) -> MotoProbe:
    """SendMessageBatch (10 x 1 KB) latency on moto at a few queue depths, from this process."""
    sqs = session.stack.sqs
    queue = session.stack.create_queue("bench-moto-probe")
    body = "x" * session.plan.message_size
    out: list[MotoSendTiming] = []
    depth = 0
    steps = (0, 100, 500, 1000) if not session.plan.smoke else (0, 50)
    for target in steps:
        while depth < target:
            sqs.send_message_batch(
                QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)]
            )
            depth += 10
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            sqs.send_message_batch(
                QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)]
            )
            timings.append(time.perf_counter() - started)
            depth += 10
        out.append({"queue_depth": target, "send_batch_ms": 1000 * statistics.median(timings)})
    sqs.delete_queue(QueueUrl=queue)
    return {"send_message_batch": out}
