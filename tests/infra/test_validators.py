"""cfn-lint and checkov, tools nobody here wrote, on every synthesized shape: zero findings.

Each tool runs once per session over all templates (checkov takes seconds to start). Accepted findings
are decisions in sqs_sagemaker_invoker/infra/suppressions.py, written into each resource's Metadata; a copy of the template
without them must make both tools report again, so these checks can fail.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sqs_sagemaker_invoker.infra import suppressions
from tests.infra.conftest import REPO, Synth, synth

# checkov pins an old boto3, so it lives in its own locked environment (tools/checkov).
CHECKOV_PROJECT = REPO / "tools" / "checkov"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

LARGE_PAYLOADS_CONFIG: dict[str, Any] = {
    "routes": [
        {
            "name": "big",
            "endpointName": "big-model",
            "largePayloads": True,
            "results": {"queue": True, "bucket": True},
            # the request ledger's table and grants, and the jobs' queues, function and role, are checked in
            # this shape
            "ledger": {"enabled": True},
            "jobs": {"enabled": True},
        }
    ]
}

SHAPES = ("standard", "fifo", "two_routes", "large_payloads", "scaled", "construct_example")
STRIPPED = "stripped"  # the large-payloads template (ledger included) without its decisions, and with one invalid property


def offline_checkov_env() -> dict[str, str]:
    """checkov without a network: no guideline/mapping download, no PyPI version check, no platform."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_API", "PRISMA_", "VIRTUAL_ENV"))}
    env |= {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "LOG_LEVEL": "WARNING"}
    return env


