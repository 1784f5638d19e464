"""Project files are found from the working directory upwards (or where INVOKER_PROJECT_DIR says)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqs_sagemaker_invoker.project import MARKER, PROJECT_DIR_ENV, find_project_dir

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_the_nearest_directory_holding_cdk_json_upwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a project with cdk.json, and a working directory two levels inside it
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / MARKER).write_text("{}")
    inside = tmp_path / "app" / "src" / "deep"
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    # WHEN the project is looked up / THEN it is the directory holding cdk.json
    assert find_project_dir() == (tmp_path / "app").resolve()
    # AND from a directory outside any project there is none
    assert find_project_dir(tmp_path) is None


def test_the_environment_names_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN INVOKER_PROJECT_DIR, and a working directory with no cdk.json anywhere above
    monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    # WHEN the project is looked up / THEN it is the one named
    assert find_project_dir() == (tmp_path / "elsewhere").resolve()
