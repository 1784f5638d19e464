"""The wheel as people install it: outside the checkout, `invoker` works and claims no generic names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
VERSION = "0.1.0"  # pyproject.toml's [project].version

pytestmark = pytest.mark.slow


def _uv() -> str:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "ensure-uv")], capture_output=True, text=True, check=True
    ).stdout.strip()


def _run_offline_first(command: list[str], cwd: Path) -> None:
    """From uv's cache when it holds everything (filled by `make install`), else from the index."""
    offline = subprocess.run([*command, "--offline"], cwd=cwd, capture_output=True, text=True, check=False)
    if offline.returncode != 0:
        subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment outside the checkout with the built wheel installed: its bin/."""
    root = tmp_path_factory.mktemp("installed")
    uv = _uv()
    dist = root / "dist"
    _run_offline_first(
        [uv, "build", "--wheel", "--python", sys.executable, "--out-dir", str(dist), str(REPO_ROOT)], cwd=root
    )
    (wheel,) = dist.glob("*.whl")
    venv = root / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=root, check=True)
    _run_offline_first(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)], cwd=root
    )
    return venv / "bin"


def _in(bin_dir: Path, *command: str) -> subprocess.CompletedProcess[str]:
    # Outside the checkout, with nothing of it on the path: only what the wheel installed.
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "INVOKER_PROJECT_DIR"}
    }
    return subprocess.run(
        [str(bin_dir / command[0]), *command[1:]],
        cwd=bin_dir.parent.parent,
        env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_invoker_command_works_installed(installed: Path) -> None:
    # GIVEN the wheel installed in a fresh environment, run from a directory outside the checkout
    # WHEN the command is asked for its help and its version
    helped = _in(installed, "invoker", "--help")
    version = _in(installed, "invoker", "--version")
    # THEN both work: every command is listed, and the version is the package's
    assert helped.returncode == 0, helped.stderr
    for command in ("send", "results", "status", "trace", "dlq", "local"):
        assert command in helped.stdout
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"invoker {VERSION}"


def test_installed_package_claims_no_generic_names(installed: Path) -> None:
    # GIVEN the installed environment
    # WHEN its Python imports the generic names and the package's own
    probe = (
        "import importlib.util, sys\n"
        "claimed = [n for n in ('local', 'infra', 'cli', 'tests', 'bench') if importlib.util.find_spec(n)]\n"
        "import sqs_sagemaker_invoker.cli.main\n"
        "print(sqs_sagemaker_invoker.cli.main.__file__)\n"
        "sys.exit(f'claimed: {claimed}' if claimed else 0)\n"
    )
    done = _in(installed, "python", "-c", probe)
    # THEN nothing generic is importable, and the CLI is imported from the install, not the checkout
    assert done.returncode == 0, done.stdout + done.stderr
    assert str(REPO_ROOT) not in done.stdout


def test_local_without_its_extra_names_the_extra(installed: Path) -> None:
    # GIVEN the plain install (no `local` extra: no moto)
    # WHEN the local stack is asked for
    done = _in(installed, "invoker", "local", "up", "--detach", "--wait", "5")
    # THEN one line says which extra to install, no traceback
    assert done.returncode == 1, done.stdout + done.stderr
    assert "sqs-sagemaker-invoker[local]" in done.stderr
    assert "Traceback" not in done.stderr
