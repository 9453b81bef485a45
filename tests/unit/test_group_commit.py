"""fsync="always" as a group commit: appenders that arrive while an fsync runs share
the next one, instead of queueing one fsync each behind the partition lock."""

from __future__ import annotations

import collections
import errno
import sys
import threading
import time

import pytest

import eventlog
from eventlog.errors import StorageError
from eventlog.storage import group_commit
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


class HeldFiles(FaultyFiles):
    """Once ``armed``, counts the fdatasyncs and holds those numbered in ``held``
    (1: the first after arming) until the test sets ``release[n]``."""

    def __init__(self, held: set[int]) -> None:
        super().__init__()
        self.held = held
        self.armed = False
        self.syncs = 0
        self.entered = collections.defaultdict(threading.Event)
        self.release = collections.defaultdict(threading.Event)

    def fdatasync(self, fd: int) -> None:
        super().fdatasync(fd)
        if not self.armed:
            return
        self.syncs += 1  # one fsync runs at a time
        n = self.syncs
        if n in self.held:
            self.entered[n].set()
            assert self.release[n].wait(10), f"the test never released fsync {n}"


def in_log_sync(thread: threading.Thread) -> bool:
    """True once ``thread`` runs (or waits) inside PartitionLog.sync."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "sync" and code.co_filename.endswith("partition_log.py"):
            return True
        frame = frame.f_back
    return False


class Runner(threading.Thread):
    """A thread that keeps what its function raised, for the test to re-raise."""

    def __init__(self, target) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:
            self.error = exc

    def finish(self) -> None:
        self.join(10)
        assert not self.is_alive(), "still waiting"
        if self.error is not None:
            raise self.error


def append_unsynced(log: eventlog.EventLog, p: eventlog.Partition, value: bytes) -> int:
    """Append one record without waiting for its fsync; returns its offset."""
    offset, _ = p.append_record(None, value, None, log.clock.time_ms(), 0, sync=False)
    return offset


def test_a_waiter_the_fsync_in_flight_covers_returns_when_it_ends(tmp_path) -> None:
    """Not once the fsync after it ends: a thread whose record the first fsync covers
    must not queue behind the fsync that a later record's thread starts."""
    files = HeldFiles(held={1, 2})
    log = eventlog.open(tmp_path, fsync="always", files=files)
    log.create_topic("t")
    p = log.partition("t", 0)
    files.armed = True
    append_unsynced(log, p, b"a")
    append_unsynced(log, p, b"b")
    a = Runner(lambda: p.sync(1))
    a.start()
    assert files.entered[1].wait(10)  # fsync 1 covers offsets 0 and 1
    append_unsynced(log, p, b"c")  # after fsync 1 started: the next one's
    c = Runner(lambda: p.sync(3))
    c.start()
    wait_until(lambda: in_log_sync(c), "the third record's thread to wait")
    b = Runner(lambda: p.sync(2))  # covered by fsync 1, waiting behind the third
    b.start()
    wait_until(lambda: in_log_sync(b), "the second record's thread to wait")
    assert b.is_alive()  # nothing is acknowledged before its fsync ends
    files.release[1].set()
    assert files.entered[2].wait(10)  # the third's fsync runs, held
    a.finish()
    b.finish()  # acknowledged while fsync 2 is still in flight
    assert c.is_alive()
    files.release[2].set()
    c.finish()
    assert files.syncs == 2
    log.close()


