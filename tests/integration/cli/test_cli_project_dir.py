"""`--project-dir`: the local stack's state is found in the project named, from any working directory."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from sqs_sagemaker_invoker.cli.main import app
from sqs_sagemaker_invoker.project import PROJECT_DIR_ENV

if TYPE_CHECKING:
    import pytest

    from tests.support.cli_stack import CliStack


def test_project_dir_names_where_the_local_state_is(
    cli_stack: CliStack, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a working directory outside the project that holds .local-stack/outputs.json
    monkeypatch.setenv(PROJECT_DIR_ENV, "")  # restored after: the option sets it for the process
    monkeypatch.delenv("INVOKER_STATE_DIR", raising=False)
    outside = tmp_path_factory.mktemp("elsewhere")  # not below the stack's directory
    monkeypatch.chdir(outside)
    project = cli_stack.state_dir.parent

    # WHEN --local is given with --project-dir and no state directory
    result = CliRunner().invoke(
        app, ["--project-dir", str(project), "send", "--local", "--request-id", "pd-1", "-"], input="{}"
    )

    # THEN the project's local stack is used
    assert result.exit_code == 0, result.output
    assert [json.loads(b)["requestId"] for b in cli_stack.bodies(cli_stack.route().request_queue_url)] == [
        "pd-1"
    ]
