"""Interrupted compaction: a crash at every step of the cleaner's swap, leftovers on
disk, and kill -9 of a process that appends and compacts (STYLE 2.4 item 4(d)).

Whatever the moment of the crash, reopening must give a consistent log (its own
``check()`` passes, no ``.cleaned`` or ``.swap`` file is left), holding only records
that were written, at their offsets, in order, with the same end offset, and the
latest value of every key. Cleaning the reopened log must then give exactly what an
uninterrupted cleaning gives.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import eventlog
from crashsim import abandon  # tests/ is on sys.path (its conftest.py)
from eventlog.config import TopicConfig
from eventlog.storage.files import segment_file_name
from eventlog.storage.partition_log import PartitionLog

pytestmark = pytest.mark.slow

NOW = 1_700_000_000_000
# Tombstones outlive the test (delete_retention_ms): a crash then a second cleaning
# must give what one cleaning gives. Their removal is tested in unit tests.
CONFIG = TopicConfig(segment_bytes=500, index_interval_bytes=100, cleanup_policy="compact",
                     min_cleanable_dirty_ratio=0.0)
LOCK = threading.Lock()


def key(offset: int) -> bytes:
    return b"k%d" % (offset * 7 % 11)


def value(offset: int) -> bytes | None:
    return None if offset % 13 == 5 else b"v%d" % offset


def write_log(directory: str, count: int) -> None:
    """Records [0, count) in segments of a few batches, cleaned once halfway (so the
    cleaning under test also merges the small segments the first one left), then
    an active segment holding one more record."""
    log = PartitionLog(directory, CONFIG, now_ms=NOW)
    offset = 0
    while offset < count:
        n = min(1 + offset % 3, count - offset)
        log.append([NOW] * n, [key(o) for o in range(offset, offset + n)],
                   [value(o) for o in range(offset, offset + n)], None, now_ms=NOW)
        offset += n
        if offset == count // 2:
            log.roll(NOW)
            assert log.clean(NOW, commit_lock=LOCK).cleaned
    log.roll(NOW)
    log.append([NOW], [b"active"], [b"x"], None, now_ms=NOW)
    log.close()




def read_all(log: PartitionLog) -> list[tuple[int, bytes, bytes | None]]:
    out = []
    for _header, cols in log.read(log.start_offset, 10**6):
        out.extend(zip(cols.offsets, cols.keys, cols.values))
    return out


def check_consistent(log: PartitionLog, count: int) -> None:
    """The invariants any crash must keep (see the module docstring)."""
    log.check()
    got = read_all(log)
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(set(offsets))
    for offset, k, v in got:
        if offset < count:
            assert (k, v) == (key(offset), value(offset)), f"record {offset} was invented"
    assert log.end_offset == count + 1
    assert log.start_offset == 0
    present = {(o, k) for o, k, _ in got}
    latest = {key(o): o for o in range(count)}
    for k, o in latest.items():
        if value(o) is not None:
            assert (o, k) in present, f"the latest value of {k!r} (offset {o}) was lost"
        elif (o, k) not in present:  # the tombstone went: nothing older may come back
            assert not [x for x, kk, _ in got if kk == k], f"{k!r} came back from the dead"
    if log.directory is not None:
        leftovers = [n for n in os.listdir(log.directory) if n.endswith((".cleaned", ".swap"))]
        assert not leftovers


class _Crash(BaseException):
    """Stands in for the process dying: nothing catches it."""


COUNT = 90


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("cleaner") / "template")
    write_log(directory, COUNT)
    return directory


def uninterrupted(template: str, tmp_path) -> list[tuple]:
    directory = str(tmp_path / "reference")
    shutil.copytree(template, directory)
    log = PartitionLog(directory, CONFIG, now_ms=NOW, clean_shutdown=True)
    assert log.clean(NOW, commit_lock=LOCK).cleaned
    check_consistent(log, COUNT)
    expected = read_all(log)
    log.close()
    return expected


def test_a_crash_at_every_step_of_a_cleaning(template, tmp_path, monkeypatch) -> None:
    """Before each rename or unlink of a cleaning, copy the directory as a crash there
    would leave it, and stop. Reopen the copy.

    The copy is what a killed process leaves (the page cache's view, so fsyncs are
    skipped: they change nothing a copy sees), and between two renames or unlinks
    the directory only gains bytes of the file being written.
    """
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # see above: not what is tested
    expected = uninterrupted(template, tmp_path)
    crash_points = 0
    for step in range(1, 10_000):
        directory = str(tmp_path / f"log{step}")
        snapshot = str(tmp_path / f"crashed{step}")
        shutil.copytree(template, directory)
        log = PartitionLog(directory, CONFIG, now_ms=NOW, clean_shutdown=True)
        calls = [0]

        def hooked(real, calls=calls, step=step, directory=directory, snapshot=snapshot):
            def call(*args, **kwargs):
                calls[0] += 1
                if calls[0] == step:
                    shutil.copytree(directory, snapshot)
                    raise _Crash
                return real(*args, **kwargs)
            return call

        with monkeypatch.context() as patch:
            for name in ("replace", "unlink", "rename"):
                patch.setattr(os, name, hooked(getattr(os, name)))
            try:
                log.clean(NOW, commit_lock=LOCK)
            except _Crash:
                crashed = True
            else:
                crashed = False
        abandon(log)
        if not crashed:
            break
        crash_points += 1
        reopened = PartitionLog(snapshot, CONFIG, now_ms=NOW)
        check_consistent(reopened, COUNT)
        reopened.clean(NOW, commit_lock=LOCK)
        check_consistent(reopened, COUNT)
        assert read_all(reopened) == expected, f"crash at step {step}"
        reopened.close()
        shutil.rmtree(directory)
        shutil.rmtree(snapshot)
    print(f"{crash_points} crash points")
    assert crash_points > 30, "the cleaning had too few steps: the scenario is too weak"


def test_leftovers_of_an_unfinished_cleaning_are_discarded(template, tmp_path) -> None:
    directory = str(tmp_path / "log")
    shutil.copytree(template, directory)
    before = sorted(os.listdir(directory))
    junk = {
        segment_file_name(0, ".log") + ".cleaned": b"\1" * 100,  # torn cleaned segment
        segment_file_name(0, ".index") + ".cleaned": b"\2" * 8,
        segment_file_name(0, ".index") + ".swap": b"\3" * 8,  # no .log.swap: not committed
        segment_file_name(999, ".timeindex"): b"\4" * 12,  # an index without its .log
    }
    for name, data in junk.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    log = PartitionLog(directory, CONFIG, now_ms=NOW)
    check_consistent(log, COUNT)
    shutil.copytree(template, str(tmp_path / "original"))
    original = PartitionLog(str(tmp_path / "original"), CONFIG, now_ms=NOW, clean_shutdown=True)
    assert read_all(log) == read_all(original)  # nothing cleaned, nothing lost
    original.close()
    log.close()
    after = os.listdir(directory)
    assert set(before) <= set(after)
    assert not set(junk) & set(after)


CHILD = r"""
import random, sys
import eventlog

