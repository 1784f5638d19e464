"""CAPACITY_MODE and the shared-capacity settings, validated at cold start naming the variable."""

from __future__ import annotations

import pytest
from invoker.config import ConfigError, SharedCapacityConfig, load_config
from invoker.contract import CapacityMode

from tests.unit.test_config import make_env

SHARED = {
    "CAPACITY_MODE": "shared",
    "CAPACITY_TABLE": "route-capacity",
    "CAPACITY_KEY": "orders#demo-classifier",
    "CONCURRENCY_PER_INSTANCE": "4",
}


def test_per_instance_is_the_default_and_reads_no_shared_setting() -> None:
    # GIVEN no CAPACITY_MODE, and a malformed shared setting that per-instance mode never reads
    config = load_config(make_env(CAPACITY_TABLE="x"))
    # THEN today's behaviour: per instance, nothing shared
    assert config.capacity_mode is CapacityMode.PER_INSTANCE
    assert config.shared_capacity is None


def test_shared_mode_reads_its_settings_with_their_defaults() -> None:
    config = load_config(make_env(**SHARED))
    assert config.capacity_mode is CapacityMode.SHARED
    assert config.shared_capacity == SharedCapacityConfig(
        table="route-capacity", key="orders#demo-classifier", concurrency_per_instance=4
    )
    assert config.shared_capacity.refresh_seconds == 10


def test_shared_mode_reads_every_optional_setting() -> None:
    config = load_config(
        make_env(
            **{
                **SHARED,
                "CAPACITY_VARIANT": "Blue-1",
                "CAPACITY_INFERENCE_COMPONENT": "llm-ic",
                "CAPACITY_REFRESH_SECONDS": "300",
                "CONCURRENCY_PER_INSTANCE": "1000",
            }
        )
    )
    shared = config.shared_capacity
    assert shared is not None
    assert (shared.variant, shared.inference_component, shared.refresh_seconds) == ("Blue-1", "llm-ic", 300)
    assert shared.concurrency_per_instance == 1000


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CAPACITY_MODE", "global", "is not one of: shared, per_instance"),
        ("CAPACITY_TABLE", None, "CAPACITY_TABLE is required"),
        ("CAPACITY_TABLE", "a b", "is not a DynamoDB table name"),
        ("CAPACITY_TABLE", "ab", "is not a DynamoDB table name"),
        ("CAPACITY_KEY", None, "CAPACITY_KEY is required"),
        ("CAPACITY_KEY", "k" * 1025, "is not the route's key"),
        ("CONCURRENCY_PER_INSTANCE", None, "CONCURRENCY_PER_INSTANCE is required"),
        ("CONCURRENCY_PER_INSTANCE", "0", "CONCURRENCY_PER_INSTANCE=0 is out of range (1-1000)"),
        ("CONCURRENCY_PER_INSTANCE", "1001", "out of range (1-1000)"),
        ("CONCURRENCY_PER_INSTANCE", "four", "is not an integer"),
        ("CAPACITY_VARIANT", "-blue", "is not a production variant name"),
        ("CAPACITY_INFERENCE_COMPONENT", "ic_1", "is not an inference component name"),
        ("CAPACITY_INFERENCE_COMPONENT", "c" * 64, "is not an inference component name"),
        ("CAPACITY_REFRESH_SECONDS", "0", "CAPACITY_REFRESH_SECONDS=0 is out of range (1-300)"),
        ("CAPACITY_REFRESH_SECONDS", "301", "out of range (1-300)"),
    ],
)
def test_a_bad_shared_setting_is_refused_naming_it(name: str, value: str | None, says: str) -> None:
    # GIVEN shared mode with one setting missing or malformed
    env = make_env(**{**SHARED, name: value})
    # WHEN the configuration is loaded THEN the error names the variable
    with pytest.raises(ConfigError, match=name) as raised:
        load_config(env)
    assert says in str(raised.value)


def test_the_longest_key_is_accepted() -> None:
    config = load_config(make_env(**{**SHARED, "CAPACITY_KEY": "k" * 1024}))
    assert config.shared_capacity is not None
    assert len(config.shared_capacity.key) == 1024
