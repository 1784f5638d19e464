"""Server-side SigV4 check: botocore's own canonicalisation recomputes the signature the client sent."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.credentials import Credentials

from sqs_sagemaker_invoker.local.sagemaker.wire import WireResponse, error_response

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SERVICE: Final = "sagemaker"
MAX_SKEW: Final = dt.timedelta(minutes=15)

MISSING_TOKEN: Final = "Missing Authentication Token"  # noqa: S105 - an error message
UNRECOGNIZED: Final = "The security token included in the request is invalid."
BAD_SIGNATURE: Final = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


class HeaderView(Protocol):
    def get(self, name: str, default: str | None = None, /) -> str | None: ...

    def get_all(self, name: str, failobj: list[str] | None = None, /) -> list[str] | None: ...

    def __contains__(self, name: object, /) -> bool: ...


class _Signed(dict[str, list[str]]):
    """What canonical_headers/signed_headers read from headers_to_sign: iteration and get_all."""

    def get_all(self, name: str) -> list[str]:
        return self[name]


@dataclass
class _Request:
    """The attributes of botocore's AWSRequest that SigV4Auth.canonical_request reads."""

    method: str
    url: str
    headers: HeaderView
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


class _Recomputer(SigV4Auth):
    # The server must sign exactly the headers the client listed, not whatever it received.
    def __init__(self, signed: list[str], region: str) -> None:
        super().__init__(Credentials("unused", "unused"), SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: Any) -> Any:
        picked = _Signed()
        for name in self._signed:
            values = request.headers.get_all(name)
            if values:
                picked[name] = values
        return picked


@dataclass(frozen=True)
class AuthResult:
    access_key: str = ""
    region: str = "us-east-1"
    error: WireResponse | None = None


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), sha256).digest()
    return key


def _parse_authorization(value: str) -> dict[str, str] | None:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        return None
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key] = val
    return parts


class _Refusal(Exception):
    """A request the service refuses, with the error response it answers."""

    def __init__(self, response: WireResponse) -> None:
        super().__init__(response)
        self.response = response


def _refuse(code: str, message: str) -> _Refusal:
    return _Refusal(error_response(code, message))


def _authorization_parts(authorization: str) -> dict[str, str]:
    """The Authorization header's Credential, SignedHeaders and Signature."""
    parts = _parse_authorization(authorization)
    if parts is None:
        raise _refuse(
            "IncompleteSignatureException",
            f"Authorization header requires 'Credential' parameter. Authorization={authorization}",
        )
    for required in ("Credential", "SignedHeaders", "Signature"):
        if required not in parts:
            raise _refuse(
                "IncompleteSignatureException",
                f"Authorization header requires '{required}' parameter. Authorization={authorization}",
            )
    return parts


class SigV4Verifier:
    """Checks `Authorization` like AWS does and answers its 403 error shapes."""

    def __init__(
        self,
        credentials: Mapping[str, str],
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._credentials = dict(credentials)
        self._clock = clock

    def verify(self, method: str, path: str, headers: HeaderView, body: bytes) -> AuthResult:
        try:
            return self._verify(method, path, headers, body)
        except _Refusal as refusal:
            return AuthResult(error=refusal.response)

    def _verify(self, method: str, path: str, headers: HeaderView, body: bytes) -> AuthResult:
        authorization = headers.get("Authorization")
        if not authorization:
            raise _refuse("MissingAuthenticationTokenException", MISSING_TOKEN)
        parts = _authorization_parts(authorization)
        access_key, date, region, secret = self._credential_scope(parts["Credential"])
        timestamp = headers.get("X-Amz-Date")
        if not timestamp:
            raise _refuse(
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                f"Authorization={authorization}",
            )
        skew_error = self._check_time(timestamp, date)
        if skew_error is not None:
            raise _Refusal(skew_error)

        signed = [name.strip().lower() for name in parts["SignedHeaders"].split(";") if name.strip()]
        host = headers.get("Host") or "localhost"
        request = _Request(
            method=method,
            url=f"http://{host}{path}",
            headers=headers,
            body=body,
            context={"timestamp": timestamp},
        )
        recomputer = _Recomputer(signed, region)
        # Duck-typed: only the attributes canonical_request reads (a real AWSRequest costs a prepare()).
        as_request = cast("Any", request)
        canonical = recomputer.canonical_request(as_request)
        string_to_sign = recomputer.string_to_sign(as_request, canonical)
        expected = hmac.new(
            _signing_key(secret, date, region, SERVICE), string_to_sign.encode(), sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, parts["Signature"]):
            raise _refuse("InvalidSignatureException", BAD_SIGNATURE)
        return AuthResult(access_key=access_key, region=region)

    def _credential_scope(self, credential: str) -> tuple[str, str, str, str]:
        """(access key, date, region, secret) of a ``Credential=AKID/date/region/service/aws4_request``."""
        scope = credential.split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise _refuse(
                "IncompleteSignatureException",
                f"Credential should be scoped to a valid region, not '{'/'.join(scope[2:3])}'.",
            )
        access_key, date, region, service, _ = scope
        secret = self._credentials.get(access_key)
        if secret is None:
            raise _refuse("UnrecognizedClientException", UNRECOGNIZED)
        if service != SERVICE:
            raise _refuse(
                "InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'."
            )
        return access_key, date, region, secret

    def _check_time(self, timestamp: str, scope_date: str) -> WireResponse | None:
        try:
            # strptime costs more than the rest of the check; the format is fixed (YYYYMMDDTHHMMSSZ).
            if len(timestamp) != 16 or timestamp[8] != "T" or timestamp[15] != "Z":
                raise ValueError(timestamp)
            signed_at = dt.datetime(
                int(timestamp[0:4]),
                int(timestamp[4:6]),
                int(timestamp[6:8]),
                int(timestamp[9:11]),
                int(timestamp[11:13]),
                int(timestamp[13:15]),
                tzinfo=dt.UTC,
            )
        except ValueError:
            return error_response(
                "IncompleteSignatureException",
                f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'.",
            )
        if timestamp[:8] != scope_date:
            return error_response(
                "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{scope_date}' != '{timestamp[:8]}', from '{timestamp}'.",
            )
        now = self._clock()
        fmt = now.strftime(SIGV4_TIMESTAMP)
        if signed_at < now - MAX_SKEW:
            earliest = (now - MAX_SKEW).strftime(SIGV4_TIMESTAMP)
            return error_response(
                "InvalidSignatureException",
                f"Signature expired: {timestamp} is now earlier than {earliest} ({fmt} - 15 min.)",
            )
        if signed_at > now + MAX_SKEW:
            latest = (now + MAX_SKEW).strftime(SIGV4_TIMESTAMP)
            return error_response(
                "InvalidSignatureException",
                f"Signature not yet current: {timestamp} is still later than {latest} ({fmt} + 15 min.)",
            )
        return None
