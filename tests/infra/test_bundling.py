"""Docker-free bundling: the function asset holds the function package plus exactly the locked dependencies."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from sqs_sagemaker_invoker.infra import bundling

REPO = Path(__file__).resolve().parents[2]


def locked_versions() -> dict[str, str]:
    exported = subprocess.run(
        [
            bundling.find_uv(), "export", "--frozen", "--only-group", "function", "--no-emit-project",
            "--no-hashes", "--no-header", "--no-annotate",
        ],
        cwd=REPO, capture_output=True, text=True, check=True,
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


def test_shipped_function_requirements_equal_the_lock() -> None:
    # GIVEN the pins shipped inside the package (an installed construct has no uv.lock to export)
    shipped = bundling.FUNCTION_REQUIREMENTS.read_text(encoding="utf-8")
    # WHEN uv exports the repository's lock the way the bundle needs it
    exported = bundling.export_requirements(REPO)
    # THEN they are the same text (after changing uv.lock: `make function-requirements`)
    assert shipped == exported, "function-requirements.txt is stale: run `make function-requirements`"
    # AND the export command is the one this test and the Makefile target use
    assert bundling.EXPORT_ARGS[:4] == ("export", "--frozen", "--only-group", "function")


def test_function_package_is_found_where_it_is_installed() -> None:
    # GIVEN the function package installed with this one (functions/invoker in a checkout)
    # WHEN bundling looks for it
    found = bundling.function_package_dir()
    # THEN it is the package whose handler the function runs, found without importing it
    assert (found / "handler.py").is_file()
    assert found.name == bundling.FUNCTION_PACKAGE
    assert bundling.HANDLER == "invoker.handler.lambda_handler"


def test_asset_hash_follows_code_pins_and_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a function package and its pins
    package = tmp_path / "site" / "invoker"
    package.mkdir(parents=True)
    (package / "handler.py").write_text("x = 1\n")
    requirements = tmp_path / "function-requirements.txt"
    requirements.write_text("boto3==1.0\n")
    monkeypatch.setattr(bundling, "function_package_dir", lambda: package)
    monkeypatch.setattr(bundling, "FUNCTION_REQUIREMENTS", requirements)
    first = bundling.asset_hash("python3.12")
    # THEN the hash is stable, ignores bytecode, and changes with the runtime, the code and the pins
    assert bundling.asset_hash("python3.12") == first
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"\0")
    assert bundling.asset_hash("python3.12") == first
    assert bundling.asset_hash("python3.13") != first
    requirements.write_text("boto3==1.1\n")
    after_pins = bundling.asset_hash("python3.12")
    assert after_pins != first
    (package / "handler.py").write_text("x = 2\n")
    assert bundling.asset_hash("python3.12") not in {first, after_pins}
