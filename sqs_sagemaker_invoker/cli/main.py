"""The `invoker` command line: producers send and collect, operators inspect, trace and redrive.

Every command acts on one target, a deployed stack (`--stack NAME`, found through CloudFormation in the
usual AWS profile and region) or the local stack (`--local`, from .local-stack/outputs.json), through
the same code: both are a dict of stack outputs (see sqs_sagemaker_invoker.cli.target).

This root owns the global options only; each command group is a module beside it (send, results, dlq,
status, trace, request, local) holding its command, its options and its rendering.
"""

import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.rich_utils

from sqs_sagemaker_invoker.cli.dlq import dlq
from sqs_sagemaker_invoker.cli.job import job
from sqs_sagemaker_invoker.cli.local import local
from sqs_sagemaker_invoker.cli.options import (
    LocalOption,
    ProfileOption,
    RegionOption,
    RouteOption,
    StackOption,
    StateDirOption,
    TargetOptions,
)
from sqs_sagemaker_invoker.cli.request import request
from sqs_sagemaker_invoker.cli.results import results
from sqs_sagemaker_invoker.cli.send import send
from sqs_sagemaker_invoker.cli.status import status
from sqs_sagemaker_invoker.cli.trace import trace
from sqs_sagemaker_invoker.cli.ui import no_color
from sqs_sagemaker_invoker.project import MARKER, PROJECT_DIR_ENV

DISTRIBUTION = "sqs-sagemaker-invoker"

app = typer.Typer(
    name="invoker",
    help=(
        "Send requests to an SQS -> SageMaker invoker route, collect results, and inspect, trace and "
        "redrive failures, on a deployed stack (--stack NAME) or the local stack (--local)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    # --install-completion / --show-completion (bash, zsh, fish, PowerShell).
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Typer lists the commands first (in this order), then the groups.
app.command()(send)
app.command()(results)
app.add_typer(dlq, name="dlq")
app.command()(status)
app.command()(trace)
app.command()(request)
app.add_typer(job, name="job")
app.add_typer(local, name="local")

if no_color():
    # Help and usage errors are rendered by Typer's own Rich console: no escape codes there either.
    typer.rich_utils.COLOR_SYSTEM = None


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"invoker {importlib.metadata.version(DISTRIBUTION)}\n")
        raise typer.Exit


@app.callback()
def main(  # noqa: PLR0913 - typer options
    ctx: typer.Context,
    *,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    stack: StackOption = None,
    local: LocalOption = False,
    state_dir: StateDirOption = None,
    route: RouteOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    project_dir: Annotated[
        Path | None,
        typer.Option(
            "--project-dir",
            envvar=PROJECT_DIR_ENV,
            file_okay=False,
            help=f"The project (its {MARKER} and local stack state); default: the nearest directory from here upwards holding {MARKER}.",
            show_default=False,
        ),
    ] = None,
) -> None:
    if project_dir is not None:
        # Through the environment: the local stack, and any process it starts, look there too.
        os.environ[PROJECT_DIR_ENV] = str(project_dir.resolve())
    ctx.obj = TargetOptions(stack, local, state_dir, route, profile, region)
