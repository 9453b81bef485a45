"""The import graph of eventlog: no cycle among its modules (imports inside functions count),
and every module sits in a layer of the import-linter contract (pyproject.toml)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Import cycles still being broken. Remove an entry when it is gone; the list must end empty.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()


def import_graph() -> Mapping[str, set[str]]:
    """module -> the eventlog modules it imports, at module level or inside a function
    (grimp reads every import statement). Imports under ``if TYPE_CHECKING:`` are left
    out: they never run."""
    graph = grimp.build_graph("eventlog", cache_dir=None, exclude_type_checking_imports=True)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def cycles(graph: Mapping[str, Iterable[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative), plus modules that import themselves."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: set[frozenset[str]] = set()
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        found.add(frozenset(component))
    return found


def test_cycles_finds_a_cycle_through_a_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert cycles(graph) == {frozenset("abc"), frozenset("e")}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_grimp_counts_imports_inside_functions(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "cyclic_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def later():\n    from . import high\n    return high\n")
    (package / "high.py").write_text("from . import low\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic_pkg", cache_dir=None)
    found = cycles({m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules})
    assert found == {frozenset({"cyclic_pkg.low", "cyclic_pkg.high"})}


def test_no_import_cycle_among_eventlog_modules() -> None:
    found = cycles(import_graph())
    assert found - KNOWN_CYCLES == set(), "break these cycles"
    assert KNOWN_CYCLES - found == set(), "gone now: remove from KNOWN_CYCLES"


def _layers() -> list[str]:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layered = [c for c in contracts if c["type"] == "layers"]  # the package's, storage's
    assert layered and all("ignore_imports" not in c for c in layered)
    return [m.strip() for c in layered for layer in c["layers"] for m in layer.split("|")]


def test_every_module_is_in_a_layer_of_the_contract() -> None:
    layers = _layers()
    outside = sorted(
        m for m in import_graph()
        if not any(m == top or m.startswith(top + ".") for top in layers)
        # a package whose modules are layers of their own (eventlog, eventlog.broker)
        and not any(top.startswith(m + ".") for top in layers)
    )
    assert outside == [], "add them to a layer in pyproject.toml"


def test_no_contract_lists_exceptions() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for contract in config["tool"]["importlinter"]["contracts"]:
        assert "ignore_imports" not in contract, contract["name"]
