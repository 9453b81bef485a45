"""A real full disk: a 2 MiB tmpfs, filled by a producer in a child process.

Before the fix the child died of SIGBUS (exit status 135, -7 here) the moment a
store into the memory map met a page with no block behind it; so did reopening a
nearly full log. Now the first append that cannot get its blocks raises
StorageError(ENOSPC), the child exits normally, every acknowledged record reads
back, reopening the full log works, and appends succeed once space is freed.

Needs root (to mount a tmpfs); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import errno, json, os, sys
    import eventlog
    from eventlog.errors import StorageError

    data, report = sys.argv[1], sys.argv[2]
    log = eventlog.open(data, topic_config={"segment_bytes": 256 * 1024})
    log.create_topic("t", exist_ok=True)
    producer = log.producer(linger_ms=0, retries=0)
    acked = []
    error = None
    for i in range(100_000):
        value = (b"%08d" % i) * 125  # 1,000 bytes
        try:
            producer.send("t", value, key=b"k").result()
        except StorageError as exc:
            error = [exc.errno, str(exc)]
            break
        acked.append(i)
    with open(report, "w") as f:
        json.dump({"acked": acked, "error": error}, f)
    try:
        log.close()
    except StorageError:
        pass  # closing a full log may fail to write its marker: it recovers on open
    """
)


@pytest.fixture
def tiny_disk(tmp_path: Path):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def run_child(data: Path, report: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", CHILD, str(data), str(report)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_a_full_disk_is_enospc_not_sigbus_and_nothing_acknowledged_is_lost(
    tiny_disk: Path, tmp_path: Path
) -> None:
    import eventlog

    ballast = tiny_disk / "ballast"
    ballast.write_bytes(b"\0" * 256 * 1024)  # freed later, to show appends resume
    data = tiny_disk / "data"
    report = tmp_path / "report.json"
    child = run_child(data, report)
    assert child.returncode == 0, f"child died ({child.returncode}): {child.stderr[-2000:]}"
    outcome = json.loads(report.read_text())
    acked = outcome["acked"]
    assert outcome["error"] is not None, "the disk never filled"
    code, message = outcome["error"]
    assert code == 28  # ENOSPC
    assert str(data) in message
    assert len(acked) > 500  # most of the disk was used

    # Reopening the full log must not die either, and every acknowledged record is there.
    child = subprocess.run(
        [sys.executable, "-c",
         "import eventlog, sys\n"
         "with eventlog.open(sys.argv[1]) as log:\n"
         "    print(log.partition('t', 0).end_offset)",
         str(data)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.returncode == 0, f"reopen died ({child.returncode}): {child.stderr[-2000:]}"
    assert int(child.stdout.strip()) >= len(acked)

    ballast.unlink()
    with eventlog.open(data) as log:
        p = log.partition("t", 0)
        got = [r.value for r in p.iter()]
        assert got[: len(acked)] == [(b"%08d" % i) * 125 for i in acked]
        p.append([(b"k", b"after the space came back")])
        assert p.read(p.end_offset - 1)[0].value == b"after the space came back"
