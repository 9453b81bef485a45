"""``python -m eventlog demo`` runs and shows what it claims."""

from __future__ import annotations

import subprocess
import sys

from eventlog.demo import GROUPS, run


def test_every_group_handles_every_order_exactly_once() -> None:
    lines: list[str] = []
    handled = run(out=lines.append)
    assert set(handled) == set(GROUPS)
    total = max(max(counts) for counts in handled.values())
    for counts in handled.values():
        assert sorted(counts) == list(range(1, total + 1))
        assert set(counts.values()) == {1}
    text = "\n".join(lines)
    assert "inventory#3: assigned" in text  # the group really scaled to three members
    assert "each exactly once" in text
    assert "NOT exactly once" not in text
    assert "lag 0" in text
    # the listener-decorator service: heidi's orders (every 8th) end in orders.DLT
    heidi = len([i for i in range(1, total + 1) if i % 8 == 7])
    assert f"shipping shipped {total - heidi} orders; {heidi} went to orders.DLT " \
        "(no address for heidi), picked up by support" in text


def test_demo_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eventlog", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "handled 90 of 90 orders, each exactly once" in result.stdout
