"""`invoker trace`: everything the function's logs say about one request, as a timeline."""

import json
import re
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from sqs_sagemaker_invoker.cli.errors import CliError
from sqs_sagemaker_invoker.cli.options import TargetOptions, targeted
from sqs_sagemaker_invoker.cli.trace import search
from sqs_sagemaker_invoker.cli.trace.render import print_trace
from sqs_sagemaker_invoker.cli.ui import stdout_console


class TraceMethod(StrEnum):
    auto = "auto"
    insights = "insights"
    filter = "filter"


_DURATION = re.compile(r"^(\d+)([smhd]?)$")


def parse_duration(text: str) -> int:
    found = _DURATION.match(text.strip())
    if not found:
        raise CliError(f"--since {text!r}: use a number with s, m, h or d (e.g. 30m, 24h, 7d)")
    return int(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]


@targeted
def trace(  # noqa: PLR0913 - typer options
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    request_id: Annotated[str, typer.Argument(help="The request id (or the SQS message id).")],
    since: Annotated[str, typer.Option(help="How far back to search (30m, 24h, 7d).")] = "24h",
    method: Annotated[
        TraceMethod, typer.Option(help="Logs Insights, FilterLogEvents, or auto (Insights, else the filter).")
    ] = TraceMethod.auto,
    log_group: Annotated[
        str | None, typer.Option(help="Log group (default: the function's).", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The log lines as JSON Lines.")] = False,
) -> None:
    """Everything the function's logs say about one request, as a timeline."""
    wanted = search.check_id(request_id)
    seconds = parse_duration(since)
    target, route = opts.open_route()
    group = log_group or target.function_info(route).log_group
    if not group:
        raise CliError(f"route {route.name} has no FunctionName output; pass --log-group")
    used, lines = search.find(target, group, wanted, since_s=seconds, method=method.value)
    if not lines:
        raise CliError(f"no log line mentions {wanted} in {group} in the last {since} (searched with {used})")
    if as_json:
        sys.stdout.writelines(json.dumps(line.to_json()) + "\n" for line in lines)
        return
    title = f"Trace of {escape(wanted)} — route {escape(route.name)}"
    print_trace(stdout_console(), lines, title=title, caption=f"{used} on {escape(group)}")
