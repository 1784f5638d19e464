"""The programs the benchmark runs in child processes, each a module of its own:

- `python -m bench.probes.lambda_instance`: one Lambda instance (the handler under test, warm);
- `bench/probes/cold_import.py`: one import statement timed in a fresh interpreter;
- `bench/probes/cold_profile.py`: cProfile of the handler's import in a fresh interpreter.

The two cold-start probes are run by path (`python bench/probes/cold_import.py ...`), not with `-m`, and
import nothing before their clock but `os`, `sys` and `time` (see cold_import.py)."""
