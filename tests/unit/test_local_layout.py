"""The local stack stays readable, and each stand-in for AWS exists once: one moto starter, one Lambda
context, one SQS record builder, which the local stack, the benchmarks and the tests all use."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "sqs_sagemaker_invoker" / "local"
MAX_LINES = 400


def _sources() -> dict[str, str]:
    """Every Python file of the package, the benchmarks, the scripts and the tests, but this one."""
    found: dict[str, str] = {}
    for top in ("sqs_sagemaker_invoker", "bench", "scripts", "tests"):
        for path in (ROOT / top).rglob("*.py"):
            if path.resolve() != Path(__file__).resolve():
                found[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
    return found


def _defining(pattern: str) -> set[str]:
    return {name for name, text in _sources().items() if re.search(pattern, text, re.MULTILINE)}


def test_no_local_stack_module_is_over_400_lines() -> None:
    # GIVEN every module of the local stack WHEN its lines are counted THEN none is over the limit
    lengths = {
        path.relative_to(LOCAL).as_posix(): len(path.read_text().splitlines()) for path in LOCAL.rglob("*.py")
    }
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_moto_is_started_in_one_place() -> None:
    # GIVEN the whole tree WHEN looking for moto servers being created THEN only the stand-ins create one
    # (moto_process is the child program the stand-in's process mode runs)
    assert _defining(r"ThreadedMotoServer\(") == {
        "sqs_sagemaker_invoker/local/stand_ins.py",
        "sqs_sagemaker_invoker/local/moto_process.py",
    }


def test_one_lambda_context_and_one_sqs_record_builder() -> None:
    # GIVEN the whole tree WHEN looking for Lambda contexts and Lambda SQS records being defined
    # THEN each is defined once (the context beside the runtime stand-in, which runs as a bare script)
    assert _defining(r"def get_remaining_time_in_millis\(") == {
        "sqs_sagemaker_invoker/local/lambda_runtime.py"
    }
    assert _defining(r'"md5OfBody": ') == {"sqs_sagemaker_invoker/local/stand_ins.py"}
