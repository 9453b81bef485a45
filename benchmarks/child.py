"""Measurements in a fresh interpreter: cold-ish reopen, peak RSS, kill -9.

Parent side: ``call(module, function, **kwargs)`` runs ``function(**kwargs)`` in
``python -m benchmarks.child`` and returns the dict it returned;
``kill_when_ready`` starts a builder that prints ``READY <json>`` once its data is
written, then SIGKILLs it. Child side: ``main`` (this module run as a script).
A ``Skip`` raised in the child is raised again in the parent.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path

from .harness import Skip

__all__ = ["call", "kill_when_ready", "read_status_kb", "ready"]

REPO_ROOT = Path(__file__).resolve().parent.parent
_RESULT = "RESULT "
_SKIP = "SKIP "
_READY = "READY "


def _command(module: str, function: str, kwargs: dict) -> list[str]:
    return [sys.executable, "-m", "benchmarks.child", module, function, json.dumps(kwargs)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def call(module: str, function: str, *, timeout_s: float = 300, **kwargs) -> dict:
    """Run ``module.function(**kwargs)`` in a fresh interpreter; return its dict."""
    proc = subprocess.run(
        _command(module, function, kwargs),
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return _parse(proc.returncode, proc.stdout, proc.stderr)


def kill_when_ready(module: str, function: str, *, timeout_s: float = 300, **kwargs) -> dict:
    """Start a builder, SIGKILL it once it prints READY; return the READY payload."""
    proc = subprocess.Popen(
        _command(module, function, kwargs),
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        payload = _wait_ready(proc, timeout_s)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    if payload is None:
        return _parse(proc.returncode, "", stderr)
    return payload


def _wait_ready(proc: subprocess.Popen, timeout_s: float) -> dict | None:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while sel.select(timeout=timeout_s):
            line = proc.stdout.readline()
            if not line:
                return None
            if line.startswith(_READY):
                return json.loads(line[len(_READY) :])
            if line.startswith(_SKIP):
                raise Skip(line[len(_SKIP) :].strip())
    raise TimeoutError(f"builder not ready after {timeout_s:.0f} s")


def _parse(returncode: int, stdout: str, stderr: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith(_SKIP):
            raise Skip(line[len(_SKIP) :].strip())
        if line.startswith(_RESULT):
            return json.loads(line[len(_RESULT) :])
    last = (stderr.strip().splitlines() or [f"exit status {returncode}"])[-1]
    raise RuntimeError(f"child process failed: {last}")


def ready(payload: dict) -> None:
    """Child side: tell the parent the data is written (it may now kill us)."""
    print(_READY + json.dumps(payload), flush=True)


def read_status_kb(field: str) -> int:
    """A ``VmRSS``/``VmHWM``/``RssAnon`` figure of this process, in KiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def main(argv: list[str]) -> int:
    module, function, kwargs = argv[0], argv[1], json.loads(argv[2])
    try:
        result = getattr(importlib.import_module(module), function)(**kwargs)
    except Skip as exc:
        print(_SKIP + str(exc), flush=True)
        return 0
    except Exception:
        traceback.print_exc()
        return 1
    print(_RESULT + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
