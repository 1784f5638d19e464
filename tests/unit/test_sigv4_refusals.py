"""The emulator refuses a malformed or foreign Authorization as SageMaker Runtime does: each problem with its
own error type and message, found before any signature is computed."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sqs_sagemaker_invoker.local.sagemaker._http import Headers
from sqs_sagemaker_invoker.local.sagemaker.sigv4 import (
    BAD_SIGNATURE,
    MISSING_TOKEN,
    UNRECOGNIZED,
    SigV4Verifier,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
AMZ_DATE = "20260101T000000Z"
SCOPE = "testing/20260101/us-east-1/sagemaker/aws4_request"


def _authorization(credential: str = SCOPE, signed: str | None = "host", signature: str = "0" * 64) -> str:
    parts = [f"Credential={credential}"]
    if signed is not None:
        parts.append(f"SignedHeaders={signed}")
    parts.append(f"Signature={signature}")
    return "AWS4-HMAC-SHA256 " + ", ".join(parts)


@pytest.mark.parametrize(
    ("authorization", "amz_date", "error_type", "message"),
    [
        (None, AMZ_DATE, "MissingAuthenticationTokenException", MISSING_TOKEN),
        ("Bearer token", AMZ_DATE, "IncompleteSignatureException", "requires 'Credential' parameter"),
        (_authorization(signed=None), AMZ_DATE, "IncompleteSignatureException", "requires 'SignedHeaders'"),
        (
            _authorization(credential="testing/20260101/us-east-1"),
            AMZ_DATE,
            "IncompleteSignatureException",
            "scoped to a valid region",
        ),
        (
            _authorization(credential=SCOPE.replace("testing", "nobody")),
            AMZ_DATE,
            "UnrecognizedClientException",
            UNRECOGNIZED,
        ),
        (
            _authorization(credential=SCOPE.replace("sagemaker", "s3")),
            AMZ_DATE,
            "InvalidSignatureException",
            "scoped to correct service: 'sagemaker'",
        ),
        (_authorization(), None, "IncompleteSignatureException", "either a 'X-Amz-Date' or a 'Date' header"),
        (_authorization(), AMZ_DATE, "InvalidSignatureException", BAD_SIGNATURE),
    ],
    ids=[
        "no header",
        "not sigv4",
        "no signed headers",
        "short scope",
        "unknown key",
        "other service",
        "no date",
        "wrong signature",
    ],
)
def test_each_authorization_problem_is_refused_with_its_own_error(
    authorization: str | None, amz_date: str | None, error_type: str, message: str
) -> None:
    # GIVEN a request whose Authorization (or date) has one problem
    headers = Headers()  # the emulator server's own
    headers.add("Host", "127.0.0.1:8080")
    if authorization is not None:
        headers.add("Authorization", authorization)
    if amz_date is not None:
        headers.add("X-Amz-Date", amz_date)
    verifier = SigV4Verifier({"testing": "testing"}, clock=lambda: NOW)
    # WHEN the emulator checks it
    result = verifier.verify("POST", "/endpoints/demo/invocations", headers, b"{}")
    # THEN it is refused with that problem's error type and message, and nothing is accepted
    assert result.error is not None
    assert result.error.error_type == error_type
    assert message in json.loads(result.error.body)["Message"]
    assert result.access_key == ""
