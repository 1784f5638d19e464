"""Lambda's reading of a function's ``ReportBatchItemFailures`` response: which messages failed, or why the
response makes the whole batch a failure."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


class _InvalidResponse(ValueError):
    """Why Lambda would treat a function's response as a failure of the whole batch."""


def parse_batch_response(payload: str | None, message_ids: Sequence[str]) -> tuple[list[str], str | None]:
    """Lambda's reading of a ``ReportBatchItemFailures`` response: (failed ids, why it is invalid)."""
    try:
        items = _failure_items(payload)
        known = set(message_ids)
        failed: list[str] = []
        for item in items:
            identifier = _item_identifier(item, known)
            if identifier not in failed:
                failed.append(identifier)
    except _InvalidResponse as exc:
        return [], str(exc)
    return failed, None


def _failure_items(payload: str | None) -> list[Any]:
    """The response's batchItemFailures (none when the response or the member is null)."""
    try:
        value: Any = json.loads(payload) if payload is not None else None
    except json.JSONDecodeError as exc:
        raise _InvalidResponse("response is not JSON") from exc
    if value is None:
        return []
    if not isinstance(value, dict):
        raise _InvalidResponse(f"response is a {type(value).__name__}, not an object")
    items = value.get("batchItemFailures")
    if items is None:
        return []
    if not isinstance(items, list):
        raise _InvalidResponse("batchItemFailures is not a list")
    return items


def _item_identifier(item: Any, known: set[str]) -> str:
    if not isinstance(item, dict) or "itemIdentifier" not in item:
        raise _InvalidResponse(f"batchItemFailures item without itemIdentifier: {item!r}")
    identifier = item["itemIdentifier"]
    if not isinstance(identifier, str) or not identifier:
        raise _InvalidResponse(f"itemIdentifier is null or empty: {identifier!r}")
    if identifier not in known:
        raise _InvalidResponse(f"itemIdentifier {identifier!r} is not a message of this batch")
    return identifier
