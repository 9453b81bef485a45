"""Every Python example in README.md and docs/*.md runs as written."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def examples() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for i, match in enumerate(FENCE.finditer(path.read_text())):
            found.append((f"{path.relative_to(ROOT)}#{i + 1}", match.group(1)))
    return found


def test_docs_have_examples() -> None:
    assert len(examples()) >= 5


@pytest.mark.parametrize(("where", "code"), examples(), ids=[w for w, _ in examples()])
def test_example_runs(where: str, code: str, tmp_path: Path, monkeypatch) -> None:
    if "from eventsourcing" in code:  # the pyeventsourcing examples need the optional extra
        pytest.importorskip("eventsourcing", reason="pip install -e '.[eventsourcing]'")
    if "eventlog.metrics.prometheus" in code:  # the exporter needs its optional extra
        pytest.importorskip("prometheus_client", reason="pip install -e '.[prometheus]'")
    monkeypatch.chdir(tmp_path)  # examples that open "data" write under a fresh directory
    # A real module in sys.modules, so that code resolving classes by their module
    # (pyeventsourcing's topics, pickle) finds the example's classes.
    module = types.ModuleType("__doc_example__")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, where, "exec"), module.__dict__)


def test_readme_quickstart_runs_twice_against_one_directory(tmp_path: Path, monkeypatch) -> None:
    """Pasted a second time, the quickstart uses the topic it created (exist_ok) and
    the group resumes after its commit: the second run prints the six new orders."""
    monkeypatch.chdir(tmp_path)
    code = next(code for where, code in examples() if where == "README.md#1")
    printed = []
    for run in range(2):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"README.md#1 run {run + 1}", "exec"), {"__name__": "__doc__"})
        printed.append(out.getvalue().splitlines())
    first = sorted(line.split()[:2] for line in printed[0])
    second = sorted(line.split()[:2] for line in printed[1])
    assert len(first) == len(second) == 6
    assert {offset for _, offset in first} == {"0", "1", "2"}
    assert {offset for _, offset in second} == {"3", "4", "5"}
    assert [p for p, _ in first] == [p for p, _ in second]
