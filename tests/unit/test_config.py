"""The function's environment contract (docs/design.md), validated once at cold start."""

from __future__ import annotations

import pytest
from invoker.config import Config, ConfigError, load_config
from invoker.contract import MessageFormat, ResultsMode

DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/my-route-dlq"
RESULTS_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/my-route-results"


def make_env(**overrides: str | None) -> dict[str, str]:
    """The smallest valid environment; an override of None removes the variable."""
    env = {
        "ENDPOINT_NAME": "my-endpoint",
        "DEAD_LETTER_QUEUE_URL": DLQ_URL,
        "DEAD_LETTER_BUCKET": "my-route-dead-letters",
        "RESULTS_QUEUE_URL": RESULTS_URL,
        "MAX_RECEIVE_COUNT": "5",
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def config_error(**overrides: str | None) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(make_env(**overrides))
    return str(raised.value)


def test_defaults_of_every_optional_variable() -> None:
    # GIVEN only the required variables WHEN loaded
    config = load_config(make_env())
    # THEN every optional variable has the default of the contract
    assert config == Config(
        endpoint_name="my-endpoint",
        dead_letter_queue_url=DLQ_URL,
        dead_letter_bucket="my-route-dead-letters",
        dead_letter_prefix="dead-letters/",
        results_queue_url=RESULTS_URL,
        results_bucket=None,
        results_prefix="results/",
        results_mode=ResultsMode.DELIVER,
        max_receive_count=5,
        retry_base_seconds=2,
        retry_max_seconds=900,
        max_concurrency=16,
        message_format=MessageFormat.ENVELOPE,
        payload_s3_prefix=None,
        read_timeout_seconds=70,
        deadline_margin_seconds=5,
        sqs_sends_in_flight=4,
        log_payloads=False,
        enable_tracing=False,
    )
    assert config.deadline_seconds == 75


def test_every_variable_is_read() -> None:
    # GIVEN a value for every variable, none of them the default
    env = make_env(
        RESULTS_BUCKET="my-results-bucket",
        RESULTS_PREFIX="out/route-a/",
        DEAD_LETTER_PREFIX="letters/route-a/",
        RESULTS_MODE="deliver",
        MAX_RECEIVE_COUNT="1000",
        RETRY_BASE_SECONDS="3",
        RETRY_MAX_SECONDS="43200",
        MAX_CONCURRENCY="256",
        MESSAGE_FORMAT="raw",
        PAYLOAD_S3_PREFIX="s3://my-payloads/in/",
        READ_TIMEOUT_SECONDS="900",
        DEADLINE_MARGIN_SECONDS="300",
        SQS_SENDS_IN_FLIGHT="32",
        LOG_PAYLOADS="true",
        ENABLE_TRACING="true",
    )
    # WHEN loaded
    config = load_config(env)
    # THEN each lands in its field
    assert (config.results_bucket, config.results_prefix) == ("my-results-bucket", "out/route-a/")
    assert config.dead_letter_prefix == "letters/route-a/"
    assert (config.max_receive_count, config.retry_base_seconds, config.retry_max_seconds) == (1000, 3, 43200)
    assert (config.max_concurrency, config.message_format) == (256, MessageFormat.RAW)
    assert config.payload_s3_prefix == "s3://my-payloads/in/"
    assert (config.read_timeout_seconds, config.deadline_margin_seconds) == (900, 300)
    assert config.deadline_seconds == 1200
    assert config.sqs_sends_in_flight == 32
    assert (config.log_payloads, config.enable_tracing) == (True, True)


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the variables in the process environment (as in Lambda)
    for name, value in make_env(ENDPOINT_NAME="from-environ").items():
        monkeypatch.setenv(name, value)
    # WHEN loaded without an explicit mapping THEN os.environ is used
    assert load_config().endpoint_name == "from-environ"


@pytest.mark.parametrize(
    "name", ["ENDPOINT_NAME", "DEAD_LETTER_QUEUE_URL", "DEAD_LETTER_BUCKET", "MAX_RECEIVE_COUNT"]
)
@pytest.mark.parametrize("absent", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_required_variable_missing_names_it(name: str, absent: str | None) -> None:
    # GIVEN a required variable unset or empty WHEN loaded THEN the error names it
    message = config_error(**{name: absent})
    assert message.startswith(f"{name} is required")


def test_results_destination_required_when_delivering() -> None:
    # GIVEN neither a results queue nor a results bucket, in the default deliver mode
    message = config_error(RESULTS_QUEUE_URL=None)
    # THEN the error names both variables and the way out
    assert "RESULTS_QUEUE_URL" in message
    assert "RESULTS_BUCKET" in message
    assert "RESULTS_MODE=discard" in message


@pytest.mark.parametrize(
    ("overrides", "queue", "bucket"),
    [
        ({"RESULTS_QUEUE_URL": None, "RESULTS_BUCKET": "my-results"}, None, "my-results"),
        ({}, RESULTS_URL, None),
        ({"RESULTS_BUCKET": "my-results"}, RESULTS_URL, "my-results"),
    ],
    ids=["bucket-only", "queue-only", "both"],
)
def test_either_results_destination_is_enough(
    overrides: dict[str, str | None], queue: str | None, bucket: str | None
) -> None:
    # GIVEN a queue, a bucket or both WHEN loaded THEN both settings are as given
    config = load_config(make_env(**overrides))
    assert (config.results_queue_url, config.results_bucket) == (queue, bucket)


@pytest.mark.parametrize("mode", ["discard", "DISCARD", " Discard "])
def test_discard_mode_needs_no_results_destination(mode: str) -> None:
    # GIVEN RESULTS_MODE=discard (any case) and no results queue or bucket
    config = load_config(make_env(RESULTS_QUEUE_URL=None, RESULTS_MODE=mode))
    # THEN the configuration is valid and results are dropped on purpose
    assert config.results_mode is ResultsMode.DISCARD
    assert (config.results_queue_url, config.results_bucket) == (None, None)


MALFORMED = [
    ("ENDPOINT_NAME", "-leading-hyphen"),
    ("ENDPOINT_NAME", "trailing-hyphen-"),
    ("ENDPOINT_NAME", "under_score"),
    ("ENDPOINT_NAME", "has space"),
    ("ENDPOINT_NAME", "a" * 64),
    ("DEAD_LETTER_QUEUE_URL", "my-route-dlq"),
    ("DEAD_LETTER_QUEUE_URL", "ftp://sqs.us-east-1.amazonaws.com/123456789012/dlq"),
    ("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/bad name"),
    ("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/" + "q" * 81),
    ("RESULTS_QUEUE_URL", "arn:aws:sqs:us-east-1:123456789012:results"),
    ("RESULTS_BUCKET", "Upper-Case"),
    ("RESULTS_BUCKET", "ab"),
    ("RESULTS_BUCKET", "s3://my-bucket"),
    ("RESULTS_BUCKET", "b" * 64),
    ("RESULTS_PREFIX", "/absolute/"),
    ("RESULTS_PREFIX", "p" * 513),
    ("DEAD_LETTER_BUCKET", "Upper-Case"),
    ("DEAD_LETTER_BUCKET", "s3://my-bucket"),
    ("DEAD_LETTER_PREFIX", "/absolute/"),
    ("DEAD_LETTER_PREFIX", "p" * 513),
    ("RESULTS_MODE", "drop"),
    ("MESSAGE_FORMAT", "xml"),
    ("PAYLOAD_S3_PREFIX", "s3://my-payloads/in"),
    ("PAYLOAD_S3_PREFIX", "https://my-payloads.s3.amazonaws.com/in/"),
    ("PAYLOAD_S3_PREFIX", "s3://My_Payloads/in/"),
    ("MAX_RECEIVE_COUNT", "five"),
    ("MAX_RECEIVE_COUNT", "2.5"),
    ("MAX_RECEIVE_COUNT", "0"),
    ("MAX_RECEIVE_COUNT", "1001"),
    ("RETRY_BASE_SECONDS", "-1"),
    ("RETRY_BASE_SECONDS", "43201"),
    ("RETRY_BASE_SECONDS", "2s"),
    ("RETRY_MAX_SECONDS", "43201"),
    ("MAX_CONCURRENCY", "0"),
    ("MAX_CONCURRENCY", "257"),
    ("MAX_CONCURRENCY", "lots"),
    ("READ_TIMEOUT_SECONDS", "0"),
    ("READ_TIMEOUT_SECONDS", "901"),
    ("DEADLINE_MARGIN_SECONDS", "-1"),
    ("DEADLINE_MARGIN_SECONDS", "301"),
    ("SQS_SENDS_IN_FLIGHT", "0"),
    ("SQS_SENDS_IN_FLIGHT", "33"),
    ("LOG_PAYLOADS", "maybe"),
    ("ENABLE_TRACING", "enabled"),
]


@pytest.mark.parametrize(("name", "value"), MALFORMED, ids=[f"{n}={v[:20]}" for n, v in MALFORMED])
def test_malformed_value_names_variable_and_value(name: str, value: str) -> None:
    # GIVEN one malformed variable WHEN loaded
    message = config_error(**{name: value})
    # THEN the error names the variable and shows the value
    assert message.startswith(f"{name}=")
    assert value in message


def test_endpoint_name_longer_than_63_is_refused_even_when_hyphens_make_it_up() -> None:
    # GIVEN a 72-character endpoint name whose length comes from hyphens (the 63-character limit of
    # the contract is not in the pattern's repetition count, which bounds only the alphanumerics)
    name = "a" + "-" * 70 + "b"
    # WHEN loaded THEN it is refused, naming the variable
    assert config_error(ENDPOINT_NAME=name).startswith("ENDPOINT_NAME=")


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("ENDPOINT_NAME", "a", "endpoint_name", "a"),
        ("ENDPOINT_NAME", "a" * 63, "endpoint_name", "a" * 63),
        ("ENDPOINT_NAME", "Model-v2--blue", "endpoint_name", "Model-v2--blue"),
        ("ENDPOINT_NAME", "  my-endpoint \n", "endpoint_name", "my-endpoint"),
        ("DEAD_LETTER_QUEUE_URL", DLQ_URL + ".fifo", "dead_letter_queue_url", DLQ_URL + ".fifo"),
        (
            "DEAD_LETTER_QUEUE_URL",
            "http://127.0.0.1:5000/123456789012/dlq",
            "dead_letter_queue_url",
            "http://127.0.0.1:5000/123456789012/dlq",
        ),
        (
            "DEAD_LETTER_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/" + "q" * 80,
            "dead_letter_queue_url",
            "https://sqs.us-east-1.amazonaws.com/123456789012/" + "q" * 80,
        ),
        ("RESULTS_BUCKET", "abc", "results_bucket", "abc"),
        ("RESULTS_BUCKET", "b" * 63, "results_bucket", "b" * 63),
        ("RESULTS_BUCKET", "my.results-bucket", "results_bucket", "my.results-bucket"),
        ("PAYLOAD_S3_PREFIX", "s3://my-payloads/", "payload_s3_prefix", "s3://my-payloads/"),
        ("PAYLOAD_S3_PREFIX", "s3://my-payloads/a/b/", "payload_s3_prefix", "s3://my-payloads/a/b/"),
        ("RESULTS_PREFIX", "", "results_prefix", ""),
        ("RESULTS_PREFIX", "p" * 512, "results_prefix", "p" * 512),
        ("MAX_RECEIVE_COUNT", "1", "max_receive_count", 1),
        ("MAX_RECEIVE_COUNT", " 1000 ", "max_receive_count", 1000),
        ("RETRY_BASE_SECONDS", "0", "retry_base_seconds", 0),
        ("RETRY_MAX_SECONDS", "43200", "retry_max_seconds", 43200),
        ("MAX_CONCURRENCY", "1", "max_concurrency", 1),
        ("MAX_CONCURRENCY", "256", "max_concurrency", 256),
        ("READ_TIMEOUT_SECONDS", "1", "read_timeout_seconds", 1),
        ("READ_TIMEOUT_SECONDS", "900", "read_timeout_seconds", 900),
        ("DEADLINE_MARGIN_SECONDS", "0", "deadline_margin_seconds", 0),
        ("DEADLINE_MARGIN_SECONDS", "300", "deadline_margin_seconds", 300),
        ("MESSAGE_FORMAT", "RAW", "message_format", MessageFormat.RAW),
        ("RESULTS_MODE", "", "results_mode", ResultsMode.DELIVER),
    ],
    ids=lambda v: str(v)[:24],
)
def test_boundary_values_are_accepted(name: str, value: str, field: str, expected: object) -> None:
    # GIVEN a value at the edge of its range WHEN loaded THEN it is accepted as is (trimmed)
    assert getattr(load_config(make_env(**{name: value})), field) == expected


