"""The emulator package stays readable: its modules import each other in one direction, none is too long."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sqs_sagemaker_invoker" / "local" / "sagemaker"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parents[2]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every sqs_sagemaker_invoker.local.sagemaker module the file imports, wherever the import is (lazy and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            # `from sqs_sagemaker_invoker.local.sagemaker import emulator` names a module too
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("sqs_sagemaker_invoker.local.sagemaker.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imports(path) & modules.keys() - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path (first module repeated at the end), or [] when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_emulator_modules_import_each_other_without_a_cycle() -> None:
    # GIVEN every import between the emulator's modules, the lazy and type-only ones included
    graph = _graph()
    assert "sqs_sagemaker_invoker.local.sagemaker.emulator" in graph
    # THEN they form no cycle (a module is readable without the ones that use it)
    assert _cycle(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    # GIVEN a small graph with a cycle through three modules THEN it is reported as a path
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_no_emulator_module_is_too_long() -> None:
    # GIVEN every module of the emulator package THEN each stays short enough to read in one sitting
    lengths = {_module_name(path): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: lines for name, lines in lengths.items() if lines > MAX_LINES} == {}
