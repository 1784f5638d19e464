"""RESULTS.md, section 3: cold start and memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.measurements import COLD_STATEMENTS
from bench.report.table import ms, table

if TYPE_CHECKING:
    from bench.measurements import BenchRun


def section(run: BenchRun) -> list[str]:
    cold = run.sections.get("cold_start")
    memory = run.sections.get("memory", {"rows": []})["rows"]
    out = ["## 3. Cold start and memory", ""]
    if cold:
        out += [
            f"Fresh interpreters pinned to the client CPU, {cold['runs']} runs each, interleaved, median. "
            "Import = the import statement alone (in-process clock); process = spawn to exit, with "
            "interpreter start-up. `one_client` and `floor` are references, not handlers: the bare import plus "
            "one boto3 client, and the imports and the two clients any handler of this design needs (no "
            "handler code).",
            "",
        ]
        bare = cold["bare_import"]
        out += table(
            [
                "what",
                "statement",
                "import (wall)",
                "import (CPU)",
                "process",
                "vs bare import (wall / CPU)",
                "RSS after import",
            ],
            [
                [
                    name,
                    f"`{cold['statements'][name]}`",
                    ms(cold[name]["import_s"]),
                    ms(cold[name]["import_cpu_s"]),
                    ms(cold[name]["process_s"]),
                    f"{cold[name]['import_s'] / bare['import_s']:.2f}x / {cold[name]['import_cpu_s'] / bare['import_cpu_s']:.2f}x",
                    f"{cold[name]['maxrss_mb']:.1f} MB",
                ]
                for name in COLD_STATEMENTS
                if name in cold
            ],
        )
    profile = cold["profile"] if cold else {}
    if profile.get("rows"):
        out += [
            "Where `import invoker.handler` spends its time after a bare `import boto3, aws_lambda_powertools` "
            f"(cProfile, inclusive; {profile['total_ms']:.0f} ms under the profiler):",
            "",
        ]
        out += table(
            ["function", "ms", "% of the handler's import"],
            [[f"`{r['function']}`", f"{r['ms']:.1f}", f"{r['percent']:.0f}"] for r in profile["rows"][:18]],
        )
    if memory:
        out += table(
            ["handler", "messages", "peak RSS after import", "peak RSS after the batch"],
            [
                [
                    r["side"] if r["side"] == "invoker" else "textbook",
                    f"{r['messages']:,} x {r['message_size']} B",
                    f"{r['maxrss_after_import_mb']:.1f} MB",
                    f"{r['maxrss_mb']:.1f} MB",
                ]
                for r in memory
            ],
        )
    return out
