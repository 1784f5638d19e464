"""Docker-free bundling: the function asset holds functions/ plus exactly the locked dependencies."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from sqs_sagemaker_invoker.infra import bundling

if TYPE_CHECKING:
    from pathlib import Path


def locked_versions() -> dict[str, str]:
    exported = subprocess.run(
        [
            bundling.find_uv(), "export", "--frozen", "--only-group", "function", "--no-emit-project",
            "--no-hashes", "--no-header", "--no-annotate",
        ],
        cwd=bundling.REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pins = (line.split(";")[0].strip().split("==") for line in exported.splitlines() if "==" in line)
    return {normalize(name): version for name, version in pins}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_bundle_holds_the_function_and_the_locked_versions(tmp_path: Path, runtime: str) -> None:
    # GIVEN an empty output directory (what CDK hands to try_bundle)
    # WHEN the asset is built without Docker
    bundling.build(tmp_path, runtime)
    # THEN it holds the function package and exactly uv.lock's runtime dependencies
    assert (tmp_path / "invoker" / "handler.py").is_file()
    installed = {
        normalize(m.group(1)): m.group(2)
        for d in tmp_path.glob("*.dist-info")
        if (m := re.fullmatch(r"(.+)-([^-]+)\.dist-info", d.name))
    }
    locked = locked_versions()
    assert installed == locked
    assert {"boto3", "aws-lambda-powertools"} <= set(installed)
    # AND none of the command line's dependencies (the package's own, not the function's)
    assert not {"typer", "rich", "click"} & set(installed)
    # AND nothing the function does not need
    assert not (tmp_path / "bin").exists()
    assert not list(tmp_path.rglob("__pycache__"))
    assert not list(tmp_path.rglob("*.pyc"))


def test_asset_hash_follows_code_lock_and_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a repository with a lock file and a function package
    (tmp_path / "functions" / "invoker").mkdir(parents=True)
    (tmp_path / "functions" / "invoker" / "handler.py").write_text("x = 1\n")
    (tmp_path / "uv.lock").write_text("boto3 1.0\n")
    monkeypatch.setattr(bundling, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(bundling, "FUNCTIONS_DIR", tmp_path / "functions")
    first = bundling.asset_hash("python3.12")
    # THEN the hash is stable, ignores bytecode, and changes with the runtime, the code and the lock
    assert bundling.asset_hash("python3.12") == first
    (tmp_path / "functions" / "invoker" / "__pycache__").mkdir()
    (tmp_path / "functions" / "invoker" / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"\0")
    assert bundling.asset_hash("python3.12") == first
    assert bundling.asset_hash("python3.13") != first
    (tmp_path / "uv.lock").write_text("boto3 1.1\n")
    after_lock = bundling.asset_hash("python3.12")
    assert after_lock != first
    (tmp_path / "functions" / "invoker" / "handler.py").write_text("x = 2\n")
    assert bundling.asset_hash("python3.12") not in {first, after_lock}
