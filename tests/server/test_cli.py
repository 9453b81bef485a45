"""``eventlog serve [DIR] [--host] [--port]``: serves until SIGTERM, then closes cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from wire import decode_response, read_frame, request_frame

import eventlog

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "eventlog", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("eventlog serving "), (line, proc.stderr.read() if not line else "")
    return proc, int(line.rsplit(":", 1)[1])


def api_versions(port: int) -> Any:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_frame(18, 0, {}))
        return decode_response(read_frame(sock), 18, 0)[1]


@pytest.mark.parametrize("with_dir", [True, False])
def test_serve_until_sigterm(tmp_path: Path, with_dir: bool) -> None:
    args = [str(tmp_path / "data"), "--port", "0"] if with_dir else ["--port", "0"]
    proc, port = start(*args)
    try:
        assert api_versions(port).error_code.value == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    if with_dir:
        with eventlog.open(tmp_path / "data") as log:
            assert log.recovery.clean


def test_non_loopback_host_is_warned_about() -> None:
    # 192.0.2.1 (TEST-NET-1) is never this machine's: the warning comes before the bind
    # fails, so the test opens nothing to the network.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run([sys.executable, "-m", "eventlog", "serve", "--host", "192.0.2.1",
                          "--port", "0"], capture_output=True, text=True, env=env, timeout=30)
    assert run.returncode == 1
    assert "not a loopback address" in run.stderr
    assert "cannot listen on 192.0.2.1:0" in run.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    proc, port = start("--port", "0")
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        second = subprocess.run([sys.executable, "-m", "eventlog", "serve", "--port", str(port)],
                                capture_output=True, text=True, env=env, timeout=30)
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
