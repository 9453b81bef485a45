"""Whether the server's tests can run here: they need the 'server' extra (Python 3.11+)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

import eventlog


def test_server_extra_is_installed() -> None:
    for module in ("kio", "cramjam", "crc32c"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: the server tests need "
                        "pip install 'eventlog-embedded[server]' (Python 3.11+); "
                        f"this is Python {sys.version_info.major}.{sys.version_info.minor}")


def test_serve_without_the_extra_names_the_install_command(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "kio" or m.startswith("kio.")] + ["kio"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing kio now raises ImportError
    monkeypatch.delitem(sys.modules, "eventlog.server.server", raising=False)
    monkeypatch.delitem(sys.modules, "eventlog.server.protocol", raising=False)
    with eventlog.open(None) as log, pytest.raises(ImportError, match=r"\[server\]"):
        eventlog.serve(log)
