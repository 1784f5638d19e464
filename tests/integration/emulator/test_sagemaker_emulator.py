"""The SageMaker Runtime emulator over real HTTP, checked against botocore's own parsing."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.auth
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from sqs_sagemaker_invoker.local.sagemaker import (
    ControlError,
    EmulatorClient,
    EmulatorControl,
    EmulatorProcess,
    EndpointSpec,
    FaultSpec,
    SageMakerEmulator,
)
from sqs_sagemaker_invoker.local.sagemaker.testing import DEFAULT_ENDPOINT, runtime_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from sqs_sagemaker_invoker.local.sagemaker.spec import ContainerKind

    type Factory = Callable[..., SageMakerEmulator]


ACCOUNT = "123456789012"
IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]
IRIS_VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def error_of(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def signed_request(
    url: str, name: str, body: bytes, headers: dict[str, str] | None = None, secret: str = "testing"
) -> tuple[str, dict[str, str]]:
    """Sign like botocore does and return (path, headers) for a raw http.client request."""
    request = AWSRequest("POST", f"{url}/endpoints/{name}/invocations", data=body, headers=headers or {})
    SigV4Auth(Credentials("testing", secret), "sagemaker", "us-east-1").add_auth(request)
    return f"/endpoints/{name}/invocations", dict(request.headers.items())


def raw_post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def containers() -> Iterator[tuple[SageMakerEmulator, str]]:
    """One emulator with real container processes for the whole module (scikit-learn takes seconds to load).

    Also returns the error code of a request sent right after start-up, while the model was loading.
    """
    specs = [
        EndpointSpec("echo-container", container="echo", model_timeout_s=0.5),
        EndpointSpec("demo-classifier", container="sklearn", startup_delay_s=1.0),
    ]
    with SageMakerEmulator(specs) as emulator:
        client = runtime_client(emulator.url)
        probe = error_of(lambda: client.invoke_endpoint(EndpointName="demo-classifier", Body=b"[1, 2, 3, 4]"))
        emulator.wait_ready(timeout=60)
        yield emulator, probe.response["Error"]["Code"]


# --- success path and InvokeEndpoint members ------------------------------------------------------------


@pytest.mark.parametrize("container", ["inline", "echo"])
def test_every_request_member_arrives_and_the_response_members_come_back(
    sagemaker_emulator_factory: Factory, container: ContainerKind
) -> None:
    # GIVEN an endpoint backed by the echo model (inline or as a container process)
    emulator = sagemaker_emulator_factory(EndpointSpec("members", container=container, variant="Blue"))
    emulator.wait_ready(timeout=15)
    client = runtime_client(emulator.url)

    # WHEN a request carries every member
    response = client.invoke_endpoint(
        EndpointName="members",
        Body=b'{"x": 1}',
        ContentType="application/json",
        Accept="application/json",
        CustomAttributes="trace=abc,c=1",
        TargetModel="model-a.tar.gz",
        TargetVariant="Blue",
        TargetContainerHostname="primary",
        InferenceId="req-123",
        EnableExplanations="`true`",
        InferenceComponentName="component-1",
    )

    # THEN the response members are the echo's and the variant that served it
    assert response["Body"].read() == b'{"x": 1}'
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "Blue"
    assert response["CustomAttributes"] == "trace=abc,c=1"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    # AND the emulator recorded exactly the members that were sent
    [recorded] = emulator.requests("members")
    assert recorded.members == {
        "EndpointName": "members",
        "ContentType": "application/json",
        "Accept": "application/json",
        "CustomAttributes": "trace=abc,c=1",
        "TargetModel": "model-a.tar.gz",
        "TargetVariant": "Blue",
        "TargetContainerHostname": "primary",
        "InferenceId": "req-123",
        "EnableExplanations": "`true`",
        "InferenceComponentName": "component-1",
    }
    assert recorded.body == b'{"x": 1}'
    assert recorded.path == "/endpoints/members/invocations"
    assert recorded.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert (recorded.outcome, recorded.status) == ("ok", 200)


def test_the_environment_variable_routes_a_plain_client_to_the_emulator(
    sagemaker_emulator: SageMakerEmulator,
) -> None:
    # GIVEN AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME set by the fixture WHEN a client is built without endpoint_url
    client = runtime_client(None)
    response = client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"ping", ContentType="text/plain")
    # THEN the emulator answered
    assert response["Body"].read() == b"ping"
    assert sagemaker_emulator.stats(DEFAULT_ENDPOINT)["ok"] == 1


def test_stateful_session_headers_travel_both_ways(sagemaker_emulator_factory: Factory) -> None:
    # GIVEN an echo container
    emulator = sagemaker_emulator_factory(EndpointSpec("sessions", container="echo"))
    emulator.wait_ready(timeout=15)
    client = runtime_client(emulator.url)
    # WHEN a session is opened and then closed
    opened = client.invoke_endpoint(EndpointName="sessions", Body=b"{}", SessionId="NEW_SESSION")
    session_id = opened["NewSessionId"].split(";")[0]
    closed = client.invoke_endpoint(
        EndpointName="sessions", Body=b'{"requestType": "CLOSE"}', SessionId=session_id
    )
    # THEN the container's session headers reach the client as NewSessionId / ClosedSessionId
    assert "Expires=" in opened["NewSessionId"]
    assert closed["ClosedSessionId"] == session_id
    assert emulator.requests("sessions")[1].members["SessionId"] == session_id


# --- errors as botocore parses them ----------------------------------------------------------------------

MODELLED = [
    ("model_not_ready", "ModelNotReadyException", 429),
    ("service_unavailable", "ServiceUnavailable", 503),
    ("internal_failure", "InternalFailure", 500),
    ("internal_dependency", "InternalDependencyException", 530),
    ("validation_error", "ValidationError", 400),
]


@pytest.mark.parametrize(("kind", "code", "status"), MODELLED)
def test_each_modelled_fault_arrives_as_its_exception_class(
    sagemaker_emulator: SageMakerEmulator,
    sagemaker_runtime_client: SageMakerRuntimeClient,
    kind: str,
    code: str,
    status: int,
) -> None:
    # GIVEN the next request is scripted to fail with the fault
    sagemaker_emulator.inject(DEFAULT_ENDPOINT, kind)
    # WHEN the client calls InvokeEndpoint
    error = error_of(
        lambda: sagemaker_runtime_client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")
    )
    # THEN botocore raises the modelled class with the wire status, once (retries pinned to one attempt)
    assert isinstance(error, getattr(sagemaker_runtime_client.exceptions, code))
    assert error.response["Error"]["Code"] == code
    assert error.response["Error"]["Message"]
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    assert error.response["ResponseMetadata"]["RequestId"]
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 0
    # AND the next request succeeds: the fault was consumed and counted
    sagemaker_runtime_client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")
    stats = sagemaker_emulator.stats(DEFAULT_ENDPOINT)
    assert (stats[kind], stats["ok"], stats["total"]) == (1, 1, 2)


def test_throttling_is_a_plain_client_error_with_http_400(
    sagemaker_emulator: SageMakerEmulator, sagemaker_runtime_client: SageMakerRuntimeClient
) -> None:
    # GIVEN a scripted throttle
    sagemaker_emulator.inject(DEFAULT_ENDPOINT, "throttled")
    # WHEN invoked
    error = error_of(
        lambda: sagemaker_runtime_client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")
    )
    # THEN it is not a modelled exception class, only a ClientError with the code
    assert type(error) is ClientError
    assert error.response["Error"]["Code"] == "ThrottlingException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_model_error_carries_the_container_status_message_and_log_stream(
    sagemaker_emulator: SageMakerEmulator, sagemaker_runtime_client: SageMakerRuntimeClient
) -> None:
    # GIVEN a scripted model error with the container's status and message
    sagemaker_emulator.inject(DEFAULT_ENDPOINT, "model_error", original_status_code=503, message="overloaded")
    # WHEN invoked
    error = error_of(
        lambda: sagemaker_runtime_client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")
    )
    # THEN botocore puts the ModelError fields at the top level of e.response
    assert isinstance(error, sagemaker_runtime_client.exceptions.ModelError)
    response: dict[str, Any] = dict(error.response)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 503
    assert response["OriginalMessage"] == "overloaded"
    assert (
        response["LogStreamArn"]
        == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{DEFAULT_ENDPOINT}"
    )
    assert response["Error"]["Message"].startswith(
        'Received server error (503) from primary with message "overloaded"'
    )


def test_an_unknown_endpoint_is_a_validation_error(sagemaker_runtime_client: SageMakerRuntimeClient) -> None:
    error = error_of(
        lambda: sagemaker_runtime_client.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"{}")
    )
    assert isinstance(error, sagemaker_runtime_client.exceptions.ValidationError)
    assert error.response["Error"]["Message"] == f"Endpoint no-such-endpoint of account {ACCOUNT} not found."
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bodies_over_6_mb_are_refused_and_6_mb_is_accepted(
    sagemaker_emulator: SageMakerEmulator, sagemaker_runtime_client: SageMakerRuntimeClient
) -> None:
    limit = 6_291_456
    # WHEN the body is exactly the limit THEN it is served
    ok = sagemaker_runtime_client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"a" * limit)
    assert len(ok["Body"].read()) == limit
    # WHEN it is one byte more THEN ValidationError, and the model never sees it
    error = error_of(
        lambda: sagemaker_runtime_client.invoke_endpoint(
            EndpointName=DEFAULT_ENDPOINT, Body=b"a" * (limit + 1)
        )
    )
    assert isinstance(error, sagemaker_runtime_client.exceptions.ValidationError)
    assert "6291456" in error.response["Error"]["Message"]
    assert sagemaker_emulator.stats(DEFAULT_ENDPOINT)["validation_error"] == 1


def test_over_long_header_members_and_an_unknown_variant_are_validation_errors(
    sagemaker_runtime_client: SageMakerRuntimeClient,
) -> None:
    client = sagemaker_runtime_client
    too_long = error_of(
        lambda: client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}", CustomAttributes="a" * 1025)
    )
    assert isinstance(too_long, client.exceptions.ValidationError)
    assert "customAttributes" in too_long.response["Error"]["Message"]
    variant = error_of(
        lambda: client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}", TargetVariant="Green")
    )
    assert isinstance(variant, client.exceptions.ValidationError)


# --- SigV4 ----------------------------------------------------------------------------------------------


def test_an_unsigned_request_is_missing_its_authentication_token(
    sagemaker_emulator: SageMakerEmulator,
) -> None:
    # GIVEN a client that does not sign
    client = runtime_client(
        sagemaker_emulator.url, Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
    )
    # WHEN it calls THEN AWS's 403 arrives as a ClientError with that code
    error = error_of(lambda: client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}"))
    assert error.response["Error"] == {
        "Code": "MissingAuthenticationTokenException",
        "Message": "Missing Authentication Token",
    }
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # AND the same over raw HTTP: status, error type header and JSON body
    status, headers, body = raw_post(
        sagemaker_emulator.url, f"/endpoints/{DEFAULT_ENDPOINT}/invocations", b"{}", {}
    )
    assert (status, headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    assert json.loads(body) == {"Message": "Missing Authentication Token"}
    assert sagemaker_emulator.stats(DEFAULT_ENDPOINT)["total"] == 0
    assert sagemaker_emulator.global_stats()["auth_rejected"] == 2


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        ("AKIDUNKNOWN", "testing", "UnrecognizedClientException"),
        ("testing", "not-the-secret", "InvalidSignatureException"),
    ],
)
def test_wrong_credentials_are_rejected_like_aws(
    sagemaker_emulator: SageMakerEmulator, key: str, secret: str, code: str
) -> None:
    client = runtime_client(sagemaker_emulator.url, aws_access_key_id=key, aws_secret_access_key=secret)
    error = error_of(lambda: client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}"))
    assert type(error) is ClientError
    assert error.response["Error"]["Code"] == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_configured_credentials_replace_the_defaults(sagemaker_emulator_factory: Factory) -> None:
    emulator = sagemaker_emulator_factory(
        EndpointSpec("e", container="inline"), access_key="AKIDLOCAL", secret_key="s3cret"
    )
    ok = runtime_client(emulator.url, aws_access_key_id="AKIDLOCAL", aws_secret_access_key="s3cret")
    assert ok.invoke_endpoint(EndpointName="e", Body=b"1")["Body"].read() == b"1"
    default = runtime_client(emulator.url)
    assert error_of(lambda: default.invoke_endpoint(EndpointName="e", Body=b"1")).response["Error"][
        "Code"
    ] == ("UnrecognizedClientException")


def test_a_body_changed_after_signing_breaks_the_signature(sagemaker_emulator: SageMakerEmulator) -> None:
    # GIVEN a correctly signed request WHEN its body is altered in transit
    path, headers = signed_request(sagemaker_emulator.url, DEFAULT_ENDPOINT, b'{"a": 1}')
    good = raw_post(sagemaker_emulator.url, path, b'{"a": 1}', headers)
    bad = raw_post(sagemaker_emulator.url, path, b'{"a": 2}', headers)
    # THEN only the original is accepted
    assert good[0] == 200
    assert (bad[0], bad[1]["x-amzn-errortype"]) == (403, "InvalidSignatureException")


def test_an_expired_signature_is_rejected(
    sagemaker_emulator: SageMakerEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a request signed 20 minutes ago (AWS allows 15 minutes of skew)
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    path, headers = signed_request(sagemaker_emulator.url, DEFAULT_ENDPOINT, b"{}")
    # WHEN sent THEN InvalidSignatureException "Signature expired"
    status, response_headers, body = raw_post(sagemaker_emulator.url, path, b"{}", headers)
    assert (status, response_headers["x-amzn-errortype"]) == (403, "InvalidSignatureException")
    assert json.loads(body)["Message"].startswith("Signature expired:")


# --- capacity, windows, latency, rates -------------------------------------------------------------------


def test_requests_beyond_capacity_are_throttled(sagemaker_emulator_factory: Factory) -> None:
    # GIVEN capacity 2 and a model that takes 600 ms
    emulator = sagemaker_emulator_factory(
        EndpointSpec("small", container="inline", capacity=2, latency_ms=600)
    )
    client = runtime_client(emulator.url)

    def call(_: int) -> str:
        try:
            client.invoke_endpoint(EndpointName="small", Body=b"{}")
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    # WHEN 6 requests arrive at once
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = sorted(pool.map(call, range(6)))
    # THEN 2 are served and 4 throttled
    assert results == ["ThrottlingException"] * 4 + ["ok"] * 2
    stats = emulator.stats("small")
    assert (stats["ok"], stats["throttled"]) == (2, 4)
    assert stats["max_in_flight"] >= 2


def test_a_throttle_window_then_normal_service(
    sagemaker_emulator: SageMakerEmulator, sagemaker_runtime_client: SageMakerRuntimeClient
) -> None:
    sagemaker_emulator.throttle_for(DEFAULT_ENDPOINT, 1.0)
    error = error_of(
        lambda: sagemaker_runtime_client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")
    )
    assert error.response["Error"]["Code"] == "ThrottlingException"
    time.sleep(1.05)
    assert (
        sagemaker_runtime_client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")["Body"].read()
        == b"{}"
    )


def test_latency_and_jitter_are_added(sagemaker_emulator_factory: Factory) -> None:
    faults = FaultSpec(latency_ms=100, latency_jitter_ms=50)
    emulator = sagemaker_emulator_factory(
        EndpointSpec("slow", container="inline", latency_ms=50, faults=faults)
    )
    client = runtime_client(emulator.url)
    started = time.monotonic()
    client.invoke_endpoint(EndpointName="slow", Body=b"{}")
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 1.5


def test_seeded_error_rates_are_reproducible(sagemaker_emulator: SageMakerEmulator) -> None:
    # GIVEN a 30% model error and 20% not-ready rate with a seed
    client = runtime_client(sagemaker_emulator.url)
    faults = FaultSpec(model_error_rate=0.3, model_error_status=502, model_not_ready_rate=0.2, seed=7)

    def run() -> list[str]:
        sagemaker_emulator.set_faults(DEFAULT_ENDPOINT, faults)
        codes = []
        for _ in range(60):
            try:
                client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")
                codes.append("ok")
            except ClientError as exc:
                codes.append(str(exc.response["Error"]["Code"]))
        return codes

    # WHEN the same sequential run happens twice THEN the outcomes are identical and roughly at the rates
    first, second = run(), run()
    assert first == second
    assert 8 <= first.count("ModelError") <= 30
    assert 4 <= first.count("ModelNotReadyException") <= 22
    assert first.count("ok") + first.count("ModelError") + first.count("ModelNotReadyException") == 60
    # AND clearing the faults restores normal service
    sagemaker_emulator.set_faults(DEFAULT_ENDPOINT, FaultSpec())
    assert (
        client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )


def test_scripted_faults_fail_exactly_the_next_requests_in_order(
    sagemaker_emulator: SageMakerEmulator, sagemaker_runtime_client: SageMakerRuntimeClient
) -> None:
    # GIVEN two model errors then one ServiceUnavailable are scripted
    sagemaker_emulator.inject(
        DEFAULT_ENDPOINT, "model_error", count=2, original_status_code=400, message="bad"
    )
    sagemaker_emulator.inject(DEFAULT_ENDPOINT, "service_unavailable")
    codes = []
    for _ in range(4):
        try:
            sagemaker_runtime_client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")
            codes.append("ok")
        except ClientError as exc:
            codes.append(str(exc.response["Error"]["Code"]))
    # THEN exactly those requests fail, in order
    assert codes == ["ModelError", "ModelError", "ServiceUnavailable", "ok"]
    assert sagemaker_emulator.stats(DEFAULT_ENDPOINT)["scripted_pending"] == 0


def test_an_inline_model_slower_than_the_timeout_is_the_timeout_model_error(
    sagemaker_emulator_factory: Factory,
) -> None:
    emulator = sagemaker_emulator_factory(
        EndpointSpec("t", container="inline", model_timeout_s=0.2, latency_ms=5000)
    )
    client = runtime_client(emulator.url)
    started = time.monotonic()
    error = error_of(lambda: client.invoke_endpoint(EndpointName="t", Body=b"{}"))
    assert time.monotonic() - started < 3.0  # the timeout, not the model's 5 s
    assert dict(error.response)["OriginalStatusCode"] == 0
    assert emulator.stats("t")["model_timeout"] == 1


def test_inline_start_up_delay_is_a_not_ready_phase(sagemaker_emulator_factory: Factory) -> None:
    emulator = sagemaker_emulator_factory(EndpointSpec("warming", container="inline", startup_delay_s=1.0))
    client = runtime_client(emulator.url)
    error = error_of(lambda: client.invoke_endpoint(EndpointName="warming", Body=b"{}"))
    assert isinstance(error, client.exceptions.ModelNotReadyException)
    emulator.wait_ready("warming", timeout=5)
    assert client.invoke_endpoint(EndpointName="warming", Body=b"{}")["Body"].read() == b"{}"


# --- model containers ------------------------------------------------------------------------------------


def test_a_container_not_ready_window_fails_its_ping_then_recovers(
    containers: tuple[SageMakerEmulator, str],
) -> None:
    emulator, _ = containers
    client = runtime_client(emulator.url)
    port = emulator.status("echo-container")["port"]
    # WHEN a not-ready window starts
    emulator.not_ready_for("echo-container", 1.5)
    # THEN the container's own /ping fails and the endpoint answers ModelNotReadyException
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/ping")
    assert conn.getresponse().status == 503
    conn.close()
    error = error_of(lambda: client.invoke_endpoint(EndpointName="echo-container", Body=b"{}"))
    assert isinstance(error, client.exceptions.ModelNotReadyException)
    # AND after the window the endpoint serves again
    emulator.wait_ready("echo-container", timeout=5)
    assert client.invoke_endpoint(EndpointName="echo-container", Body=b"{}")["Body"].read() == b"{}"


def test_a_container_slower_than_the_model_timeout_is_the_timeout_model_error(
    containers: tuple[SageMakerEmulator, str],
) -> None:
    emulator, _ = containers
    client = runtime_client(emulator.url)
    # WHEN the container takes 3 s and the endpoint's model timeout is 0.5 s
    started = time.monotonic()
    error = error_of(
        lambda: client.invoke_endpoint(
            EndpointName="echo-container", Body=b"{}", CustomAttributes="echo-sleep-ms=3000"
        )
    )
    elapsed = time.monotonic() - started
    # THEN ModelError with OriginalStatusCode 0 after about the timeout
    response: dict[str, Any] = dict(error.response)
    assert isinstance(error, client.exceptions.ModelError)
    assert response["OriginalStatusCode"] == 0
    assert "invocation timed out" in response["OriginalMessage"]
    assert response["Error"]["Message"].startswith(
        'Received server error (0) from primary with message "Your invocation timed out'
    )
    assert 0.45 <= elapsed < 2.5  # well before the container's 3 s
    # AND the next request is served normally
    assert client.invoke_endpoint(EndpointName="echo-container", Body=b"next")["Body"].read() == b"next"


def test_a_container_5xx_becomes_a_model_error(containers: tuple[SageMakerEmulator, str]) -> None:
    emulator, _ = containers
    client = runtime_client(emulator.url)
    error = error_of(
        lambda: client.invoke_endpoint(
            EndpointName="echo-container", Body=b"disk full", CustomAttributes="echo-status=507"
        )
    )
    response: dict[str, Any] = dict(error.response)
    assert (response["OriginalStatusCode"], response["OriginalMessage"]) == (507, "disk full")
    assert response["LogStreamArn"].endswith(":log-group:/aws/sagemaker/Endpoints/echo-container")


def test_the_sklearn_model_was_not_ready_while_loading(containers: tuple[SageMakerEmulator, str]) -> None:
    _, probe_code = containers
    assert probe_code == "ModelNotReadyException"


def test_the_sklearn_model_predicts_json_instances_single_rows_and_csv(
    containers: tuple[SageMakerEmulator, str],
) -> None:
    emulator, _ = containers
    client = runtime_client(emulator.url)

    def predict(body: bytes, content_type: str) -> list[dict[str, Any]]:
        response = client.invoke_endpoint(
            EndpointName="demo-classifier", Body=body, ContentType=content_type, Accept="application/json"
        )
        assert response["ContentType"] == "application/json"
        predictions: list[dict[str, Any]] = json.loads(response["Body"].read())["predictions"]
        return predictions

    batch = predict(json.dumps({"instances": [IRIS_SETOSA, IRIS_VIRGINICA]}).encode(), "application/json")
    single = predict(json.dumps(IRIS_SETOSA).encode(), "application/json")
    csv_rows = predict(b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv")

    assert [p["label"] for p in batch] == ["setosa", "virginica"]
    assert [p["label"] for p in single] == ["setosa"]
    assert [p["label"] for p in csv_rows] == ["setosa", "virginica"]
    assert set(batch[0]["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert abs(sum(batch[0]["probabilities"].values()) - 1.0) < 1e-3
    assert batch[0]["probabilities"]["setosa"] > 0.9


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b"[1, 2]", "application/json", 400, "expected 4 features"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"a,b,c,d", "text/csv", 400, "must be numbers"),
        (b"\x89PNG", "image/png", 415, "unsupported content type"),
    ],
)
def test_the_sklearn_model_rejects_bad_input_as_a_model_error(
    containers: tuple[SageMakerEmulator, str], body: bytes, content_type: str, status: int, fragment: str
) -> None:
    emulator, _ = containers
    client = runtime_client(emulator.url)
    error = error_of(
        lambda: client.invoke_endpoint(EndpointName="demo-classifier", Body=body, ContentType=content_type)
    )
    response: dict[str, Any] = dict(error.response)
    assert isinstance(error, client.exceptions.ModelError)
    assert response["OriginalStatusCode"] == status
    assert fragment in response["OriginalMessage"]
    assert response["Error"]["Message"].startswith(f"Received client error ({status}) from primary")


def test_an_echo_container_start_up_delay_is_a_not_ready_phase(sagemaker_emulator_factory: Factory) -> None:
    emulator = sagemaker_emulator_factory(EndpointSpec("delayed", container="echo", startup_delay_s=1.0))
    client = runtime_client(emulator.url)
    time.sleep(0.4)  # the process is up and listening, but /ping still fails
    error = error_of(lambda: client.invoke_endpoint(EndpointName="delayed", Body=b"{}"))
    assert isinstance(error, client.exceptions.ModelNotReadyException)
    emulator.wait_ready("delayed", timeout=10)
    assert emulator.status("delayed")["pid"] is not None
    assert client.invoke_endpoint(EndpointName="delayed", Body=b"{}")["Body"].read() == b"{}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); the state in /proc tells.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_container_is_restarted_and_stop_leaves_no_process(
    sagemaker_emulator_factory: Factory,
) -> None:
    # GIVEN a running echo container
    emulator = sagemaker_emulator_factory(EndpointSpec("crashy", container="echo"))
    emulator.wait_ready("crashy", timeout=10)
    first_pid = emulator.status("crashy")["pid"]
    # WHEN it dies THEN the emulator starts a new one
    emulator.kill_container("crashy")
    deadline = time.monotonic() + 10
    while emulator.status("crashy")["pid"] in (first_pid, None) or not emulator.is_ready("crashy"):
        assert time.monotonic() < deadline, "container was not restarted"
        time.sleep(0.05)
    second_pid = emulator.status("crashy")["pid"]
    assert emulator.stats("crashy")["container_restarts"] == 1
    # AND stop() leaves no container behind
    emulator.stop()
    assert not _alive(first_pid)
    assert not _alive(second_pid)


def test_stop_drops_kept_alive_connections(sagemaker_emulator_factory: Factory) -> None:
    emulator = sagemaker_emulator_factory(EndpointSpec("e", container="inline"))
    client = runtime_client(emulator.url)
    # reading the body returns the keep-alive connection to the client's pool
    assert client.invoke_endpoint(EndpointName="e", Body=b"{}")["Body"].read() == b"{}"
    emulator.stop()
    # THEN the next call finds no server behind its pooled connection (not an answer from a leftover thread)
    with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
        client.invoke_endpoint(EndpointName="e", Body=b"{}")


# --- control API, CLI, parent death ------------------------------------------------------------------------


def test_the_control_interface_drives_faults_and_reports(
    emulator_control: EmulatorControl, sagemaker_emulator: SageMakerEmulator
) -> None:
    # GIVEN the emulator driven only through EmulatorControl (in process, or over HTTP)
    assert isinstance(emulator_control, EmulatorControl)
    client = runtime_client(emulator_control.url)
    assert emulator_control.endpoint_names() == [DEFAULT_ENDPOINT]
    assert emulator_control.status(DEFAULT_ENDPOINT)["ready"] is True
    # WHEN a fault is scripted THEN the next request fails with it
    emulator_control.inject(DEFAULT_ENDPOINT, "internal_dependency", count=1)
    error = error_of(lambda: client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}"))
    assert isinstance(error, client.exceptions.InternalDependencyException)
    # fault spec replace and merge
    emulator_control.set_faults(DEFAULT_ENDPOINT, FaultSpec(throttle_rate=1.0))
    assert (
        emulator_control.update_faults(DEFAULT_ENDPOINT, throttle_rate=0.0, latency_ms=1.0).latency_ms == 1.0
    )
    assert emulator_control.faults(DEFAULT_ENDPOINT).throttle_rate == 0.0
    assert sagemaker_emulator.faults(DEFAULT_ENDPOINT).latency_ms == 1.0
    # a not-ready window
    emulator_control.not_ready_for(DEFAULT_ENDPOINT, 30)
    assert error_of(lambda: client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}")).response[
        "Error"
    ]["Code"] == ("ModelNotReadyException")
    with pytest.raises(TimeoutError):
        emulator_control.wait_ready(DEFAULT_ENDPOINT, timeout=0.1)
    emulator_control.not_ready_for(DEFAULT_ENDPOINT, 0)
    emulator_control.wait_ready(DEFAULT_ENDPOINT, timeout=2)
    # a throttling window, ended early
    emulator_control.throttle_for(DEFAULT_ENDPOINT, 30)
    throttled = error_of(lambda: client.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT, Body=b"{}"))
    assert throttled.response["Error"]["Code"] == "ThrottlingException"
    emulator_control.throttle_for(DEFAULT_ENDPOINT, 0)
    # a request and its record
    client.invoke_endpoint(
        EndpointName=DEFAULT_ENDPOINT, Body=b"\x00\x01", ContentType="application/x-bin", InferenceId="i-1"
    )
    last = emulator_control.requests(DEFAULT_ENDPOINT)[-1]
    assert (last.body, last.members["InferenceId"], last.outcome) == (b"\x00\x01", "i-1", "ok")
    stats = emulator_control.stats(DEFAULT_ENDPOINT)
    assert (stats["internal_dependency"], stats["model_not_ready"], stats["throttled"], stats["ok"]) == (
        1,
        1,
        1,
        1,
    )
    assert emulator_control.container_log(DEFAULT_ENDPOINT) == ""  # inline: no container, no log
    # endpoints added and removed at run time
    emulator_control.add_endpoint(EndpointSpec("added-later", container="inline"))
    assert client.invoke_endpoint(EndpointName="added-later", Body=b"x")["Body"].read() == b"x"
    emulator_control.remove_endpoint("added-later")
    assert isinstance(
        error_of(lambda: client.invoke_endpoint(EndpointName="added-later", Body=b"x")),
        client.exceptions.ValidationError,
    )
    assert emulator_control.global_stats()["unknown_endpoint"] == 1
    # reset
    emulator_control.reset()
    assert emulator_control.stats(DEFAULT_ENDPOINT)["total"] == 0
    assert emulator_control.global_stats()["unknown_endpoint"] == 0


def test_control_errors_are_python_errors_in_process_and_status_codes_over_http(
    sagemaker_emulator: SageMakerEmulator,
) -> None:
    http = EmulatorClient(sagemaker_emulator.url)
    # WHEN an endpoint is unknown THEN KeyError in process, 404 over HTTP
    with pytest.raises(KeyError):
        sagemaker_emulator.stats("nope")
    with pytest.raises(ControlError) as unknown:
        http.stats("nope")
    assert unknown.value.status == 404
    # WHEN an argument is bad THEN ValueError (SpecError) in process, 400 over HTTP
    with pytest.raises(ValueError, match="meteor_strike"):
        sagemaker_emulator.inject(DEFAULT_ENDPOINT, "meteor_strike")
    with pytest.raises(ControlError) as bad_kind:
        http.inject(DEFAULT_ENDPOINT, "meteor_strike")
    assert bad_kind.value.status == 400


def test_the_cli_runs_standalone_and_its_containers_die_with_it(aws_test_env: None) -> None:
    # GIVEN the emulator started as a CLI process with an echo container
    container_pid, log_dir = 0, None
    try:
        with EmulatorProcess([EndpointSpec("cli-echo", container="echo")]) as process:
            process.wait_ready("cli-echo", timeout=15)
            client = runtime_client(process.url)
            assert client.invoke_endpoint(EndpointName="cli-echo", Body=b"hi")["Body"].read() == b"hi"
            status = process.status("cli-echo")
            container_pid, log_dir = status["pid"], Path(status["log"]).parent
            assert process.pid is not None
            # WHEN the emulator process is killed outright (no chance to clean up)
            os.kill(process.pid, signal.SIGKILL)
            # THEN its container notices (its stdin closes) and exits by itself
            deadline = time.monotonic() + 10
            while _alive(container_pid):
                assert time.monotonic() < deadline, "the container outlived its emulator"
                time.sleep(0.05)
    finally:
        if container_pid and _alive(container_pid):
            os.kill(container_pid, signal.SIGKILL)
        if log_dir is not None:  # the killed emulator could not remove its temporary log directory
            shutil.rmtree(log_dir, ignore_errors=True)


def test_the_cli_reads_a_config_file(tmp_path: Any) -> None:
    config = tmp_path / "emulator.json"
    config.write_text(
        json.dumps(
            {"endpoints": [{"name": "from-file", "container": "inline", "faults": {"throttle_rate": 1.0}}]}
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sqs_sagemaker_invoker.local.sagemaker",
            "--config",
            str(config),
            "--exit-on-stdin-eof",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:")
        status = EmulatorClient(url).status("from-file")
        assert status["faults"]["throttle_rate"] == 1.0
        # AND the control CLI drives it
        ctl = [sys.executable, "-m", "sqs_sagemaker_invoker.local.sagemaker.ctl", "--url", url]
        subprocess.run(
            [*ctl, "inject", "from-file", "internal_failure", "--count", "3"], check=True, capture_output=True
        )
        stats = json.loads(
            subprocess.run([*ctl, "stats", "from-file"], check=True, capture_output=True).stdout
        )
        assert stats["scripted_pending"] == 3
        scaled = json.loads(
            subprocess.run(
                [*ctl, "capacity", "from-file", "0", "--provisioning-s", "5"], check=True, capture_output=True
            ).stdout
        )
        assert (scaled["current"], scaled["desired"]) == (0, 0)
        shown = json.loads(
            subprocess.run([*ctl, "capacity", "from-file"], check=True, capture_output=True).stdout
        )
        assert shown["describe"]["ProductionVariants"][0]["CurrentInstanceCount"] == 0
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # EOF stops it
        assert proc.wait(timeout=10) == 0