def test_the_threads_an_fsync_released_join_the_next_one(tmp_path, monkeypatch) -> None:
    """Four threads: while thread 0's fsync runs, 1-3 append. When it ends, their
    fsync waits for thread 0's next record, so one fsync covers all four instead of
    the threads alternating in two halves (three fsyncs here)."""
    monkeypatch.setattr(group_commit, "gather_seconds", lambda *_: 60.0,  # it arrives
                        raising=False)
    files = HeldFiles(held={1, 2})
    log = eventlog.open(tmp_path, fsync="always", files=files)
    log.create_topic("t")
    p = log.partition("t", 0)
    producers = [log.producer(linger_ms=0) for _ in range(4)]
    files.armed = True
    acknowledged, go = threading.Event(), threading.Event()

    def first() -> None:
        producers[0].send("t", b"0").result(timeout=10)
        acknowledged.set()
        assert go.wait(10)  # thread 0 sends again once the others' fsync waits or runs
        producers[0].send("t", b"0 again").result(timeout=10)

    threads = [Runner(first)]
    threads += [Runner(lambda i=i: producers[i].send("t", b"%d" % i).result(timeout=10))
                for i in (1, 2, 3)]
    threads[0].start()
    assert files.entered[1].wait(10)
    for t in threads[1:]:
        t.start()
    wait_until(lambda: all(in_log_sync(t) for t in threads), "the three to wait")
    files.release[1].set()
    assert acknowledged.wait(10)
    # The others' fsync either started without thread 0's next record (entered) or
    # waits for its group (the log's gather deadline is set).
    wait_until(lambda: files.entered[2].is_set() or p._log._group_commit._deadline != 0.0,
               "the next fsync to start or to wait for its group")
    go.set()
    assert files.entered[2].wait(10)
    files.release[2].set()
    for t in threads:
        t.finish()
    assert files.syncs == 2  # thread 0's first; then one for the other four records
    assert p.end_offset == 5
    for producer in producers:
        producer.close()
    log.close()


def test_a_thread_that_stops_sending_does_not_stall_the_group(tmp_path) -> None:
    """The group of the last fsync was two; one of them sends no more. The other's
    fsync waits for it at most the bound, then runs alone."""
    files = HeldFiles(held={1})
    log = eventlog.open(tmp_path, fsync="always", files=files)
    log.create_topic("t")
    p = log.partition("t", 0)
    files.armed = True
    a = Runner(lambda: p.append([(None, b"a")]))
    a.start()
    assert files.entered[1].wait(10)
    b = Runner(lambda: p.append([(None, b"b")]))
    b.start()
    wait_until(lambda: in_log_sync(b), "the second append to wait")
    files.release[1].set()
    a.finish()  # and sends no more
    b.finish()
    assert files.syncs == 2
    assert [r.value for r in p.read(0)] == [b"a", b"b"]
    log.close()


def test_a_truncation_during_an_fsync_leaves_the_new_offsets_unsynced(tmp_path) -> None:
    """An fsync that started before a truncation covers the offsets below the cut,
    not the records appended after it at the same offsets: syncing those runs
    another fsync."""
    files = HeldFiles(held={1})
    log = eventlog.open(tmp_path, fsync="always", files=files)
    log.create_topic("t")
    p = log.partition("t", 0)
    files.armed = True
    for value in (b"a", b"b", b"c"):
        append_unsynced(log, p, value)
    a = Runner(lambda: p.sync(3))
    a.start()
    assert files.entered[1].wait(10)  # covers offsets 0-2 as they were
    p.truncate_to(1)
    assert append_unsynced(log, p, b"B") == 1  # written after the fsync began
    assert append_unsynced(log, p, b"C") == 2
    files.release[1].set()
    a.finish()
    p.sync(3)
    assert files.syncs == 2  # the new records got their own fsync
    assert [r.value for r in p.read(0)] == [b"a", b"B", b"C"]
    log.close()


def test_a_truncation_publishes_to_other_processes_only_what_is_on_disk(tmp_path) -> None:
    """Under fsync="always" a reader in another process sees only synced offsets; a
    truncation above the synced offset must not publish the unsynced ones below the
    cut (they may yet be undone by a failed fsync)."""
    from eventlog.storage.reader_view import ReaderView

    log = eventlog.open(tmp_path, fsync="always")
    log.create_topic("t")
    p = log.partition("t", 0)
    p.append([(None, b"synced")])  # offset 0, on disk
    for value in (b"a", b"b", b"c"):
        append_unsynced(log, p, value)  # offsets 1-3, not synced
    view = ReaderView.for_reader(p._log.directory)
    assert view is not None
    assert view.read().end_offset == 1
    p.truncate_to(3)  # cuts offset 3; offsets 1 and 2 stay unsynced
    assert view.read().end_offset == 1
    p.sync(3)
    assert view.read().end_offset == 3
    view.close()
    log.close()
