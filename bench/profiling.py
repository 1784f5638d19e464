"""Where the client CPU goes: py-spy samples of the Lambda instance (only the thread holding the GIL),
reduced to file:function and package shares of the samples taken inside `lambda_handler`."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.measurements import ProfileSummary, Share

# The Lambda instance's program (bench.probes.lambda_instance), as py-spy names its file.
HARNESS_FILE = "bench/probes/lambda_instance.py"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# Leaf-most match wins: the first package, scanning from the innermost frame outwards.
_PACKAGES = (
    ("invoker/", "invoker (the function)"),
    ("bench/", "bench harness"),
    ("botocore/", "botocore"),
    ("boto3/", "boto3"),
    ("urllib3/", "urllib3"),
    ("http/client.py", "http.client"),
    ("email/", "email (HTTP header parsing)"),
    ("socket.py", "socket"),
    ("aws_lambda_powertools/logging/", "powertools logging"),
    ("aws_lambda_powertools/metrics/", "powertools metrics"),
    ("aws_lambda_powertools/", "powertools (other)"),
    ("logging/", "stdlib logging"),
    ("json/", "json"),
    ("threading.py", "threads and locks"),
    ("concurrent/futures/", "threads and locks"),
    ("queue.py", "threads and locks"),
)


def py_spy_path() -> str | None:
    return os.environ.get("BENCH_PY_SPY") or shutil.which("py-spy")


def py_spy_command(output: str, rate: int = 500) -> list[str]:
    spy = py_spy_path()
    if spy is None:
        raise FileNotFoundError("py-spy")
    # --gil: sample only the thread that holds the GIL, i.e. Python CPU time. --nonblocking: do not pause
    # the process to sample it (a paused client would run slower than it does unobserved).
    return [
        spy,
        "record",
        "--gil",
        "--nonblocking",
        "--rate",
        str(rate),
        "--format",
        "raw",
        "-o",
        output,
        "--",
    ]


def frame_key(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    return f"{match['file']}:{match['func']}", match["file"]


def package_of(path: str) -> str:
    for needle, name in _PACKAGES:
        if needle in path:
            return name
    return f"other ({path.rsplit('/', 1)[-1]})"


def in_handler(frames: list[str]) -> bool:
    """A sample of the handler's work: under the harness's timed call, or on a worker thread (whose stack
    does not reach the harness); not the import, not event building or log reading."""
    text = ";".join(frames)
    if "importlib" in text or "bench/messages.py" in text or "LogReader" in text:
        return False
    return f"Instance._call ({HARNESS_FILE}" in text or HARNESS_FILE not in text


def summarize_collapsed(text: str, top: int = 20) -> ProfileSummary:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    outside = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if not in_handler(frames):
            outside += count
            continue
        total += count
        keys = [frame_key(frame) for frame in frames]
        own[keys[-1][0]] += count
        for key in {k for k, _ in keys}:
            inclusive[key] += count
        packages[package_of(keys[-1][1])] += count

    def shares(counter: Counter[str], limit: int | None) -> list[Share]:
        return [
            {"name": name, "samples": n, "percent": 100.0 * n / total if total else 0.0}
            for name, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "samples_outside_handler": outside,
        "self_by_function": shares(own, top),
        "inclusive_by_function": shares(inclusive, top + 10),
        "self_by_package": shares(packages, None),
    }