def key(o): return b"k%d" % (o * 7 % 23)
def value(o): return None if o % 17 == 3 else b"%d" % o

path, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
log = eventlog.open(path)
if "t" not in log.topics():
    log.create_topic("t", cleanup_policy="compact", segment_bytes=1500,
                     index_interval_bytes=200, min_cleanable_dirty_ratio=0.0,
                     delete_retention_ms=0)
p = log.partition("t", 0)
out = sys.stdout
out.write("ready %d\n" % p.end_offset)
out.flush()
while True:
    start = p.end_offset
    n = rng.randint(1, 5)
    p.append([(key(o), value(o)) for o in range(start, start + n)], expected_offset=start)
    out.write("ack %d %d\n" % (start, n))
    out.flush()
    if rng.random() < 0.15:
        removed = p.compact().records_removed
        out.write("compacted %d\n" % removed)
        out.flush()
"""


def child_key(offset: int) -> bytes:
    return b"k%d" % (offset * 7 % 23)


def child_value(offset: int) -> bytes | None:
    return None if offset % 17 == 3 else b"%d" % offset


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and select() on pipes")
def test_kill9_while_appending_and_compacting(tmp_path) -> None:
    script = str(tmp_path / "child.py")
    with open(script, "w") as f:
        f.write(CHILD)
    path = str(tmp_path / "data")
    src = os.path.dirname(os.path.dirname(os.path.abspath(eventlog.__file__)))
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = random.Random(20250101)
    acked_end = 0
    compactions = 0
    for round_ in range(8):
        child = subprocess.Popen([sys.executable, script, path, str(round_)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        readable, _, _ = select.select([child.stdout], [], [], 30)
        assert readable, "the child did not start within 30 s"
        ready = child.stdout.readline()
        assert ready.startswith(b"ready"), (ready, child.stderr.read())
        assert int(ready.split()[1]) >= acked_end  # nothing acknowledged was lost
        time.sleep(rng.uniform(0.05, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        output = child.stdout.read()
        child.stdout.close()
        child.stderr.close()
        for line in output.split(b"\n")[:-1]:
            words = line.split()
            if words[0] == b"ack":
                acked_end = int(words[1]) + int(words[2])
            elif words[0] == b"compacted":
                compactions += 1
        verify_child_log(path, acked_end)
    assert compactions >= 4, "the children hardly compacted: the test is too weak"


def verify_child_log(path: str, acked_end: int) -> None:
    with eventlog.open(path) as log:
        p = log.partition("t", 0)
        p.check()
        assert p.end_offset >= acked_end
        got = [(r.offset, r.key, r.value) for r in p.read(0, 10**6)]
        assert [o for o, _, _ in got] == sorted({o for o, _, _ in got})
        for offset, k, v in got:
            assert (k, v) == (child_key(offset), child_value(offset)), f"record {offset}"
        by_key: dict[bytes, list[int]] = {}
        for offset, k, _ in got:
            by_key.setdefault(k, []).append(offset)
        latest = {child_key(o): o for o in range(acked_end)}
        for k, o in latest.items():
            offsets = by_key.get(k, [])
            if child_value(o) is not None:
                assert offsets and offsets[-1] >= o, f"latest acked value of {k!r} lost"
            elif not offsets or offsets[-1] < o:  # its tombstone was cleaned away
                assert not offsets, f"{k!r} came back after its tombstone was removed"
        directory = os.path.join(path, "t-0")
        assert not [n for n in os.listdir(directory) if n.endswith((".cleaned", ".swap"))]
