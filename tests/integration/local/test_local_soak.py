"""Soak: thousands of requests through the local stack with a fault mix; nothing is lost.

Size: SOAK_MESSAGES (default 2000, what CI runs, about 30 s). Every request must end exactly once in the results
queue or in the DLQ with the reason its kind calls for; a repeated result (at-least-once delivery) is
reported, not counted as a loss.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec, FaultSpec
from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions
from tests.support.local_stack import OutcomeCollector
from tests.support.polling import wait_for

if TYPE_CHECKING:
    from pathlib import Path


SOAK_MESSAGES = int(os.environ.get("SOAK_MESSAGES", "2000"))
BACKLOG = 100

CONTEXT: dict[str, Any] = {
    "invoker": {
        "stackName": "LocalSoak",
        "routes": [
            {
                "name": "soak",
                "endpointName": "soak-ep",
                "batchSize": 10,
                "maxConcurrency": 3,
                "endpointCallsInFlight": 16,
                "maxReceiveCount": 10,
                "retryBaseSeconds": 1,
                "retryMaxSeconds": 4,
            }
        ],
    }
}

# Transient faults on every call (about 12% in all); the kinds below add permanent ones per message.
FAULTS = FaultSpec(
    throttle_rate=0.05,
    service_unavailable_rate=0.03,
    internal_failure_rate=0.02,
    internal_dependency_rate=0.01,
    model_not_ready_rate=0.01,
    latency_ms=2.0,
    latency_jitter_ms=4.0,
    seed=11,
)

# kind -> (share, expected place, expected reason)
KINDS: dict[str, tuple[float, str, str | None]] = {
    "valid": (0.85, "result", None),
    "malformed": (0.05, "dlq", "invalid_message"),
    "rejected": (0.05, "dlq", "model_error"),
    "validation": (0.05, "dlq", "validation_error"),
}


def _workload(count: int) -> list[tuple[str, str, str]]:
    """(request id, kind, body) in shuffled order."""
    rng = random.Random(5)
    kinds = [k for k, (share, _, _) in KINDS.items() for _ in range(round(count * share))]
    kinds = (kinds + ["valid"] * count)[:count]
    rng.shuffle(kinds)
    work: list[tuple[str, str, str]] = []
    for i, kind in enumerate(kinds):
        rid = f"soak-{i:06d}"
        envelope: dict[str, Any] = {"requestId": rid, "body": {"n": i}}
        if kind == "malformed":
            envelope = {"requestId": rid, "body": {"n": i}, "bodyText": "two bodies"}
        elif kind == "rejected":
            envelope["customAttributes"] = "echo-status=422"
        elif kind == "validation":
            envelope["targetVariant"] = "NoSuchVariant"
        work.append((rid, kind, json.dumps(envelope)))
    return work


@pytest.mark.soak
def test_soak_every_request_ends_exactly_once_where_expected(tmp_path: Path) -> None:
    # GIVEN the local stack with an endpoint that fails about 12% of calls transiently
    options = StackOptions(
        context=CONTEXT,
        endpoints={"soak-ep": EndpointSpec(name="soak-ep", container="echo", faults=FAULTS)},
        state_dir=tmp_path,
        prewarm=True,
    )
    work = _workload(SOAK_MESSAGES)
    expected = {rid: KINDS[kind][1:] for rid, kind, _ in work}
    started = time.monotonic()
    with LocalStack(options) as stack:
        collector = OutcomeCollector(stack).start()
        try:
            # WHEN the whole workload is sent in batches of 10, by a producer that keeps at most
            # BACKLOG requests unsettled (moto's SQS slows down with the depth of a queue)
            sqs = stack.sqs()
            url = stack.route("soak").request_queue_url
            for start in range(0, len(work), 10):
                wait_for(
                    lambda sent=start: sent - len(collector.outcomes) < BACKLOG,  # type: ignore[misc]
                    timeout=120,
                    what="the backlog to shrink",
                )
                chunk = work[start : start + 10]
                entries = [{"Id": str(i), "MessageBody": body} for i, (_, _, body) in enumerate(chunk)]
                response = sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
                assert not response.get("Failed")
            sent_in = time.monotonic() - started
            outcomes = collector.wait(list(expected), timeout=240)
            # Late repeats: give at-least-once delivery a moment to show any, then stop.
            time.sleep(1.0)
        finally:
            collector.stop()
        assert stack.esm is not None
        assert stack.emulator is not None
        stats = stack.esm.stats("soak")
        answers = stack.emulator.stats("soak-ep")
    elapsed = time.monotonic() - started

    # THEN every request has exactly one final place, the expected one
    wrong = {
        rid: (o.place, o.document.get("invoker.reason"))
        for rid, o in outcomes.items()
        if (o.place, o.document.get("invoker.reason") if o.place == "dlq" else None) != expected[rid]
    }
    in_two_places = {
        rid: sorted({o.place for o in collector.get(rid)})
        for rid in expected
        if len({o.place for o in collector.get(rid)}) > 1
    }
    duplicates = {rid: len(collector.get(rid)) for rid in expected if len(collector.get(rid)) > 1}
    unknown = set(collector.outcomes) - set(expected)
    places = Counter(
        o.place if o.place == "result" else o.document.get("invoker.reason") for o in outcomes.values()
    )
    print(
        f"\nsoak: {len(work)} requests in {elapsed:.1f} s (sent in {sent_in:.1f} s): {dict(places)}; "
        f"repeated results (at-least-once, not losses): {len(duplicates)}; batches {stats.batches}, "
        f"records {stats.records}, returned {stats.item_failures}, failed batches {dict(stats.batch_failures)}; "
        f"endpoint { ({k: v for k, v in answers.items() if v}) }"
    )
    assert wrong == {}
    assert in_two_places == {}
    assert unknown == set()
    assert answers["throttled"] > 0
    assert answers["service_unavailable"] > 0
