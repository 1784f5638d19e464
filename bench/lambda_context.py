"""The Lambda context the benchmark's instances pass to the handler under test.

The tests (tests/factories.py, FakeContext) and the local stack (sqs_sagemaker_invoker/local/lambda_runtime.py, LambdaContext)
have their own; they are to become one."""

from __future__ import annotations

import time


class BenchContext:
    """Enough of a LambdaContext for Powertools and the invoker's deadline checks."""

    function_name = "invoker-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:invoker-bench"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/invoker-bench"
    log_stream_name = "bench"

    def __init__(self, timeout_ms: int) -> None:
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
