"""Every Python example in README.md and docs/*.md runs as written."""

from __future__ import annotations

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
    monkeypatch.chdir(tmp_path)  # examples that open "data" write under a fresh directory
    # A real module in sys.modules, so that code resolving classes by their module
    # (pyeventsourcing's topics, pickle) finds the example's classes.
    module = types.ModuleType("__doc_example__")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, where, "exec"), module.__dict__)
