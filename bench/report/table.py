"""Markdown tables and the number formats the report uses throughout."""

from __future__ import annotations


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def latency(milliseconds: float | None) -> str:
    return "-" if milliseconds is None else f"{milliseconds:.1f} ms"


def times(value: float | None) -> str:
    """A ratio: 1.25x."""
    return "-" if value is None else f"{value:.2f}x"


def percent(value: float | None) -> str:
    """A fraction as a percentage: 0.5 is 50%."""
    return "-" if value is None else f"{100 * value:.0f}%"


def verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else "**pass**" if passed else "**FAIL**"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]
