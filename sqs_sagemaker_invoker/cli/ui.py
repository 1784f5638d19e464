"""Terminal output: data on stdout, people-facing text (tables, progress, notes) on stderr."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO

SPARK_CHARS = "▁▂▃▄▅▆▇█"
# Width of output that is not a terminal: wide enough that no table cell is wrapped or cut, so a pipe or
# a file gets whole values (renderables that fill the width, rules and ratio columns, are terminal-only).
PIPED_WIDTH = 100_000


def no_color() -> bool:
    """NO_COLOR (https://no-color.org): set and not empty."""
    return bool(os.environ.get("NO_COLOR"))


def stdout_console() -> Console:
    # Created per command (not at import) so that redirected streams, COLUMNS and NO_COLOR are honoured.
    console = _console(sys.stdout)
    if not console.is_terminal:
        console.width = PIPED_WIDTH
    return console


def stderr_console() -> Console:
    return _console(sys.stderr)


def _console(file: IO[str]) -> Console:
    # color_system None: no escape codes at all (Rich's own NO_COLOR handling keeps bold, dim and links).
    plain = no_color()
    return Console(
        file=file,
        highlight=False,
        soft_wrap=False,
        color_system=None if plain else "auto",
        no_color=plain or None,
    )


def progress(console: Console, *, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        # Rich would otherwise swap sys.stdout for its live display: data written to stdout meanwhile
        # (request ids) would land on the terminal and not in the file stdout is redirected to.
        redirect_stdout=False,
        # A progress bar in a log file or a pipe is noise: only on a terminal. NO_COLOR asks for plain
        # text: the live display is made of cursor escape codes.
        disable=not enabled or not console.is_terminal or no_color(),
    )


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value (blank for a missing one), scaled from 0 to the largest value."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    top = max(present)
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        elif top <= 0:
            out.append(SPARK_CHARS[0])
        else:
            index = round(value / top * (len(SPARK_CHARS) - 1))
            out.append(SPARK_CHARS[max(0, min(len(SPARK_CHARS) - 1, index))])
    return "".join(out)


def console_escape(text: str) -> str:
    """The AWS console's fragment encoding of a log group or stream name ("/" -> "$252F")."""
    return quote(quote(text, safe=""), safe="").replace("%", "$")


def log_stream_url(arn: str) -> str | None:
    """Console link of a log stream (arn:aws:logs:REGION:ACCOUNT:log-group:GROUP:log-stream:STREAM),
    or of its log group when the ARN names only the group."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[2] != "logs" or not parts[5].startswith("log-group:"):
        return None
    region = parts[3]
    group, sep, stream = parts[5].removeprefix("log-group:").partition(":log-stream:")
    url = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{console_escape(group.removesuffix(':*'))}"
    )
    return f"{url}/log-events/{console_escape(stream)}" if sep and stream else url


def stream_short_name(arn: str) -> str:
    """The stream's name, or the group's when the ARN names no stream."""
    if ":log-stream:" in arn:
        return arn.rsplit(":log-stream:", 1)[-1]
    return arn.split(":log-group:", 1)[-1] if ":log-group:" in arn else arn


def stream_link(arn: str) -> str:
    """Rich markup: the stream's short name, linked to the console when the ARN allows."""
    url = log_stream_url(arn)
    name = escape(stream_short_name(arn))
    return f"[link={url}]{name}[/link]" if url else name


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def format_ms_timestamp(milliseconds: int | str | None) -> str:
    if milliseconds in (None, ""):
        return "?"
    try:
        stamp = datetime.fromtimestamp(int(str(milliseconds)) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return str(milliseconds)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
