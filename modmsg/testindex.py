"""Which bundled tests judge which requirement, read from the suites' source (an AST scan; no pytest run).

A test judges the requirements of its ``@pytest.mark.req(...)`` decorators, and, when a ``parametrize``
decorator hands out ``pytest.mark.req`` marks (itself or through a helper function of the module), the
requirement ids that decorator names, literally or through a module-level constant. tests/test_cli.py checks
the scan against what pytest collects.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modmsg.paths import suites_dir
from modmsg.requirements import ID_PATTERN


@dataclass(frozen=True)
class JudgingTest:
    nodeid: str  # suites/test_x.py::test_y (a parametrized test: the function, all its cases)
    parametrized: bool

    def __str__(self) -> str:
        return f"{self.nodeid} (parametrized)" if self.parametrized else self.nodeid


def _is_mark(node: ast.AST, name: str) -> bool:
    """``pytest.mark.NAME(...)`` (or ``mark.NAME(...)``)."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and isinstance(node.func.value, ast.Attribute | ast.Name)
        and (getattr(node.func.value, "attr", None) or getattr(node.func.value, "id", None)) == "mark"
    )


def _is_parametrize(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "parametrize"


def _hands_out_req_marks(node: ast.AST, helpers: dict[str, ast.AST]) -> bool:
    for inner in ast.walk(node):
        if _is_mark(inner, "req"):
            return True
        helper = inner.func.id if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) else None
        if helper in helpers and any(_is_mark(deep, "req") for deep in ast.walk(helpers[helper])):
            return True
    return False


def _ids(node: ast.AST, constants: dict[str, ast.AST]) -> set[str]:
    """Requirement ids written in ``node``, or in the module constants it names."""
    found: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str) and ID_PATTERN.match(inner.value):
            found.add(inner.value)
        elif isinstance(inner, ast.Name) and inner.id in constants:
            found |= _ids(constants[inner.id], {})
    return found


def _tests(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for inner in node.body:
                if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef) and inner.name.startswith("test"):
                    yield f"{node.name}::{inner.name}", inner


def _module_names(tree: ast.Module) -> tuple[dict[str, ast.AST], dict[str, ast.AST]]:
    constants: dict[str, ast.AST] = {}
    helpers: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.value is not None:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            constants[node.target.id] = node.value
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("test"):
            helpers[node.name] = node
    return constants, helpers


def judging_tests(directory: Path | None = None) -> dict[str, tuple[JudgingTest, ...]]:
    """Requirement id -> the tests that judge it, in file and line order."""
    directory = directory or suites_dir()
    index: dict[str, list[JudgingTest]] = {}
    for path in sorted(directory.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        constants, helpers = _module_names(tree)
        for name, function in _tests(tree):
            reqs: set[str] = set()
            parametrized = False
            for decorator in function.decorator_list:
                if _is_mark(decorator, "req"):
                    reqs |= _ids(decorator, constants)
                elif _is_parametrize(decorator):
                    parametrized = True
                    if _hands_out_req_marks(decorator, helpers):
                        reqs |= _ids(decorator, constants)
            test = JudgingTest(f"{directory.name}/{path.name}::{name}", parametrized)
            for req in reqs:
                index.setdefault(req, []).append(test)
    return {req: tuple(tests) for req, tests in index.items()}
