"""The handler module's cold start, in fresh interpreters (no sockets: clients are created, never called)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.factories import function_env

_PROBE = """
import json, sys
import invoker.handler as handler
print(json.dumps({
    "xray_imported": "aws_xray_sdk" in sys.modules,
    "pool": handler.runtime_client.meta.config.max_pool_connections,
    "retries": handler.runtime_client.meta.config.retries,
    "read_timeout": handler.runtime_client.meta.config.read_timeout,
    # botocore wraps the serializer in a validator unless parameter_validation=False (its config
    # object reports True either way).
    "validation": type(handler.runtime_client._serializer).__name__ == "ParamValidationDecorator",
}))
"""


def cold_start(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ENDPOINT_", "RESULTS_", "MAX_"))}
    environment.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", _PROBE], env=environment, capture_output=True, text=True, check=False
    )


def test_the_sdk_client_is_pinned_in_code() -> None:
    # GIVEN a valid configuration WHEN the module cold-starts
    probe = cold_start(**function_env(MAX_CONCURRENCY="32"))
    # THEN the runtime client makes one attempt, waits 70 s, and pools a connection per thread
    assert probe.returncode == 0, probe.stderr
    facts = json.loads(probe.stdout)
    assert facts["retries"] == {"mode": "standard", "total_max_attempts": 1}
    assert facts["read_timeout"] == 70
    assert facts["pool"] >= 32
    assert facts["validation"] is False


@pytest.mark.parametrize(("enabled", "imported"), [("false", False), ("true", True)])
def test_tracing_is_imported_only_when_enabled(enabled: str, imported: bool) -> None:
    probe = cold_start(**function_env(ENABLE_TRACING=enabled))
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["xray_imported"] is imported


def test_a_bad_setting_fails_the_cold_start_naming_it() -> None:
    probe = cold_start(**function_env(MAX_RECEIVE_COUNT="lots"))
    assert probe.returncode != 0
    assert "ConfigError: MAX_RECEIVE_COUNT='lots' is not an integer" in probe.stderr


_CAPACITY_PROBE = """
import json
import invoker.handler as handler

def described(client):
    if client is None:
        return None
    config = client.meta.config
    return {"service": client.meta.service_model.service_name, "retries": config.retries,
            "read_timeout": config.read_timeout, "connect_timeout": config.connect_timeout}

print(json.dumps({
    "dynamodb": described(handler.dynamodb_client),
    "sagemaker": described(handler.sagemaker_client),
    "budget": handler.processor.budget is not None,
}))
"""


def test_shared_capacity_clients_exist_only_in_shared_mode() -> None:
    shared_env = function_env(
        CAPACITY_MODE="shared",
        CAPACITY_TABLE="route-capacity",
        CAPACITY_KEY="k",
        CONCURRENCY_PER_INSTANCE="2",
    )
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENDPOINT_", "RESULTS_", "MAX_", "CAPACITY_"))
    }
    environment.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")

    def probe(env: dict[str, str]) -> dict[str, object]:
        run = subprocess.run(
            [sys.executable, "-c", _CAPACITY_PROBE],
            env={**environment, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        facts: dict[str, object] = json.loads(run.stdout)
        return facts

    # GIVEN per-instance mode (the default) WHEN the module cold-starts THEN no table, no control plane
    assert probe(function_env()) == {"dynamodb": None, "sagemaker": None, "budget": False}
    # GIVEN shared mode THEN both clients, a few short attempts each, and the route's budget
    facts = probe(shared_env)
    short = {
        "retries": {"mode": "standard", "total_max_attempts": 3},
        "read_timeout": 5,
        "connect_timeout": 2,
    }
    assert facts == {
        "dynamodb": {"service": "dynamodb", **short},
        "sagemaker": {"service": "sagemaker", **short},
        "budget": True,
    }
