"""fsync="always" as a group commit: appenders that arrive while an fsync runs share
the next one, instead of queueing one fsync each behind the partition lock."""

from __future__ import annotations

import errno
import threading
import time

import pytest

import eventlog
from eventlog.errors import StorageError
from eventlog.testing import FaultyFiles


class GatedFiles(FaultyFiles):
    """Holds the first fdatasync until ``gate`` is set, so other threads pile up."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.syncs = 0
        self.hold = False

    def fdatasync(self, fd: int) -> None:
        self.syncs += 1
        super().fdatasync(fd)  # the fault check and the real sync first, then hold
        if self.hold and self.syncs == 1:
            self.entered.set()
            assert self.gate.wait(10), "the test never opened the gate"


def wait_until(condition, what: str) -> None:
    """Yield to the other threads until ``condition()`` holds (no timed sleep; a
    deadline only so that a bug fails the test instead of hanging it)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0)


@pytest.mark.parametrize("path", ["append", "send", "shared producer"])
def test_appends_arriving_during_an_fsync_share_the_next_one(tmp_path, path) -> None:
    files = GatedFiles()
    log = eventlog.open(tmp_path, fsync="always", files=files)
    log.create_topic("t")
    p = log.partition("t", 0)
    # One producer per thread: a producer appends one batch at a time, in order.
    producers = [log.producer(linger_ms=0) for _ in range(4)]
    files.syncs = 0
    files.hold = True
    results: dict[int, int] = {}

    def write(i: int) -> None:
        if path == "append":
            results[i] = p.append([(None, b"%d" % i)])
        elif path == "shared producer":  # the fsync waits outside the producer's lock
            results[i] = producers[0].send("t", b"%d" % i).result(timeout=10).offset
        else:
            results[i] = producers[i].send("t", b"%d" % i).result(timeout=10).offset

    first = threading.Thread(target=write, args=(0,))
    first.start()
    assert files.entered.wait(10)  # thread 0 appended and is inside its fsync
    others = [threading.Thread(target=write, args=(i,)) for i in (1, 2, 3)]
    for t in others:
        t.start()
    wait_until(lambda: p.end_offset == 4, "the other appends")  # appended, waiting to sync
    assert results == {}  # nobody is acknowledged before its fsync
    files.gate.set()
    for t in [first, *others]:
        t.join(10)
        assert not t.is_alive()
    assert sorted(results.values()) == [0, 1, 2, 3]
    assert files.syncs == 2  # the first, and one for the three that came meanwhile
    for producer in producers:
        producer.close()
    log.close()
    with eventlog.open(tmp_path) as again:
        assert sorted(r.value for r in again.partition("t", 0).read(0)) == [b"0", b"1", b"2", b"3"]


def test_a_failed_group_fsync_fails_every_waiter_and_undoes_their_batches(tmp_path) -> None:
    files = GatedFiles()
    log = eventlog.open(tmp_path, fsync="always", files=files)
    log.create_topic("t")
    p = log.partition("t", 0)
    p.append([(None, b"acknowledged")])
    files.syncs = 0
    files.hold = True
    errors: dict[int, BaseException] = {}

    def write(i: int) -> None:
        try:
            p.append([(None, b"%d" % i)])
        except BaseException as exc:
            errors[i] = exc

    first = threading.Thread(target=write, args=(0,))
    first.start()
    assert files.entered.wait(10)
    files.fail("fsync", errno.EIO, path=".log")  # the next fsync, the group's, fails
    others = [threading.Thread(target=write, args=(i,)) for i in (1, 2)]
    for t in others:
        t.start()
    wait_until(lambda: p.end_offset == 4, "the other appends")
    files.gate.set()
    for t in [first, *others]:
        t.join(10)
    assert sorted(errors) == [1, 2]  # the first fsync succeeded; the group's failed
    assert all(isinstance(e, StorageError) and e.errno == errno.EIO for e in errors.values())
    assert [r.value for r in p.read(0)] == [b"acknowledged", b"0"]  # nothing else readable
    assert p.fsync_error is not None
    with pytest.raises(StorageError, match="refuses writes"):
        p.append([(None, b"later")])
    files.clear()
    with pytest.raises(StorageError):
        log.close()
    with eventlog.open(tmp_path) as again:
        assert [r.value for r in again.partition("t", 0).read(0)] == [b"acknowledged", b"0"]