@pytest.mark.parametrize("name", ["LOG_PAYLOADS", "ENABLE_TRACING"])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("false", False), ("0", False),
     ("No", False), ("", False)],
)  # fmt: skip
def test_boolean_spellings(name: str, raw: str, expected: bool) -> None:
    # GIVEN a boolean spelt one of the accepted ways WHEN loaded THEN it reads as meant
    config = load_config(make_env(**{name: raw}))
    assert getattr(config, name.lower()) is expected


def test_retry_max_below_retry_base_is_refused_naming_both() -> None:
    # GIVEN a backoff cap below the first ceiling
    message = config_error(RETRY_BASE_SECONDS="60", RETRY_MAX_SECONDS="59")
    # THEN both variables and values are named
    assert "RETRY_MAX_SECONDS (59)" in message
    assert "RETRY_BASE_SECONDS (60)" in message


def test_retry_base_above_the_default_max_is_refused() -> None:
    # GIVEN only RETRY_BASE_SECONDS, above the default cap of 900
    message = config_error(RETRY_BASE_SECONDS="901")
    # THEN the default cap is reported as the conflict
    assert "RETRY_MAX_SECONDS (900)" in message


def test_retry_max_equal_to_base_is_accepted() -> None:
    # GIVEN a constant backoff ceiling WHEN loaded THEN it is valid
    config = load_config(make_env(RETRY_BASE_SECONDS="30", RETRY_MAX_SECONDS="30"))
    assert (config.retry_base_seconds, config.retry_max_seconds) == (30, 30)


def test_config_error_is_a_value_error() -> None:
    # GIVEN callers that catch ValueError THEN a ConfigError is one
    assert issubclass(ConfigError, ValueError)
