"""What the figures were measured on."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.measurements import MachineInfo


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def py_spy_version() -> str:
    from bench.profiling import py_spy_path  # noqa: PLC0415

    path = py_spy_path()
    if path is None:
        return "not installed (profile skipped)"
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not runnable (profile skipped)"
    return done.stdout.strip() or "unknown version"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> MachineInfo:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "boto3": _version("boto3"),
        "botocore": _version("botocore"),
        "aws_lambda_powertools": _version("aws-lambda-powertools"),
        "moto": _version("moto"),
        "py_spy": py_spy_version(),
        "load_average_start": load_average(),
    }
