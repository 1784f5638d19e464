"""The documentation, checked against a real local stack (``python -m sqs_sagemaker_invoker.local up --detach``).

- Every shell snippet marked ``<!-- local-stack-snippet expect='REGEX' ... -->`` in README.md or docs/*.md
  runs as written with bash, from a directory laid out like the repository root (``.venv``,
  ``.local-stack``), with the AWS CLI v1 from the dev dependencies, and prints what its markers expect;
  so does every ``<!-- emulator-snippet ... -->`` against the standalone SageMaker Runtime emulator.
  Every other shell snippet at least parses (``bash -n``).
- The dashboard the local stack puts to its CloudWatch is the synthesized one, with the local names.
- The documented differences from AWS are what a user sees on the local stack.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sqs_sagemaker_invoker.local.aws import CREDENTIALS, REGION
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv"

# What a marked snippet needs running: the local stack (`python -m sqs_sagemaker_invoker.local up`), or the standalone emulator.
LOCAL_STACK = "local-stack-snippet"
EMULATOR = "emulator-snippet"
EMULATOR_PORT = 8080  # the docs' standalone command and snippets use it
EXPECT = re.compile(r"expect='(?P<regex>[^']*)'")
# Fences inside list items are indented; their code lines carry the same indent.
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[a-z]*)\n(?P<code>.*?)^(?P=indent)```", re.S | re.M)
DIFFERENCES = re.compile(r"^Known differences from AWS.*?(?=\n\n|\Z)", re.S | re.M)


@dataclass(frozen=True)
class Snippet:
    where: str  # file:line, for the failure message
    code: str
    expect: tuple[str, ...]  # regexes its output must match


def documents() -> list[Path]:
    # docs/*.md too: README sections may move there.
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def marked_snippets(kind: str) -> list[Snippet]:
    marker = re.compile(
        rf"<!--\s*{kind}(?P<attributes>[^>]*?)-->\s*\n```(?:bash|sh)\n(?P<code>.*?)^```", re.S | re.M
    )
    found: list[Snippet] = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for match in marker.finditer(text):
            found.append(
                Snippet(
                    where=f"{path.relative_to(ROOT)}:{_line(text, match.start('code'))}",
                    code=match["code"],
                    expect=tuple(m["regex"] for m in EXPECT.finditer(match["attributes"])),
                )
            )
    return found


def other_shell_snippets() -> list[Snippet]:
    """Every other bash/sh fence, and the commands (``$ ...`` lines) of console transcripts."""
    marked = {s.code for kind in (LOCAL_STACK, EMULATOR) for s in marked_snippets(kind)}
    found: list[Snippet] = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            lang = match["lang"]
            code = textwrap.dedent(match["code"])
            if lang == "console":
                code = "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))
            elif lang not in {"bash", "sh"} or code in marked:
                continue
            where = f"{path.relative_to(ROOT)}:{_line(text, match.start('code'))}"
            found.append(Snippet(where=where, code=code, expect=()))
    return found


def snippet_environment(home: Path) -> dict[str, str]:
    """A user's fresh shell: no virtualenv on PATH, no AWS settings but a profile the env file must clear."""
    path = [
        p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if not p.startswith(str(VENV))
    ]
    return {
        "PATH": os.pathsep.join(path),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        # A named profile makes the AWS CLI ignore the credentials in the environment: the env file unsets it.
        "AWS_PROFILE": "a-profile-this-machine-does-not-have",
    }


