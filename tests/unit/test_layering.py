"""The layering, as import-linter checks it (contracts in pyproject.toml, [tool.importlinter]): the
function imports nothing of the project around it, its contract nothing but the standard library, the
CDK constructs nothing of the function but that contract, and no package imports itself in a circle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = (
    "The function imports nothing of the project around it",
    "The function's contract is pure standard library",
    "The CDK constructs import nothing of the function but its contract",
    "The scaling policy is pure: the stack and the local autoscaler share it",
    "No import cycles in the function or the installed package",
)


def test_every_layering_contract_is_kept() -> None:
    # GIVEN the tree as it is WHEN import-linter checks the contracts (no cache: always the files on disk)
    lint_imports = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    # THEN each contract was checked and kept
    assert run.returncode == 0, run.stdout + run.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in run.stdout, run.stdout
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in run.stdout
