"""The state the threads of one batch share. The processor creates it in Powertools' `_prepare` hook."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from invoker.observability import BatchObservations
from invoker.retries import PendingRetries

if TYPE_CHECKING:
    from collections.abc import Callable

    from invoker.concurrency import Gate
    from invoker.contract import Reason


@dataclass(slots=True)
class Batch:
    """What one batch has learnt so far; shared by the threads working on it."""

    remaining_ms: Callable[[], int] | None
    observed: BatchObservations = field(default_factory=BatchObservations)
    retries: PendingRetries = field(default_factory=PendingRetries)
    # Set by the first answer that stops the batch (outcomes.STOPS_THE_BATCH: not ready, no capacity),
    # with its reason and what the endpoint said: the rest of the batch is not invoked.
    stopped: tuple[Reason, str] | None = None
    # Shared capacity: the batch's lease bounds its calls in flight (None: the instance's own limiter).
    gate: Gate | None = None
    # Shared capacity refused the batch before any call (no capacity, or every slot leased elsewhere):
    # every record goes back with this reason, unparsed and uninvoked.
    handed_back: tuple[Reason, str] | None = None
