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
