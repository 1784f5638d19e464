"""One-line errors: everything the user can fix ends as `error: ...` on stderr and a non-zero exit."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, NoReturn

import typer
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

_CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthFailure",
}


class CliError(Exception):
    """A problem the user can fix; printed as one line, never as a traceback."""

    def __init__(self, message: str, *, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


def describe_aws_error(exc: BaseException) -> str | None:  # noqa: PLR0911 - one answer per kind of SDK error
    """A one-line explanation of an SDK exception, or None when it is not one."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: configure a profile (`aws configure` or `aws sso login`) and pass "
            "--profile, or set AWS_PROFILE / AWS_ACCESS_KEY_ID"
        )
    if isinstance(exc, TokenRetrievalError | UnauthorizedSSOTokenError | SSOTokenLoadError):
        return f"AWS credentials could not be loaded ({exc}); run `aws sso login`"
    if isinstance(exc, ProfileNotFound):
        return f"AWS profile not found: {exc.kwargs.get('profile', exc)} (see ~/.aws/config)"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION, or give the profile a region"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return f"cannot reach the AWS endpoint: {exc}"
    if isinstance(exc, ReadTimeoutError):
        return f"the AWS endpoint did not answer in time: {exc}"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        operation = getattr(exc, "operation_name", "") or "AWS call"
        if code in _CREDENTIAL_CODES:
            return f"AWS credentials rejected ({code}: {error_message(exc)}); refresh them and retry"
        if code in {"AccessDenied", "AccessDeniedException"}:
            return f"access denied for {operation}: {error_message(exc)}"
        return f"{operation} failed: {code or 'error'}: {error_message(exc)}"
    if isinstance(exc, BotoCoreError):
        return f"AWS SDK error: {exc}"
    return None


def one_line(text: str) -> str:
    return " ".join(text.split())


def handle_errors[**P, R](func: Callable[P, R]) -> Callable[P, R]:
    """Turn CliError, SDK errors and Ctrl-C into `error: ...` plus an exit code (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            _fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)
        except (BotoCoreError, ClientError) as exc:
            _fail(describe_aws_error(exc) or str(exc), EXIT_ERROR)
        except OSError as exc:
            # Files the user named (payloads, --out, --ids): a one-line message names the path.
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_ERROR)

    return wrapper


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()
    raise typer.Exit(code)
