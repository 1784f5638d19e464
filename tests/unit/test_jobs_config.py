"""The job function's configuration is checked at cold start, and a bad setting is named."""

from __future__ import annotations

import pytest
from invoker.config import ConfigError
from invoker.jobs.config import load_jobs_config

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/"
ENV = {
    "ENDPOINT_NAME": "demo-classifier",
    "LEDGER_TABLE": "ledger",
    "LEDGER_KEY_PREFIX": "demo/",
    "REQUEST_QUEUE_URL": QUEUE + "requests",
    "JOB_CONTROL_QUEUE_URL": QUEUE + "jobs",
    "JOB_BUCKET": "results-bucket",
}


def test_a_complete_environment_loads_with_its_defaults() -> None:
    config = load_jobs_config(ENV)
    assert (config.max_backlog, config.watch_seconds, config.event_bus) == (None, 10, "default")
    assert load_jobs_config({**ENV, "JOB_MAX_BACKLOG": "400"}).max_backlog == 400


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"JOB_MAX_BACKLOG": "5"}, "JOB_MAX_BACKLOG=5 is out of range"),
        ({"JOB_CONTROL_QUEUE_URL": ""}, "JOB_CONTROL_QUEUE_URL is required"),
        ({"JOB_BUCKET": "Not_A_Bucket"}, "JOB_BUCKET='Not_A_Bucket'"),
        ({"JOB_PART_BYTES": "1024"}, "JOB_PART_BYTES=1024 is out of range"),
    ],
)
def test_a_bad_setting_is_named(change: dict[str, str], named: str) -> None:
    # GIVEN an environment with one bad setting WHEN loaded THEN the error names it
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        load_jobs_config({**ENV, **change})