@pytest.fixture(scope="session")
def checkov_bin() -> Path:
    # Synced here as well as by `make install`, so `pytest` alone works on a fresh clone.
    uv = (
        os.environ.get("UV")
        or subprocess.run(
            [str(REPO / "scripts" / "ensure-uv")], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    subprocess.run(
        [uv, "sync", "--frozen", "--quiet", "--project", str(CHECKOV_PROJECT)], check=True, env=env
    )
    return CHECKOV_PROJECT / ".venv" / "bin" / "checkov"


def strip_decisions(template: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(template)
    stripped.get("Metadata", {}).pop("cfn-lint", None)
    for resource in stripped["Resources"].values():
        metadata = resource.get("Metadata", {})
        metadata.pop("checkov", None)
        metadata.pop("cfn-lint", None)
    return stripped


@pytest.fixture(scope="session")
def templates(
    tmp_path_factory: pytest.TempPathFactory,
    standard: Synth,
    fifo: Synth,
    two_routes: Synth,
    scaled: Synth,
    construct_example: dict[str, Any],
) -> dict[str, Path]:
    large_payloads = synth(LARGE_PAYLOADS_CONFIG, tmp_path_factory.mktemp("large"))
    shapes = {
        "standard": standard,
        "fifo": fifo,
        "two_routes": two_routes,
        "large_payloads": large_payloads,
        "scaled": scaled,
    }
    out = tmp_path_factory.mktemp("validators")
    bodies = {name: shape.json for name, shape in shapes.items()}
    bodies["construct_example"] = construct_example  # docs/examples/construct_app.py, an app of its own
    # The shape with every kind of resource the decisions cover (the ledger's table among them).
    bodies[STRIPPED] = strip_decisions(large_payloads.json)
    queue = next(r for r in bodies[STRIPPED]["Resources"].values() if r["Type"] == "AWS::SQS::Queue")
    queue["Properties"]["VisibilityTimeoutSecs"] = 30  # not a property of AWS::SQS::Queue
    paths = {}
    for name, body in bodies.items():
        paths[name] = out / f"{name}.template.json"
        paths[name].write_text(json.dumps(body, indent=1), encoding="utf-8")
    return paths


@pytest.fixture(scope="session")
def runs(checkov_bin: Path, templates: dict[str, Path]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Both tools at once over every template (each pays its start-up once; two cores run both)."""
    files = [str(path) for path in templates.values()]
    commands = {
        # Files first: --include-checks takes every value that follows it. Informational rules too.
        "cfn-lint": ([str(CFN_LINT), *files, "--format", "json", "--include-checks", "I"], None),
        "checkov": (
            [
                str(checkov_bin),
                "--framework",
                "cloudformation",
                "--skip-download",
                "--output",
                "json",
                "-f",
                *files,
            ],
            offline_checkov_env(),
        ),
    }
    started = {
        name: (
            command,
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env),
        )
        for name, (command, env) in commands.items()
    }
    done = {}
    try:
        for name, (command, process) in started.items():
            stdout, stderr = process.communicate(timeout=300)
            done[name] = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    finally:
        for _, process in started.values():  # a timeout leaves no tool running
            if process.poll() is None:
                process.kill()
                process.wait()
    return done


@pytest.fixture(scope="session")
def cfn_lint_matches(
    runs: dict[str, subprocess.CompletedProcess[str]], templates: dict[str, Path]
) -> dict[str, list[dict[str, Any]]]:
    run = runs["cfn-lint"]
    # Exit status is a bit set: 2 error, 4 warning, 8 informational; 1 means cfn-lint itself failed.
    assert run.returncode in range(0, 16, 2), run.stderr
    by_file: dict[str, list[dict[str, Any]]] = {name: [] for name in templates}
    for match in json.loads(run.stdout):
        by_file.setdefault(Path(str(match["Filename"])).name.removesuffix(".template.json"), []).append(match)
    assert by_file.keys() == templates.keys(), f"cfn-lint matched no template file: {by_file}"
    return by_file


@pytest.fixture(scope="session")
def checkov_results(
    runs: dict[str, subprocess.CompletedProcess[str]], templates: dict[str, Path]
) -> dict[str, dict[str, list[Any]]]:
    run = runs["checkov"]
    assert run.returncode in (0, 1), run.stderr  # 1: failed checks; anything else: checkov itself failed
    results = json.loads(run.stdout)["results"]
    assert results["parsing_errors"] == [], results["parsing_errors"]
    by_file: dict[str, dict[str, list[Any]]] = {
        name: {"failed": [], "passed": [], "skipped": []} for name in templates
    }
    for kind in ("failed", "passed", "skipped"):
        for check in results[f"{kind}_checks"]:
            name = Path(check["file_abs_path"]).name.removesuffix(".template.json")
            by_file[name][kind].append(check)
    return by_file


def describe_cfn_lint(matches: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{m['Rule']['Id']} {Path(m['Filename']).name}:{m['Location']['Start']['LineNumber']} {m['Message']}"
        for m in matches
    )


def describe_checkov(checks: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{c['check_id']} {c['resource']} ({c['check_name']}) {Path(c['file_abs_path']).name}:"
        f"{c['file_line_range']}"
        for c in checks
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_cfn_lint_finds_nothing(shape: str, cfn_lint_matches: dict[str, list[dict[str, Any]]]) -> None:
    # GIVEN the synthesized template of a stack shape
    # WHEN cfn-lint checks it (errors, warnings and informational rules)
    matches = cfn_lint_matches[shape]
    # THEN it reports nothing: fix infra/ or add a decision to sqs_sagemaker_invoker/infra/suppressions.py
    assert matches == [], f"cfn-lint findings in {shape}:\n{describe_cfn_lint(matches)}"


@pytest.mark.parametrize("shape", SHAPES)
def test_checkov_finds_nothing(shape: str, checkov_results: dict[str, dict[str, list[Any]]]) -> None:
    # GIVEN the synthesized template of a stack shape
    # WHEN checkov's CloudFormation checks run on it
    results = checkov_results[shape]
    # THEN checks ran and none failed: fix infra/ or add a decision to sqs_sagemaker_invoker/infra/suppressions.py
    assert results["passed"], f"checkov ran no check on {shape}"
    assert results["failed"] == [], f"checkov findings in {shape}:\n{describe_checkov(results['failed'])}"


def test_every_checkov_skip_is_a_decision_and_every_decision_is_used(
    checkov_results: dict[str, dict[str, list[Any]]],
) -> None:
    # GIVEN the checks checkov skipped in every shape
    skipped = [check for shape in SHAPES for check in checkov_results[shape]["skipped"]]
    reasons = {check: d.reason for d in suppressions.ALL for check in d.checkov}
    # THEN each skip carries its decision's reason, and no decision in the table is stale
    assert {(c["check_id"], c["check_result"]["suppress_comment"]) for c in skipped} == set(reasons.items())


def test_both_tools_report_a_template_without_the_decisions(
    cfn_lint_matches: dict[str, list[dict[str, Any]]], checkov_results: dict[str, dict[str, list[Any]]]
) -> None:
    # GIVEN a template without the decisions' Metadata, and with a property SQS does not have
    # WHEN both tools check it
    linted = {m["Rule"]["Id"] for m in cfn_lint_matches[STRIPPED]}
    failed = {c["check_id"] for c in checkov_results[STRIPPED]["failed"]}
    # THEN cfn-lint reports the invalid property and every finding the table accepts reappears
    assert "E3002" in linted, describe_cfn_lint(cfn_lint_matches[STRIPPED])
    assert {c for d in suppressions.ALL for c in d.cfn_lint} <= linted
    assert failed == {c for d in suppressions.ALL for c in d.checkov}
    assert checkov_results[STRIPPED]["skipped"] == []
