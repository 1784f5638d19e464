"""The target options, accepted before the command (`invoker --local send`) and after it (`invoker send --local`).

Every command acts on one target: a deployed stack (`--stack NAME`) or the local stack (`--local`).
`targeted` adds the options to a command and hands it the two sets merged, the later one winning.
"""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from sqs_sagemaker_invoker.cli.errors import handle_errors
from sqs_sagemaker_invoker.cli.target import Route, Target, open_target

TARGET_PANEL = "Target"

StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="INVOKER_STACK",
        help="Deployed stack name (CloudFormation outputs, in the current AWS profile and region).",
        rich_help_panel=TARGET_PANEL,
        show_default=False,
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="The local stack (reads .local-stack/outputs.json; dummy credentials).",
        rich_help_panel=TARGET_PANEL,
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="INVOKER_STATE_DIR",
        help="Local stack state directory holding outputs.json (default: .local-stack in . or a parent). Implies --local.",
        rich_help_panel=TARGET_PANEL,
        show_default=False,
    ),
]
RouteOption = Annotated[
    str | None,
    typer.Option(
        "--route",
        "-r",
        envvar="INVOKER_ROUTE",
        help="Route name (default: the only route).",
        rich_help_panel=TARGET_PANEL,
        show_default=False,
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", help="AWS profile (default: AWS_PROFILE or default).", rich_help_panel=TARGET_PANEL
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region", help="AWS region (default: the profile's or AWS_REGION).", rich_help_panel=TARGET_PANEL
    ),
]


@dataclass(frozen=True)
class TargetOptions:
    stack: str | None = None
    local: bool = False
    state_dir: Path | None = None
    route: str | None = None
    profile: str | None = None
    region: str | None = None

    def merged(self, other: "TargetOptions") -> "TargetOptions":
        """`other` (given after the command) wins over self (given before it)."""
        return TargetOptions(
            stack=other.stack or self.stack,
            local=other.local or self.local,
            state_dir=other.state_dir or self.state_dir,
            route=other.route or self.route,
            profile=other.profile or self.profile,
            region=other.region or self.region,
        )

    def open(self) -> Target:
        return open_target(
            stack=self.stack,
            local=self.local,
            local_dir=self.state_dir,
            profile=self.profile,
            region=self.region,
        )

    def open_route(self) -> tuple[Target, Route]:
        target = self.open()
        return target, target.route(self.route)


_TARGET_PARAMETERS = [
    inspect.Parameter("stack", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=StackOption),
    inspect.Parameter("local", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=LocalOption),
    inspect.Parameter("state_dir", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=StateDirOption),
    inspect.Parameter("route", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=RouteOption),
    inspect.Parameter("profile", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ProfileOption),
    inspect.Parameter("region", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=RegionOption),
]
_TARGET_NAMES = [p.name for p in _TARGET_PARAMETERS]


def targeted(func: Callable[..., None]) -> Callable[..., None]:
    """Adds the target options to a command; it receives them merged as `opts: TargetOptions`."""
    signature = inspect.signature(func, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "opts"]
    kept = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.name != "ctx" else p for p in kept]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        given = TargetOptions(**{name: kwargs.pop(name) for name in _TARGET_NAMES})
        ctx: typer.Context = kwargs["ctx"]
        before = ctx.obj if isinstance(ctx.obj, TargetOptions) else TargetOptions()
        func(opts=before.merged(given), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *_TARGET_PARAMETERS])  # type: ignore[attr-defined]
    return handle_errors(wrapper)
