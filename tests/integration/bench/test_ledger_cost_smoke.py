"""bench.ledger_cost at smoke size: it runs, and counts the ledger's calls as the docs state them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bench import ledger_cost

if TYPE_CHECKING:
    import pytest


def test_ledger_cost_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN two batches per side WHEN measured
    ledger_cost.main(["--batches", "2", "--latency-ms", "0"])
    summary = json.loads(capsys.readouterr().out)
    # THEN a message costs two ledger writes with the ledger, none without
    assert summary["without_ledger"]["dynamodb_calls_per_message"] == 0
    assert summary["with_ledger"]["dynamodb_calls_per_message"] == 2
    assert summary["with_ledger"]["messages"] == summary["without_ledger"]["messages"] == 20
