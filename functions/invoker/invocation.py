"""Calling the endpoint: the payload (inline or from S3), the concurrency limiter, the deadline and the
short in-batch re-attempt of a transient failure. Everything that reaches InvokeEndpoint goes through here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invoker.contract import INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES, Reason
from invoker.envelope import check_payload_size
from invoker.outcomes import (
    REATTEMPT_IN_BATCH,
    STOPS_THE_BATCH,
    InvalidMessage,
    InvocationError,
    RetryLater,
    classify,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from invoker.backoff import Pacing
    from invoker.batch import Batch
    from invoker.concurrency import AdaptiveLimiter
    from invoker.config import Config
    from invoker.envelope import InvokeRequest

# S3 errors below 500 that are still worth another try.
_S3_TRANSIENT = frozenset({"SlowDown", "RequestTimeout"})


@dataclass(frozen=True, slots=True)
class Invocation:
    response: dict[str, Any]
    body: bytes
    latency_ms: float


class EndpointCaller:
    def __init__(
        self,
        config: Config,
        runtime: SageMakerRuntimeClient,
        s3: Callable[[], S3Client],
        limiter: AdaptiveLimiter,
        pacing: Pacing,
    ) -> None:
        self._config = config
        self._runtime = runtime
        self._s3 = s3  # a factory: most routes never touch S3, so its client is built on first use
        self.limiter = limiter
        self._pacing = pacing

    def payload(self, request: InvokeRequest) -> bytes:
        return request.body if request.body is not None else self._fetch(request)

    def invoke(self, request: InvokeRequest, payload: bytes, batch: Batch) -> Invocation:
        """The endpoint's answer; raises the classified error once re-attempts are spent or not allowed."""
        attempt = 0
        while True:
            try:
                return self._attempt(request, payload, batch)
            except _Failed as failed:
                error = failed.error
                if attempt >= REATTEMPT_IN_BATCH.get(error.reason, 0):
                    raise error from failed.__cause__
            attempt += 1
            batch.observed.reattempt()
            # Short, jittered pause: the queue is the retry mechanism, this only rides out a blip.
            self._pacing.sleep(self._pacing.rng.uniform(0, min(1.0, 0.05 * 2**attempt)))

    def _attempt(self, request: InvokeRequest, payload: bytes, batch: Batch) -> Invocation:
        self._check_can_start(batch)
        gate = batch.gate or self.limiter
        permit = gate.acquire()
        try:
            # The wait for a permit can be long: check again before spending the endpoint's time.
            self._check_can_start(batch)
        except RetryLater:
            gate.release(permit)
            raise
        started = time.perf_counter()
        try:
            response: Any = self._runtime.invoke_endpoint(
                EndpointName=self._config.endpoint_name, Body=payload, **request.members
            )
            body: bytes = response["Body"].read()
        except Exception as exc:
            error = classify(exc)
            gate.release(permit, throttled=error.reason is Reason.THROTTLED)
            batch.observed.invocation()
            if error.reason in STOPS_THE_BATCH and batch.stopped is None:
                batch.stopped = (error.reason, f"endpoint answered {error.summary}: {error.message}")
            raise _Failed(error) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        gate.release(permit, succeeded=True)
        batch.observed.invocation(latency_ms)
        return Invocation(response, body, latency_ms)

    def _check_can_start(self, batch: Batch) -> None:
        if batch.stopped is not None:
            reason, answer = batch.stopped
            raise RetryLater(
                reason,
                f"not invoked: {answer}",
                summary=f"not invoked: the endpoint answered {reason.value}",
            )
        deadline_seconds = self._config.deadline_seconds
        if batch.remaining_ms is not None and batch.remaining_ms() < deadline_seconds * 1000:
            text = f"not invoked: less than {deadline_seconds} s of the function's time left"
            raise RetryLater(Reason.DEADLINE, text, summary=text)

    def _fetch(self, request: InvokeRequest) -> bytes:
        assert request.s3_uri is not None
        bucket, key = request.s3_uri
        try:
            obj = self._s3().get_object(Bucket=bucket, Key=key)
            check_payload_size(obj["ContentLength"])
            payload = obj["Body"].read(INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES + 1)
        except InvocationError:
            raise
        except Exception as exc:
            error = classify(exc)
            code = error.error_code or type(exc).__name__
            if error.http_status is not None and error.http_status < 500 and code not in _S3_TRANSIENT:
                raise InvalidMessage(
                    f"bodyS3Uri s3://{bucket}/{key} could not be read: {code}",
                    summary=f"bodyS3Uri could not be read: {code}",
                ) from exc
            raise RetryLater(
                Reason.TRANSPORT_ERROR,
                f"reading s3://{bucket}/{key} failed: {code}",
                summary=f"reading bodyS3Uri failed: {code}",
            ) from exc
        check_payload_size(len(payload))
        return payload


class _Failed(Exception):
    """One attempt's classified failure, for the re-attempt loop to judge."""

    def __init__(self, error: InvocationError) -> None:
        super().__init__(error.summary)
        self.error = error
