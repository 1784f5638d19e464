"""`python -m bench` (what `make bench` runs): every section, then bench/results/RESULTS.md, the charts
and bench/results/raw/results.json. `python -m bench --smoke`: the same at tiny sizes (CI)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from bench.measurements import BenchRun
from bench.plan import Plan
from bench.report.charts import write_charts
from bench.report.markdown import system_only, write_markdown
from bench.run import SECTIONS, run_benchmark
from bench.stack import ROOT
from bench.targets import targets


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, under a minute (CI)")
    parser.add_argument(
        "--out",
        default=None,
        help="output directory (default bench/results; with --smoke bench/results/raw/smoke, never committed)",
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})"
    )
    parser.add_argument(
        "--baseline-max",
        type=int,
        default=None,
        metavar="N",
        help="run the textbook handler on at most N messages per batch and extrapolate (flagged in the report)",
    )
    parser.add_argument("--cold-runs", type=int, default=None, help="fresh interpreters per cold-start probe")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: rewrite RESULTS.md and the charts from OUT/raw/results.json",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.smoke_plan() if args.smoke else Plan()
    if args.baseline_max is not None:
        plan = dataclasses.replace(plan, baseline_max_messages=args.baseline_max)
    if args.cold_runs is not None:
        plan = dataclasses.replace(plan, cold_runs=args.cold_runs)
    only = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    results_dir = ROOT / "bench" / "results"
    out = Path(args.out) if args.out else results_dir / "raw" / "smoke" if args.smoke else results_dir
    raw = out / "raw"
    if args.report_only:
        write_outputs(BenchRun.read(raw / "results.json"), out)
        return 0
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    command = "python -m bench" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    run = run_benchmark(plan, only, raw, command, progress)
    write_outputs(run, out)
    progress(f"wrote {out / 'RESULTS.md'}, charts and {raw / 'results.json'}")
    return 0


def write_outputs(run: BenchRun, out: Path) -> None:
    # `--only system` rewrites its own part and chart only: the other sections keep their last full run.
    alone = system_only(run)
    write_markdown(run, out / "RESULTS.md", system_only=alone)
    write_charts(run, out, system_only=alone)
    for target in targets(run):
        verdict = "pass" if target.passed else "FAIL" if target.passed is not None else "n/a"
        print(f"{verdict:4}  {target.name}: {target.measured} (goal {target.goal})")


if __name__ == "__main__":
    sys.exit(main())
