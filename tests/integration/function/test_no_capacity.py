"""Capacity changes under the real handler: an endpoint at zero copies answers the no-capacity
ValidationError; the function puts the messages back (no_capacity) and delivers them after the scale-out."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tests.support.function_harness import ENDPOINT

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.local.sagemaker import SageMakerEmulator

MESSAGES = 5
PROVISIONING_S = 1.5
POLL_EVERY_S = 1.2  # longer than the largest backoff draw (RETRY_MAX_SECONDS=1): each poll sees them all


def retry_reasons(caplog: Any) -> list[str]:
    return [getattr(r, "reason", "") for r in caplog.records if getattr(r, "disposition", None) == "retry"]


def test_nothing_is_dead_lettered_while_the_endpoint_scales_out_from_zero(
    run_function: Any, emulator: SageMakerEmulator, caplog: Any
) -> None:
    # GIVEN an endpoint scaled to zero and a route whose backoff is the normal one (1 s here)
    fn = run_function(max_receive_count=5, RETRY_BASE_SECONDS="1", RETRY_MAX_SECONDS="1", MAX_CONCURRENCY="1")
    emulator.set_capacity(ENDPOINT, 0)
    try:
        sent = {fn.send({"bodyText": str(i), "requestId": f"r-{i}"}) for i in range(MESSAGES)}

        # WHEN a batch arrives while there is no capacity
        first = fn.poll_once()

        # THEN every message is put back as no_capacity, none dead-lettered or lost
        assert first["received"] == MESSAGES
        assert {f["itemIdentifier"] for f in first["batchItemFailures"]} == sent
        assert retry_reasons(caplog) == ["no_capacity"] * MESSAGES
        assert fn.dead_letters() == []
        assert fn.remaining() == MESSAGES
        # AND one call saw it: the rest of the batch was not invoked, nothing was re-attempted in the batch
        assert emulator.stats(ENDPOINT)["no_capacity"] == 1

        # WHEN the endpoint scales out, its instance serving only after a provisioning delay
        emulator.set_capacity(ENDPOINT, 1, provisioning_s=PROVISIONING_S)
        results: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while len(results) < MESSAGES and time.monotonic() < deadline:
            time.sleep(POLL_EVERY_S)
            fn.poll_once()
            results += fn.results()

        # THEN every message is delivered once, after at least one more receive, and none dead-lettered
        assert sorted(r["requestId"] for r in results) == [f"r-{i}" for i in range(MESSAGES)]
        assert all(r["receiveCount"] >= 2 for r in results)
        assert fn.dead_letters() == []
        assert fn.remaining() == 0
        # AND every retry on the way was no_capacity (the provisioning window), never a dead-letter reason
        assert set(retry_reasons(caplog)) == {"no_capacity"}
        stats = emulator.stats(ENDPOINT)
        assert (stats["ok"], stats["validation_error"]) == (MESSAGES, 0)
    finally:
        emulator.set_capacity(ENDPOINT, 1)
