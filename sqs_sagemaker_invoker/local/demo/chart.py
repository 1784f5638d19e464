"""The scaling scenario's chart: capacity (serving, desired) and backlog over time, as text sparklines in
the terminal and, when matplotlib is installed (the bench dependency group), as a PNG."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

log = logging.getLogger(__name__)

BLOCKS: Final = " ▁▂▃▄▅▆▇█"
WIDTH: Final = 60

# One point of the chart: seconds since the first request was sent, copies serving, copies asked for,
# messages waiting (visible + in flight).
Point = tuple[float, int, int, int]


def resample(points: Sequence[Point], width: int = WIDTH) -> list[Point]:
    """At most `width` points, evenly spaced in time; each bucket keeps its largest values (a peak of one
    tick stays visible)."""
    if len(points) <= width:
        return list(points)
    start, end = points[0][0], points[-1][0]
    span = (end - start) or 1.0
    buckets: list[list[Point]] = [[] for _ in range(width)]
    for point in points:
        buckets[min(width - 1, int((point[0] - start) / span * width))].append(point)
    out: list[Point] = []
    previous = points[0]
    for index, bucket in enumerate(buckets):
        if bucket:
            previous = (
                start + span * index / width,
                max(p[1] for p in bucket),
                max(p[2] for p in bucket),
                max(p[3] for p in bucket),
            )
        out.append(previous)
    return out


def sparkline(values: Sequence[float], top: float) -> str:
    """One character per value, 0 blank, `top` a full block."""
    if top <= 0:
        return BLOCKS[0] * len(values)
    steps = len(BLOCKS) - 1
    return "".join(BLOCKS[min(steps, round(v / top * steps))] if v > 0 else BLOCKS[0] for v in values)


def text_chart(points: Sequence[Point], max_copies: int) -> list[str]:
    """Three aligned sparklines (serving, desired, backlog) and the time axis."""
    if not points:
        return ["(no autoscaler readings)"]
    sampled = resample(points)
    backlog_top = max(p[3] for p in sampled)
    width = len(sampled)
    first, last = max(0.0, sampled[0][0]), max(0.0, sampled[-1][0])
    axis = f"{first:.0f} s".ljust(width - len(f"{last:.0f} s")) + f"{last:.0f} s"
    return [
        f"serving  |{sparkline([p[1] for p in sampled], max_copies)}| max {max(p[1] for p in sampled)}",
        f"desired  |{sparkline([p[2] for p in sampled], max_copies)}| max {max(p[2] for p in sampled)}",
        f"backlog  |{sparkline([p[3] for p in sampled], backlog_top)}| max {backlog_top}",
        f"          {axis}",
    ]


def write_png(points: Sequence[Point], path: Path, *, unit: str, provisioning_s: int) -> Path | None:
    """The chart as a PNG at `path`, or None when matplotlib is not installed."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional (bench group), only for this chart

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
        from matplotlib.ticker import MaxNLocator  # noqa: PLC0415
    except ImportError:
        log.info("matplotlib is not installed: no PNG chart")
        return None
    times = [p[0] for p in points]
    figure, capacity_axis = plt.subplots(figsize=(9, 4.5), dpi=100)
    capacity_axis.step(
        times, [p[2] for p in points], where="post", label=f"desired {unit}", color="tab:orange"
    )
    capacity_axis.step(times, [p[1] for p in points], where="post", label=f"serving {unit}", color="tab:blue")
    capacity_axis.set_xlabel("seconds since the first request was sent")
    capacity_axis.set_ylabel(unit)
    capacity_axis.set_ylim(bottom=0)
    capacity_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    backlog_axis = capacity_axis.twinx()
    backlog_axis.plot(times, [p[3] for p in points], label="backlog (visible + in flight)", color="tab:gray")
    backlog_axis.set_ylabel("messages")
    backlog_axis.set_ylim(bottom=0)
    lines = capacity_axis.get_legend_handles_labels()
    more = backlog_axis.get_legend_handles_labels()
    capacity_axis.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    capacity_axis.set_title(
        f"Local scale-out from zero and back (provisioning {provisioning_s} s here; minutes on AWS)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
