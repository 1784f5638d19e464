"""`invoker job` and `invoker request` against the whole local stack: the job function and the invoker
function run in the event source emulator's workers, as deployed, and the CLI reads the stack's outputs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from sqs_sagemaker_invoker.cli.main import app
from sqs_sagemaker_invoker.local.demo.job_scenario import ROUTE, JobDemo, JobDemoConfig
from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions

if TYPE_CHECKING:
    from pathlib import Path

GOOD = '{"body": {"instances": [[5.1, 3.5, 1.4, 0.2]]}}'
MODEL_ERROR = '{"body": {"instances": [[1.0, 2.0]]}}'  # two features: the example model refuses it


def test_a_job_submitted_with_the_cli_runs_on_the_local_stack_and_each_line_can_be_looked_up(
    tmp_path: Path,
) -> None:
    # GIVEN the local stack with the job demo's route (ledger and jobs on), its outputs in a state directory
    state = tmp_path / "state"
    context = JobDemo(JobDemoConfig(), state_dir=state).context()
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join([GOOD] * 8 + ["not json", MODEL_ERROR, GOOD]) + "\n")
    runner = CliRunner()

    def invoker(*args: str) -> tuple[int, str]:
        result = runner.invoke(
            app, ["--state-dir", str(state), *args, "--route", ROUTE], env={"COLUMNS": "200"}
        )
        return result.exit_code, result.stdout

    with LocalStack(StackOptions(context=context, state_dir=state, prewarm=True)):
        # WHEN a file of 11 lines (one not JSON, one the model refuses) is submitted and waited for
        code, out = invoker("job", "submit", str(source), "--join", "input")
        assert code == 0, out
        job_id = out.strip()
        waited, summary = invoker("job", "wait", job_id, "--interval", "0.5")
        # THEN wait says "partially failed" by its exit code, and the counts add up to the lines
        assert waited == 1, summary
        status = json.loads(invoker("job", "status", job_id, "--json")[1])
        assert status["state"] == "partially_failed"
        assert status["counts"] == {"succeeded": 9, "invalid_message": 1, "model_error": 1}
        # AND each line's request has its record in the ledger: a delivered one, and the model's refusal
        code, out = invoker("request", f"{job_id}:1", "--json")
        assert code == 0, out
        delivered = json.loads(out)
        assert delivered["state"] == "delivered"
        assert (delivered["job_id"], delivered["line"]) == (job_id, 1)
        refused = json.loads(invoker("request", f"{job_id}:10", "--json")[1])
        assert (refused["state"], refused["reason"]) == ("dead_lettered", "model_error")
