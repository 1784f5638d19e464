"""`invoker local up|down|demo`: the local stack (moto, the SageMaker emulator, the real function).

Each command calls the typed entry points of sqs_sagemaker_invoker.local, imported only when asked;
starting a stack needs the `local` extra (moto, Powertools, scikit-learn), checked before it starts.
"""

import importlib.util
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sqs_sagemaker_invoker.cli.errors import CliError, handle_errors

DISTRIBUTION = "sqs-sagemaker-invoker"
EXTRA = "local"

local = typer.Typer(
    help="The local stack (moto, SageMaker emulator, the real function).", no_args_is_help=True
)

LocalStateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="INVOKER_STATE_DIR",
        help="State directory (default: .local-stack).",
        show_default=False,
    ),
]


# What the stack runs on (the AWS stand-in) and runs (the real function): both only in the extra.
EXTRA_MODULES = ("moto", "aws_lambda_powertools")


def _require_extra() -> None:
    """Before the stack is started: a missing optional dependency names the extra to install."""
    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise CliError(
            f"`invoker local` needs the `{EXTRA}` extra (missing: {', '.join(missing)}): "
            f"pip install '{DISTRIBUTION}[{EXTRA}]'"
        )


def _exit(code: int) -> None:
    if code:
        raise typer.Exit(code)


def _absolute(state_dir: Path | None) -> Path | None:
    # Absolute: a detached stack runs from another working directory.
    return state_dir.resolve() if state_dir is not None else None


@local.command("up")
@handle_errors
def local_up(  # noqa: PLR0913 - typer options
    *,
    state_dir: LocalStateDir = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; stop with `invoker local down`.")
    ] = False,
    wait: Annotated[float, typer.Option(help="With --detach: seconds to wait for start-up.")] = 120.0,
    logs: Annotated[bool, typer.Option("--logs", help="Echo the function's log lines.")] = False,
    container: Annotated[str, typer.Option(help="Model container: sklearn or echo.")] = "sklearn",
    startup_delay: Annotated[float, typer.Option(help="Model container start-up delay (s).")] = 0.0,
) -> None:
    """Start the local stack (Ctrl-C stops it, or --detach and `invoker local down`)."""
    if container not in ("sklearn", "echo"):
        raise typer.BadParameter(f"{container!r}: choose sklearn or echo", param_hint="--container")
    _require_extra()
    from sqs_sagemaker_invoker.local.__main__ import configure, up  # noqa: PLC0415 - only when asked

    configure()
    _exit(
        up(
            _absolute(state_dir),
            detach=detach,
            wait=wait,
            logs=logs,
            container="echo" if container == "echo" else "sklearn",
            startup_delay=startup_delay,
        )
    )


@local.command("down")
@handle_errors
def local_down(
    *,
    state_dir: LocalStateDir = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for it to stop.")] = 60.0,
) -> None:
    """Stop a local stack started with `invoker local up --detach`."""
    from sqs_sagemaker_invoker.local.__main__ import configure, down  # noqa: PLC0415 - only when asked

    configure()
    _exit(down(_absolute(state_dir), wait=wait))


class Scenario(StrEnum):
    MIXED = "mixed"
    SCALING = "scaling"


@local.command("demo")
@handle_errors
def local_demo(  # noqa: PLR0913 - the command's options, one each
    *,
    state_dir: LocalStateDir = None,
    scenario: Annotated[
        Scenario,
        typer.Option(
            help="mixed: a mixed workload with faults; scaling: a burst at an endpoint scaled from zero and back.",
        ),
    ] = Scenario.MIXED,
    requests: Annotated[
        int | None, typer.Option(help="Number of requests (default 400; scaling 300).", show_default=False)
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Messages sent per second (default 30; scaling: a burst).", show_default=False),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Give up after this many seconds (default 120; scaling 240).", show_default=False),
    ] = None,
    route: Annotated[
        str | None, typer.Option(help="Route (default: the first standard-queue route; mixed only).")
    ] = None,
) -> None:
    """Run the end-to-end demo on a fresh local stack and print its summary."""
    _require_extra()
    from sqs_sagemaker_invoker.local.__main__ import configure, demo  # noqa: PLC0415 - only when asked

    if scenario is Scenario.SCALING and route:
        raise CliError("--route: the scaling scenario builds its own route")
    configure()
    if scenario is Scenario.MIXED:
        # This command's own defaults for the mixed scenario (a gentler rate than the module's).
        requests = 400 if requests is None else requests
        rate = 30.0 if rate is None else rate
        timeout = 120.0 if timeout is None else timeout
    _exit(
        demo(
            _absolute(state_dir),
            requests=requests,
            rate=rate,
            timeout_s=timeout,
            route=route or None,
            scenario="scaling" if scenario is Scenario.SCALING else "mixed",
        )
    )