def run_bash(code: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # -e and pipefail: a user reading the snippet's last output line would not see an earlier failure.
    return subprocess.run(
        ["bash", "-c", "set -eo pipefail\n" + code],
        cwd=cwd,
        env=snippet_environment(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class RunningStack:
    root: Path  # laid out like the repository root: .venv and .local-stack
    outputs: dict[str, str]

    def client(self, service: str, **config: Any) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.outputs["AwsEndpointUrl"],
            region_name=REGION,
            aws_access_key_id=CREDENTIALS[0],
            aws_secret_access_key=CREDENTIALS[1],
            config=Config(**config),
        )


def _local(*args: str, state_dir: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sqs_sagemaker_invoker.local", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    root = tmp_path_factory.mktemp("repo-root")
    (root / ".venv").symlink_to(VENV, target_is_directory=True)
    state_dir = root / ".local-stack"
    up = _local("up", "--detach", "--container", "echo", state_dir=state_dir, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        outputs = json.loads((state_dir / "outputs.json").read_text(encoding="utf-8"))
        # The model's not-ready phase would back the snippet's request off; the docs' user waits too.
        endpoint = outputs["RouteDemoEndpointName"]
        ready = f"{outputs['SageMakerRuntimeUrl']}/_emulator/endpoints/{endpoint}/ready?timeout=60"
        with urllib.request.urlopen(ready, timeout=90) as response:
            assert response.status == 200
        yield RunningStack(root=root, outputs=outputs)
    finally:
        down = _local("down", state_dir=state_dir, timeout=90)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.parametrize("kind", [LOCAL_STACK, EMULATOR])
def test_the_docs_have_marked_snippets(kind: str) -> None:
    # GIVEN the README and docs/ WHEN their marked snippets are collected
    snippets = marked_snippets(kind)
    # THEN there are some (a renamed marker must not silently test nothing), each expecting something
    assert snippets, f"no <!-- {kind} --> in README.md or docs/*.md"
    assert all(s.expect for s in snippets), [s.where for s in snippets if not s.expect]


def assert_runs_as_written(snippet: Snippet, cwd: Path) -> None:
    # WHEN a user pastes it into a fresh shell at the repository root
    result = run_bash(snippet.code, cwd)

    # THEN it succeeds and prints what the documentation says it does
    report = f"{snippet.where}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, report
    for regex in snippet.expect:
        assert re.search(regex, result.stdout, re.M), f"expected /{regex}/ in {report}"


@pytest.mark.slow
def test_local_stack_snippets_run_as_written(stack: RunningStack) -> None:
    # GIVEN a running local stack and the documentation's snippets for it
    snippets = marked_snippets(LOCAL_STACK)
    assert snippets
    for snippet in snippets:
        assert_runs_as_written(snippet, stack.root)


@pytest.mark.slow
def test_emulator_snippets_run_as_written(tmp_path: Path) -> None:
    # GIVEN the standalone emulator started as the docs start it, on the docs' port
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", EMULATOR_PORT)) == 0:
            pytest.skip(f"port {EMULATOR_PORT}, which the docs' emulator snippets use, is taken")
    (tmp_path / ".venv").symlink_to(VENV, target_is_directory=True)
    command = [
        ".venv/bin/python",
        "-m",
        "sqs_sagemaker_invoker.local.sagemaker",
        "--port",
        str(EMULATOR_PORT),
    ]
    command += ["--endpoint", "demo-classifier=sklearn", "--endpoint", "echo=echo"]
    emulator = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{EMULATOR_PORT}", url
        snippets = marked_snippets(EMULATOR)
        assert snippets
        for snippet in snippets:
            assert_runs_as_written(snippet, tmp_path)
    finally:
        emulator.terminate()  # SIGTERM: it stops the containers it started
        emulator.wait(timeout=30)


def test_other_shell_snippets_parse() -> None:
    # GIVEN every other shell snippet (deployment, development, console transcripts)
    snippets = other_shell_snippets()
    assert snippets
    for snippet in snippets:
        # WHEN bash parses it without running it  THEN it is valid shell
        result = subprocess.run(
            ["bash", "-n"], input=snippet.code, capture_output=True, text=True, timeout=10, check=False
        )
        assert result.returncode == 0, f"{snippet.where}: {result.stderr}\n{snippet.code}"


def _resolve(part: Any, by_ref: dict[str, str]) -> str:
    """A CloudFormation value of the dashboard body, as the local stack names it."""
    if isinstance(part, str):
        return part
    if part == {"Ref": "AWS::Region"}:
        return REGION
    if "Ref" in part:
        return by_ref[part["Ref"]]
    logical_id, attribute = part["Fn::GetAtt"]
    assert attribute == "QueueName", part
    return by_ref[logical_id].rsplit("/", 1)[-1]  # a queue's Ref is its URL, whose last segment is its name


@pytest.mark.slow
def test_local_dashboard_is_the_synthesized_one(stack: RunningStack, tmp_path: Path) -> None:
    from tests.infra.conftest import synth  # noqa: PLC0415 - the CDK only for this test

    # GIVEN the template synthesized from the same cdk.json as the local stack
    template = synth(None, tmp_path).json
    dashboards = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert len(dashboards) == 1
    body = dashboards[0]["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    # Each resource the body refers to, by the local value of the stack output that names it.
    by_ref = {
        output["Value"]["Ref"]: stack.outputs[key]
        for key, output in template["Outputs"].items()
        if isinstance(output["Value"], dict) and "Ref" in output["Value"]
    }
    expected = json.loads("".join(_resolve(part, by_ref) for part in parts))

    # WHEN the dashboard is read back from the local CloudWatch
    cloudwatch = stack.client("cloudwatch")
    local = json.loads(
        cloudwatch.get_dashboard(DashboardName=stack.outputs["DashboardName"])["DashboardBody"]
    )

    # THEN it is the deployed dashboard, widget for widget, with the local stack's names
    assert local == expected
    assert local["widgets"]


def known_differences() -> str:
    texts = [
        m.group(0) for path in documents() for m in DIFFERENCES.finditer(path.read_text(encoding="utf-8"))
    ]
    assert len(texts) == 1, "one 'Known differences from AWS' paragraph in README.md or docs/*.md"
    return " ".join(texts[0].split())


@pytest.mark.slow
def test_known_differences_are_what_the_local_stack_shows(stack: RunningStack) -> None:
    documented = known_differences()
    sqs = stack.client("sqs")
    cloudwatch = stack.client("cloudwatch")
    # moto answers what it does not implement with HTTP 500: one attempt is enough to see it.
    logs = stack.client("logs", retries={"mode": "standard", "max_attempts": 1})
    group = stack.outputs["RouteDemoLogGroupName"]

    # GIVEN one request through the function (so there are log lines and metrics)
    request_id = f"differences-{time.time_ns()}"
    sqs.send_message(
        QueueUrl=stack.outputs["RouteDemoRequestQueueUrl"],
        MessageBody=json.dumps({"requestId": request_id, "body": {"instances": [[5.1, 3.5, 1.4, 0.2]]}}),
    )

    def delivered() -> bool:
        events = logs.filter_log_events(logGroupName=group, filterPattern=f'"{request_id}"')["events"]
        return any('"delivered"' in e["message"] for e in events)

    wait_for(delivered, timeout=60, interval=0.5, what="the request's log line")

    # THEN the alarms stay in the state moto creates them in, never evaluated (AWS starts INSUFFICIENT_DATA)
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix="SqsSageMakerInvoker-demo-")["MetricAlarms"]
    assert alarms
    states = {a["StateValue"] for a in alarms}
    assert states == {"OK"}, states
    assert {a["StateReason"] for a in alarms} == {"Unchecked: Initial alarm creation"}
    assert "`OK`" in documented
    assert "INSUFFICIENT_DATA" in documented

    # THEN AWS/SQS and AWS/Lambda publish nothing locally; the function's own metrics are there
    for namespace in ("AWS/SQS", "AWS/Lambda"):
        assert cloudwatch.list_metrics(Namespace=namespace)["Metrics"] == [], namespace
        assert namespace in documented
    assert cloudwatch.list_metrics(Namespace="SqsSageMakerInvoker", MetricName="Succeeded")["Metrics"]

    # THEN a JSON filter pattern that matches no line returns the request's lines (moto ignores it)
    matches_nothing = '{ $.request_id = "no-such-request" }'
    events = logs.filter_log_events(logGroupName=group, filterPattern=matches_nothing)["events"]
    assert any(request_id in e["message"] for e in events)
    assert "JSON filter patterns" in documented

    # THEN Logs Insights ignores `filter` and computes no `stats`
    now = int(time.time())

    def insights(query: str) -> list[Any]:
        query_id = logs.start_query(
            logGroupName=group, startTime=now - 3600, endTime=now + 60, queryString=query
        )["queryId"]
        response = wait_for(
            lambda: (r := logs.get_query_results(queryId=query_id))["status"] == "Complete" and r,
            timeout=20,
            what="query",
        )
        return list(response["results"])

    rows = insights('fields @message | filter request_id = "no-such-request"')
    assert any(request_id in field["value"] for row in rows for field in row if field["field"] == "@message")
    counted = insights("stats count(*) as n by reason")
    assert counted
    assert all({f["field"] for f in row} == {"@ptr"} for row in counted)
    assert "Logs Insights" in documented

    # THEN the stack's saved queries cannot exist: moto has no query definitions
    with pytest.raises(ClientError) as refused:
        logs.put_query_definition(name="SqsSageMakerInvoker/probe", queryString="fields @message")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "saved queries" in documented

    # THEN no TLS-only policy is applied, on the queues or the bucket
    for key in ("RouteDemoRequestQueueUrl", "RouteDemoDeadLetterQueueUrl", "RouteDemoResultsQueueUrl"):
        attributes = sqs.get_queue_attributes(QueueUrl=stack.outputs[key], AttributeNames=["All"])
        assert "Policy" not in attributes["Attributes"], key
    bucket = stack.outputs.get("RouteDemoResultsBucketName")
    if bucket is not None:
        with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
            stack.client("s3").get_bucket_policy(Bucket=bucket)
    assert "aws:SecureTransport" in documented
