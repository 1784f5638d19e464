"""Cold-start probe: cProfile of `import invoker.handler` after a bare `import boto3, aws_lambda_powertools`
in a fresh interpreter, pinned to the client CPU(s): what the handler's cold start adds, by inclusive time.

    python bench/probes/cold_profile.py --cpus 0

Prints one JSON line: {"total_ms", "rows": [{"function", "ms", "percent"}, ...]} (the 25 slowest).
Run by path, like cold_import.py, and for the same reason."""

import os
import sys


def main() -> None:
    sys.path[0] = ""  # as `python -c` has it (see cold_import.py)
    argv = sys.argv[1:]
    cpus = argv[argv.index("--cpus") + 1] if "--cpus" in argv else ""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})
    import cProfile  # noqa: PLC0415
    import json  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    import aws_lambda_powertools  # noqa: F401, PLC0415
    import boto3  # noqa: F401, PLC0415

    profiler = cProfile.Profile()
    profiler.enable()
    import invoker.handler  # noqa: F401, PLC0415

    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, _, ct, _) in stats.values())
    rows = []
    for (path, _line, name), (_, _, _, ct, _) in stats.items():
        if path.startswith(("<", "~")) or name.startswith("<built-in"):
            continue
        short = path
        for marker in ("site-packages/", "functions/", "/lib/python3"):
            if marker in path:
                short = path.split(marker, 1)[1]
                short = short.split("/", 1)[1] if marker == "/lib/python3" else short
                break
        rows.append({"function": short + ":" + name, "ms": ct * 1000, "percent": 100 * ct / total})
    rows.sort(key=lambda r: -r["ms"])
    print(json.dumps({"total_ms": total * 1000, "rows": rows[:25]}))


if __name__ == "__main__":
    main()
