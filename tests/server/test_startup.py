"""The server's start-up path: what the first ``serve()`` of a process imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_first_serve_of_a_process_does_not_import_hypothesis() -> None:
    """kio registers hypothesis strategies when it can import hypothesis (0.5-1.5 s of
    start-up); the server hides it while importing kio, and hypothesis still imports
    afterwards."""
    code = textwrap.dedent("""
        import sys
        import eventlog
        with eventlog.open(None) as log, log.serve() as server:
            assert server.bootstrap_servers.startswith("127.0.0.1:")
        assert "hypothesis" not in sys.modules, "serve() imported hypothesis"
        import hypothesis.strategies  # still importable afterwards
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
