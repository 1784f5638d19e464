"""Cold-start probe: one import statement timed in a fresh interpreter, pinned to the client CPU(s).

    python bench/probes/cold_import.py --cpus 0 --statement "import invoker.handler"

Prints one JSON line: {"import_s", "import_cpu_s", "maxrss_mb"} (wall and CPU seconds of the statement,
peak RSS after it).

Run by path, not with `python -m`: runpy would import `importlib.util`, `types` and `warnings` before the
clock starts, and the timed import would get them for free. For the same reason the arguments are read
by hand (argparse imports `re` and `gettext`), and nothing but `os`, `sys` and `time` is imported before
the statement."""

import os
import sys
import time


def arguments(argv: list[str]) -> dict[str, str]:
    """`--name value` pairs."""
    names, values = argv[0::2], argv[1::2]
    if len(names) != len(values) or not all(name.startswith("--") for name in names):
        raise SystemExit(f"usage: {sys.argv[0]} --cpus 0[,1...] --statement 'import ...'")
    return {name[2:]: value for name, value in zip(names, values, strict=True)}


def pin(cpus: str) -> None:
    """Empty: not pinned (no CPU layout on this machine)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})


def main() -> None:
    # The script's directory heads sys.path when run by path; put back what `python -c` has (the working
    # directory), so that module lookups during the timed statement go through the same path.
    sys.path[0] = ""
    args = arguments(sys.argv[1:])
    pin(args.get("cpus", ""))
    statement = compile(args["statement"], "<statement>", "exec")
    started, cpu = time.perf_counter(), time.process_time()
    exec(statement, {"__name__": "__main__"})
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    import json  # noqa: PLC0415 - after the clock: the statement must not get it for free
    import resource  # noqa: PLC0415

    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"import_s": elapsed, "import_cpu_s": cpu, "maxrss_mb": maxrss_mb}))


if __name__ == "__main__":
    main()
