"""`invoker request`: one request's record in the route's ledger (timeline, state, result or reason)."""

import json
import shlex
import sys
from typing import Annotated

import typer
from invoker.envelope import REQUEST_ID

from sqs_sagemaker_invoker.cli.errors import CliError
from sqs_sagemaker_invoker.cli.options import TargetOptions, targeted
from sqs_sagemaker_invoker.cli.request.ledger import attach_result, read_record
from sqs_sagemaker_invoker.cli.request.render import print_record
from sqs_sagemaker_invoker.cli.ui import stdout_console


@targeted
def request(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    request_id: Annotated[str, typer.Argument(help="The request id (or, without one, the SQS message id).")],
    no_fetch: Annotated[bool, typer.Option("--no-fetch", help="Do not read the result from S3.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The record as one JSON document.")] = False,
) -> None:
    """Where a request is: its timeline in the route's ledger, its result or dead-letter reason."""
    if not REQUEST_ID.fullmatch(request_id):
        raise CliError(
            f"{request_id!r} is not a request id (1-128 of A-Z a-z 0-9 . _ : -, a letter or digit first)"
        )
    target, route = opts.open_route()
    record = read_record(target, route, request_id)
    if not no_fetch:
        attach_result(target, record)
    where = (
        ["--local"] if target.is_local else ["--stack", target.stack_name or "?", "--region", target.region]
    )
    trace_command = shlex.join(["invoker", "trace", request_id, *where, "--route", route.name])
    if as_json:
        sys.stdout.write(json.dumps({**record.to_json(), "traceCommand": trace_command}) + "\n")
        return
    print_record(stdout_console(), record, trace_command=trace_command)
