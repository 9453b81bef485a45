"""The source stays in pieces a reader can hold: small classes, short functions, one owner per file.

Limits: no class over 500 lines, no function over 70, and every module opens with a
docstring whose first line says what the file owns.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "eventlog"
MAX_CLASS_LINES = 500
MAX_FUNCTION_LINES = 70


@functools.cache
def _modules() -> tuple[tuple[Path, ast.Module], ...]:
    """Every source file with its parsed tree, parsed once per test run."""
    return tuple((path, ast.parse(path.read_text())) for path in sorted(SOURCE.rglob("*.py")))


def oversized() -> set[str]:
    """``path:name`` for every class or function over its line limit."""
    found = set()
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                limit = MAX_CLASS_LINES
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                limit = MAX_FUNCTION_LINES
            else:
                continue
            assert node.end_lineno is not None
            if node.end_lineno - node.lineno + 1 > limit:
                found.add(f"{path.relative_to(SOURCE).as_posix()}:{node.name}")
    return found


def test_no_class_or_function_over_its_limit() -> None:
    assert oversized() == set(), "split these"


def test_every_module_opens_with_a_docstring_saying_what_it_owns() -> None:
    undocumented = []
    for path, tree in _modules():
        doc = ast.get_docstring(tree)
        first = (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
        if len(first) < 12:
            undocumented.append(path.relative_to(SOURCE).as_posix())
    assert undocumented == []
