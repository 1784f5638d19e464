"""`python -m scripts.deploy_rehearsal`: bootstrap, deploy, check, destroy."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from scripts.deploy_rehearsal.checks import Rehearsal
from scripts.deploy_rehearsal.harness import (
    ACCOUNT,
    ARTIFACT,
    REGION,
    STACK_NAME,
    Aws,
    Checks,
    CommandFailed,
    cdk,
    cdk_environment,
    locked_versions,
    log,
    rehearsal_config,
)
from sqs_sagemaker_invoker.local.stand_ins import MotoServer


def run() -> int:
    raw_config, config = rehearsal_config()
    locked = locked_versions()
    checks = Checks()
    started = time.monotonic()
    # moto logs every request and every resource type its CloudFormation skips (listed once below).
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
    server = MotoServer(mode="thread").start()
    try:
        endpoint = server.url
        log(f"moto server on {endpoint}")
        with tempfile.TemporaryDirectory(prefix="deploy-rehearsal-") as scratch_dir:
            scratch = Path(scratch_dir)
            env = cdk_environment(endpoint, scratch)
            assembly = scratch / "cdk.out"
            # From an empty directory: with cdk.json in reach the CLI would synthesize the app first.
            cdk(["bootstrap", f"aws://{ACCOUNT}/{REGION}"], env, cwd=scratch)
            context = ["-c", "invoker=" + json.dumps(raw_config, separators=(",", ":"))]
            cdk(["deploy", "--require-approval", "never", "--output", str(assembly), *context], env)
            aws = Aws(endpoint)
            status = aws.cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
            checks.equal("stack status", status, "CREATE_COMPLETE")
            template = json.loads((assembly / f"{ARTIFACT}.template.json").read_text(encoding="utf-8"))
            rehearsal = Rehearsal(aws, template, checks)
            log(
                "not created by moto's CloudFormation (asserted in tests/infra): "
                + ", ".join(rehearsal.skipped_types())
            )
            for route in config.routes:
                rehearsal.route(route, config, locked)
            # Destroy exactly the deployed assembly (no second synth).
            cdk(["destroy", "--force", "--all", "--app", str(assembly)], env, cwd=scratch)
            alive = [
                s["StackStatus"]
                for s in aws.cfn.list_stacks()["StackSummaries"]
                if s["StackName"] == STACK_NAME
            ]
            checks.true("stack deleted by cdk destroy", all(s == "DELETE_COMPLETE" for s in alive), alive)
            left = aws.sqs.list_queues(QueueNamePrefix=STACK_NAME).get("QueueUrls", [])
            checks.equal("queues left after destroy", left, [])
    except (CommandFailed, subprocess.SubprocessError) as exc:
        checks.failures.append(str(exc))
    finally:
        server.stop()
        log("moto server stopped")
    elapsed = time.monotonic() - started
    if checks.failures:
        log(f"FAILED: {len(checks.failures)} mismatch(es), {checks.passed} checks passed, {elapsed:.0f} s")
        for failure in checks.failures:
            print(f"  - {failure}")
        return 1
    log(f"OK: {checks.passed} checks passed in {elapsed:.0f} s")
    return 0


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM as an exception: `finally` stops the moto server, subprocess.run kills a running cdk.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(run())
