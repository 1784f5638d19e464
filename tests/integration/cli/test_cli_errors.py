"""Targets and bad input: `--stack` through CloudFormation outputs, and one-line errors for what users get wrong."""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from sqs_sagemaker_invoker.cli.main import app
from tests.support.cli_stack import DEMO_ROUTE, ORDERED_ROUTE

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from typer.testing import Result

    from tests.support.cli_stack import CliStack


COMMANDS = [
    [],
    ["send"],
    ["results"],
    ["status"],
    ["trace"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "show"],
    ["dlq", "redrive"],
    ["local"],
    ["local", "up"],
    ["local", "down"],
    ["local", "demo"],
]


def _run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})}, catch_exceptions=False)


def _one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "invoker")
def test_every_command_has_help(command: list[str]) -> None:
    result = _run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


def test_no_target_and_both_targets_are_refused() -> None:
    _one_line_error(_run("status"), "pass --stack NAME", "--local")
    _one_line_error(_run("status", "--stack", "S", "--local"), "either --stack NAME or --local")


def test_local_stack_not_running(tmp_path: Path) -> None:
    # GIVEN no state at all, and state whose moto server is gone
    stale = tmp_path / "stale"
    stale.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (stale / "outputs.json").write_text(json.dumps({"AwsEndpointUrl": f"http://127.0.0.1:{port}"}))

    # WHEN commands are run against them
    missing = _run("--state-dir", str(tmp_path / "nothing"), "dlq", "list")
    gone = _run("send", "--state-dir", str(stale), "-", env={})

    # THEN one-line errors say the local stack is not running
    _one_line_error(missing, "local stack not running", "does not exist")
    _one_line_error(gone, "local stack not running", f"nothing answers at http://127.0.0.1:{port}")


def test_unknown_route_and_ambiguous_route(make_cli_stack: Callable[..., CliStack]) -> None:
    # GIVEN a stack with two routes
    stack = make_cli_stack([DEMO_ROUTE, ORDERED_ROUTE])

    # WHEN no route or an unknown route is named, then a known one
    ambiguous = stack.invoke("dlq", "list")
    unknown = stack.invoke("dlq", "list", "--route", "nope")
    known = stack.invoke("--route", "ordered", "dlq", "list")

    # THEN the errors list the routes; naming one works (before or after the command)
    _one_line_error(ambiguous, "has 2 routes (demo, ordered)", "--route NAME")
    _one_line_error(unknown, "unknown route 'nope'", "demo, ordered")
    assert known.exit_code == 0, known.stderr
    assert "CliTest-ordered-dlq.fifo" in known.stdout


def _template(stack: CliStack) -> str:
    route = stack.route()
    resources = {
        "Requests": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "deployed-requests"}},
        "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "deployed-dlq"}},
    }
    outputs = {
        "RouteDemoRequestQueueUrl": {
            "Value": {"Ref": "Requests"},
            "Description": "route=demo; send requests here",
        },
        "RouteDemoRequestQueueArn": {
            "Value": {"Fn::GetAtt": ["Requests", "Arn"]},
            "Description": "route=demo; arn",
        },
        "RouteDemoDeadLetterQueueUrl": {
            "Value": {"Ref": "Dlq"},
            "Description": "route=demo; dead-lettered requests",
        },
        "RouteDemoEndpointName": {"Value": route.route.endpoint_name, "Description": "route=demo; endpoint"},
        "DashboardName": {"Value": "Deployed", "Description": "CloudWatch dashboard"},
    }
    return json.dumps({"Resources": resources, "Outputs": outputs})


def test_a_deployed_stack_is_found_by_name(cli_stack: CliStack) -> None:
    # GIVEN a CloudFormation stack with the invoker's outputs (moto's CloudFormation, over HTTP)
    cloudformation = __import__("boto3").client(
        "cloudformation",
        endpoint_url=cli_stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    cloudformation.create_stack(StackName="Deployed", TemplateBody=_template(cli_stack))
    env: dict[str, str | None] = {"AWS_ENDPOINT_URL": cli_stack.moto_url}

    # WHEN requests are sent to it by stack name, and its DLQ is listed
    sent = _run("send", "--stack", "Deployed", "--request-id", "d-1", "-", env=env)
    listed = _run("--stack", "Deployed", "--region", "us-east-1", "dlq", "list", env=env)
    unknown = _run("--stack", "Nope", "status", env=env)

    # THEN the message is in the stack's request queue; an unknown stack fails in one line
    assert sent.exit_code == 0, sent.stderr
    url = cloudformation.describe_stacks(StackName="Deployed")["Stacks"][0]["Outputs"]
    request_url = next(o["OutputValue"] for o in url if o["OutputKey"] == "RouteDemoRequestQueueUrl")
    assert [json.loads(b)["requestId"] for b in cli_stack.bodies(request_url)] == ["d-1"]
    assert listed.exit_code == 0, listed.stderr
    assert "deployed-dlq" in listed.stdout
    _one_line_error(unknown, "unknown stack 'Nope'")


def test_missing_credentials_and_unknown_profile(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN no credentials anywhere (no variables, empty config files, no instance metadata)
    empty = tmp_path / "empty"
    empty.write_text("")
    env: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": cli_stack.moto_url,
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_CONFIG_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    # WHEN a deployed stack is asked for, with no credentials and with an unknown profile
    no_credentials = _run("--stack", "Deployed", "status", env=env)
    no_profile = _run("--stack", "Deployed", "--profile", "nope", "status", env=env)

    # THEN one-line errors name the problem
    _one_line_error(no_credentials, "no AWS credentials found")
    _one_line_error(no_profile, "AWS profile not found: nope")


def test_a_service_error_during_a_command_is_one_line(cli_stack: CliStack) -> None:
    # GIVEN outputs naming a request queue that no longer exists
    cli_stack.sqs().delete_queue(QueueUrl=cli_stack.route().request_queue_url)

    # WHEN a request is sent
    result = cli_stack.invoke("send", "-", input="hello")

    # THEN the SQS error is reported in one line, naming the call
    _one_line_error(result, "GetQueueAttributes failed")


def test_local_finds_the_state_in_the_working_directory(
    cli_stack: CliStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a working directory below the one holding .local-stack/outputs.json
    below = cli_stack.state_dir.parent / "project" / "sub"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)

    # WHEN --local is given without a state directory
    result = _run("send", "--local", "--request-id", "cwd-1", "-", env={"INVOKER_STATE_DIR": None})

    # THEN the stack found by walking up is used
    assert result.exit_code == 0, result.stderr
    assert [json.loads(b)["requestId"] for b in cli_stack.bodies(cli_stack.route().request_queue_url)] == [
        "cwd-1"
    ]
