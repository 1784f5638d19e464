"""The request ledger's state machine, as DynamoDB enforces it: which state a request may move to from which,
and the one condition expression that admits exactly those moves (with their guards), whatever instance
writes. Pure: the writes themselves are in invoker.ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from invoker.contract import LedgerState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

ENDED: Final = frozenset({LedgerState.DELIVERED, LedgerState.DEAD_LETTERED})

# The state machine: which states a write may move a request out of, per target state (None: no item
# yet). Guards always apply on top: out of INVOKING only when its claim has expired or is the writer's
# own; out of DELIVERED / DEAD_LETTERED only when the request ended before the dedupe window (a
# dead-lettered one also when the message is a redrive of its letter). Every other move, notably an
# ended request going back (delivered -> invoking within the window), is refused by the write's
# condition, in DynamoDB, whatever instance tries it.
ALLOWED_FROM: Final[dict[LedgerState, frozenset[LedgerState | None]]] = {
    LedgerState.RECEIVED: frozenset({None}),
    LedgerState.INVOKING: frozenset(
        {None, LedgerState.RECEIVED, LedgerState.RETRYING, LedgerState.INVOKING, *ENDED}
    ),
    LedgerState.RETRYING: frozenset({None, LedgerState.RECEIVED, LedgerState.RETRYING, LedgerState.INVOKING}),
    LedgerState.DELIVERED: frozenset(
        {None, LedgerState.RECEIVED, LedgerState.RETRYING, LedgerState.INVOKING}
    ),
    LedgerState.DEAD_LETTERED: frozenset(
        {None, LedgerState.RECEIVED, LedgerState.RETRYING, LedgerState.INVOKING}
    ),
}


@dataclass(frozen=True, slots=True)
class Claim:
    """This delivery holds the request until `until` (epoch seconds)."""

    key: str
    token: str
    until: float


@dataclass(frozen=True, slots=True)
class Original:
    """How a request already ended: what a duplicate is answered with."""

    state: LedgerState
    reason: str | None
    message_id: str | None
    result_message_id: str | None
    result_s3_uri: str | None
    ended_at_ms: int | None

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"original_state": self.state.value, "original_message_id": self.message_id}
        for name, value in (
            ("original_reason", self.reason),
            ("result_message_id", self.result_message_id),
            ("result_s3_uri", self.result_s3_uri),
            ("original_ended_at_ms", self.ended_at_ms),
        ):
            if value is not None:
                fields[name] = value
        return fields


class Duplicate(Exception):  # an answer, not a failure: the message is acknowledged
    """The request already ended within the dedupe window: not invoked again, no second result."""

    def __init__(self, original: Original) -> None:
        super().__init__(f"request already {original.state.value}")
        self.original = original


def transition_condition(
    target: LedgerState, *, now: float, dedupe_seconds: int, claim: Claim | None, redrive: bool
) -> tuple[str, dict[str, AttributeValueTypeDef]]:
    """The ConditionExpression (and its values) that admits exactly ALLOWED_FROM[target] with its guards."""
    parts: list[str] = []
    values: dict[str, AttributeValueTypeDef] = {}
    for previous in sorted(ALLOWED_FROM[target], key=lambda s: s or ""):
        if previous is None:
            parts.append("attribute_not_exists(#pk)")
            continue
        name = f":from_{previous.value}"
        values[name] = attr_s(previous.value)
        if previous is LedgerState.INVOKING:
            values[":now"] = attr_n(round(now, 3))
            guard = "#claimUntil < :now"
            if claim is not None:
                values[":mine"] = attr_s(claim.token)
                guard += " OR #claimToken = :mine"
            parts.append(f"(#state = {name} AND ({guard}))")
        elif previous in ENDED:
            values[":cutoff"] = attr_n(int((now - dedupe_seconds) * 1000))
            if previous is LedgerState.DEAD_LETTERED and redrive:
                parts.append(f"#state = {name}")
            else:
                parts.append(f"(#state = {name} AND #endedAt < :cutoff)")
        else:
            parts.append(f"#state = {name}")
    return " OR ".join(parts), values


def attr_s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def attr_n(value: float) -> AttributeValueTypeDef:
    return {"N": str(value)}


def text_of(value: Any) -> Any:
    return value.get("S") if isinstance(value, dict) else None


def number_of(value: Any) -> Any:
    raw = value.get("N") if isinstance(value, dict) else None
    if raw is None:
        return None
    number = float(raw)
    return int(number) if number.is_integer() else number
