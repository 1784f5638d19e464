"""`invoker status`: per route, queue depths, dead letters by reason, alarms and recent metrics."""

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape

from sqs_sagemaker_invoker.cli.options import TargetOptions, targeted
from sqs_sagemaker_invoker.cli.status import collect
from sqs_sagemaker_invoker.cli.status.render import print_status
from sqs_sagemaker_invoker.cli.ui import stdout_console

SPARK_POINTS = 30


@targeted
def status(  # noqa: PLR0913 - typer options
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    namespace: Annotated[
        str | None,
        typer.Option(
            help="Metrics namespace (default: the function's, else SqsSageMakerInvoker).", show_default=False
        ),
    ] = None,
    minutes: Annotated[int, typer.Option(min=5, max=1440, help="Metrics window.")] = 60,
    dlq_sample: Annotated[
        int, typer.Option(min=0, help="Dead letters read to count reasons (put back after).")
    ] = 100,
) -> None:
    """Per route: queue depth, in flight, oldest age, dead letters by reason, alarms and recent metrics."""
    target = opts.open()
    routes = target.selected_routes(opts.route)
    period = max(60, minutes * 60 // SPARK_POINTS // 60 * 60)  # about SPARK_POINTS points, whole minutes
    statuses = [
        collect.collect(target, r, namespace=namespace, minutes=minutes, period=period, dlq_sample=dlq_sample)
        for r in routes
    ]
    if as_json:
        sys.stdout.write(json.dumps([s.to_json() for s in statuses], indent=2, default=str) + "\n")
        return
    out = stdout_console()
    out.print(
        f"[bold]{escape(target.label)}[/]"
        + (f" — dashboard {escape(target.dashboard_name)}" if target.dashboard_name else "")
    )
    for item in statuses:
        print_status(out, item, minutes)
