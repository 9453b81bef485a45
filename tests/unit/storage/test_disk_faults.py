"""Disk faults through the storage layer's one I/O seam (``eventlog.testing.FaultyFiles``):
a full disk, EIO, a failed fsync and short writes, at every call that can meet them.

The promises (docs/storage.md, "When the disk fails"): a failed call raises a
``StorageError`` carrying the errno and changes nothing; the log stays open; every
acknowledged record stays readable and survives a reopen; appends succeed again once
the fault is gone, except after a failed fsync, which refuses writes until reopen.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import eventlog
from eventlog.errors import InvalidConfigError, StorageError
from eventlog.storage import files as files_module
from eventlog.testing import FaultyFiles, ManualClock


def values(log: eventlog.EventLog, topic: str = "t", partition: int = 0) -> list[bytes]:
    p = log.partition(topic, partition)
    return [r.value for r in p.iter()]


def open_log(path: Path, files: FaultyFiles, **options: object) -> eventlog.EventLog:
    return eventlog.open(path, files=files, clock=ManualClock(), **options)


def test_a_full_disk_while_the_segment_grows_is_enospc_and_changes_nothing(tmp_path) -> None:
    files = FaultyFiles()
    log = open_log(tmp_path, files)
    log.create_topic("t")
    p = log.partition("t", 0)
    big = b"x" * 40_000
    p.append([(None, big)])  # fits the first 64 KiB chunk
    files.disk_full()
    with pytest.raises(StorageError) as caught:
        p.append([(None, big)])  # needs the map to grow: its blocks are allocated first
    error = caught.value
    assert error.errno == errno.ENOSPC
    assert isinstance(error, OSError)
    assert str(tmp_path) in str(error) and "free disk space" in str(error)
    assert p.end_offset == 1 and values(log) == [big]
    files.clear()
    assert p.append([(None, b"after")]) == 1  # appends work again once space is back
    log.close()
    with eventlog.open(tmp_path) as again:
        assert values(again) == [big, b"after"]


def test_a_full_disk_at_a_roll_leaves_no_empty_segment_behind(tmp_path) -> None:
    files = FaultyFiles()
    log = open_log(tmp_path, files)
    log.create_topic("t", segment_bytes=1024)
    p = log.partition("t", 0)
    p.append([(None, b"a" * 900)])
    directory = tmp_path / "t-0"
    before = sorted(os.listdir(directory))
    files.disk_full()
    with pytest.raises(StorageError) as caught:
        p.append([(None, b"b" * 900)])  # rolls: a new segment's files need blocks
    assert caught.value.errno == errno.ENOSPC
    assert sorted(os.listdir(directory)) == before
    files.clear()
    p.append([(None, b"b" * 900)])
    assert values(log) == [b"a" * 900, b"b" * 900]
    log.close()
    with eventlog.open(tmp_path) as again:
        assert values(again) == [b"a" * 900, b"b" * 900]


def test_a_full_disk_fails_the_futures_of_a_lingering_batch_not_the_flusher(tmp_path) -> None:
    files = FaultyFiles()
    log = eventlog.open(tmp_path, files=files)
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000, retries=0)  # Kafka retries a storage error
    ok = producer.send("t", b"kept")
    producer.flush()
    assert ok.result().offset == 0
    files.disk_full()
    doomed = [producer.send("t", b"y" * 70_000) for _ in range(3)]  # past the first chunk
    producer.flush()  # as Kafka's flush: the outcome is in the futures
    for future in doomed:
        with pytest.raises(StorageError) as caught:
            future.result(timeout=5)
        assert caught.value.errno == errno.ENOSPC
    files.clear()
    assert producer.send("t", b"later").result(timeout=5).offset == 1
    producer.close()
    log.close()
    with eventlog.open(tmp_path) as again:
        assert values(again) == [b"kept", b"later"]


def test_a_full_disk_when_creating_a_topic_creates_nothing(tmp_path) -> None:
    files = FaultyFiles()
    log = open_log(tmp_path, files)
    files.disk_full()
    with pytest.raises(StorageError) as caught:
        log.create_topic("t")
    assert caught.value.errno == errno.ENOSPC
    assert "t" not in log.topics()
    files.clear()
    log.create_topic("t")
    log.partition("t", 0).append([(None, b"v")])
    log.close()
    with eventlog.open(tmp_path) as again:
        assert values(again) == [b"v"]


@pytest.mark.parametrize("operation", ["allocate", "mmap", "open"])
def test_eio_while_growing_or_opening_a_segment_is_a_storage_error(tmp_path, operation) -> None:
    files = FaultyFiles()
    log = open_log(tmp_path, files)
    log.create_topic("t", segment_bytes=1024)
    p = log.partition("t", 0)
    p.append([(None, b"a" * 900)])
    files.fail(operation, errno.EIO, path=".log")
    with pytest.raises(StorageError) as caught:
        p.append([(None, b"b" * 900)])  # a roll: opens, allocates and maps a new .log
    assert caught.value.errno == errno.EIO
    assert values(log) == [b"a" * 900]
    p.append([(None, b"c")])
    assert values(log) == [b"a" * 900, b"c"]
    log.close()


def test_a_short_index_write_is_continued_not_lost(tmp_path) -> None:
    files = FaultyFiles()
    log = open_log(tmp_path, files)
    log.create_topic("t", index_interval_bytes=64)
    p = log.partition("t", 0)
    files.fail("pwrite", path=".index", short=True, times=None)
    for i in range(50):
        p.append([(None, b"%03d" % i + b"." * 80)])
    log.close()  # writes the pending entries: each pwrite writes half of what it is given
    assert files.injected, "no short write happened"
    files.clear()
    entries = (tmp_path / "t-0" / "00000000000000000000.index").read_bytes()
    assert len(entries) % 8 == 0 and len(entries) >= 8 * 40
    with eventlog.open(tmp_path) as again:  # trusted after a clean close: entries are whole
        p = again.partition("t", 0)
        assert [r.offset for r in p.read(37, max_records=1)] == [37]
        again.check()


def test_a_failed_fsync_refuses_writes_until_reopen_and_undoes_the_append(tmp_path) -> None:
    """fsyncgate: after a failed fsync the kernel may have dropped the dirty pages, and
    a retried fsync can succeed without writing them. The append whose fsync failed is
    not acknowledged (and not readable); the log refuses writes until it is reopened."""
    files = FaultyFiles()
    log = open_log(tmp_path, files, fsync="always")
    log.create_topic("t")
    p = log.partition("t", 0)
    p.append([(None, b"durable")])
    files.fail("fsync", errno.EIO, path=".log")  # the append's fdatasync
    with pytest.raises(StorageError) as caught:
        p.append([(None, b"not acknowledged")])
    assert caught.value.errno == errno.EIO
    assert values(log) == [b"durable"]
    with pytest.raises(StorageError, match="open it again") as refused:
        p.append([(None, b"refused")])
    assert refused.value.errno == errno.EIO
    assert values(log) == [b"durable"]  # reads go on
    with pytest.raises(StorageError):
        log.close()  # no clean-shutdown marker: the next open recovers from the disk
    assert not (tmp_path / ".clean-shutdown").exists()
    with eventlog.open(tmp_path, fsync="always") as again:
        assert not again.recovery.clean
        assert values(again) == [b"durable"]
        again.partition("t", 0).append([(None, b"again")])
        assert values(again) == [b"durable", b"again"]


def test_a_failed_fsync_of_the_interval_flush_refuses_later_writes(tmp_path) -> None:
    files = FaultyFiles()
    log = open_log(tmp_path, files, fsync="interval")
    log.create_topic("t")
    p = log.partition("t", 0)
    p.append([(None, b"a")])
    files.fail("fsync", errno.EIO, path=".index", times=None)
    files.fail("msync", errno.EIO)
    with pytest.raises(StorageError):
        p.flush()
    with pytest.raises(StorageError, match="earlier fsync failed"):
        p.append([(None, b"b")])
    files.clear()
    with pytest.raises(StorageError):
        log.close()
    with eventlog.open(tmp_path) as again:
        assert values(again) == [b"a"]


def test_failing_metadata_writes_leave_the_old_file_and_no_temporary(tmp_path) -> None:
    files = FaultyFiles()
    log = open_log(tmp_path, files)
    log.create_topic("a")
    before = (tmp_path / "topics.msgpack").read_bytes()
    files.fail("replace", errno.EIO, path="topics.msgpack")
    with pytest.raises(StorageError) as caught:
        log.create_topic("b")
    assert caught.value.errno == errno.EIO
    assert (tmp_path / "topics.msgpack").read_bytes() == before
    assert not (tmp_path / "topics.msgpack.tmp").exists()
    assert log.topics() == ["a"]
    log.close()


def test_a_planted_temporary_link_is_removed_not_written_through(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    data = tmp_path / "data"
    with eventlog.open(data) as log:
        log.create_topic("a")
        os.symlink(outside, data / "topics.msgpack.tmp")
        log.create_topic("b")
    assert outside.read_bytes() == b"precious"
    with eventlog.open(data) as log:
        assert sorted(log.topics()) == ["a", "b"]


def test_a_symlinked_segment_is_refused_not_truncated(tmp_path) -> None:
    data = tmp_path / "data"
    with eventlog.open(data) as log:
        log.create_topic("t")
        log.partition("t", 0).append([(None, b"v")])
    outside = tmp_path / "outside.log"
    outside.write_bytes(b"precious" * 100)
    segment = data / "t-0" / "00000000000000000000.log"
    segment.unlink()
    os.symlink(outside, segment)
    with pytest.raises(StorageError) as caught:
        eventlog.open(data)
    assert caught.value.errno == errno.ELOOP
    assert outside.read_bytes() == b"precious" * 100


def test_files_must_be_a_files_object(tmp_path) -> None:
    with pytest.raises(InvalidConfigError, match="files must be"):
        eventlog.open(tmp_path, files=object())  # type: ignore[arg-type]


def test_fallocate_unsupported_falls_back_to_writing_zeros(tmp_path, monkeypatch) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"keep")
        files_module.os_files.allocate(fd, 4, 3 * 1024 * 1024 + 5)
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert len(data) == 4 + 3 * 1024 * 1024 + 5
    assert data[:4] == b"keep" and data[4:].count(0) == len(data) - 4
    assert os.stat(path).st_blocks * 512 >= len(data) - 4096  # allocated, not a hole


def test_a_grown_segment_is_allocated_not_sparse(tmp_path) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("t")
        p = log.partition("t", 0)
        p.append([(None, b"z" * 200_000)])
        st = os.stat(tmp_path / "t-0" / "00000000000000000000.log")
        assert st.st_size >= 200_000
        assert st.st_blocks * 512 >= st.st_size  # every block of the mapped file exists


def test_faulty_files_reject_unknown_operations() -> None:
    files = FaultyFiles()
    with pytest.raises(ValueError, match="unknown file operation"):
        files.fail("write")
    with pytest.raises(ValueError, match="short=True"):
        files.fail("fsync", short=True)


def test_a_failed_open_leaves_every_segment_file_as_it_was(tmp_path: Path) -> None:
    """A fault while opening a log (here: mapping its last segment, after the first
    ones were opened) must unmap the segments without trimming them: one not yet
    loaded has size 0, and closing it would cut its .log to nothing."""
    import errno as _errno

    from eventlog.config import TopicConfig
    from eventlog.errors import StorageError
    from eventlog.storage.partition_log import PartitionLog
    from eventlog.testing import FaultyFiles

    directory = str(tmp_path / "t-0")
    log = PartitionLog(directory, TopicConfig(segment_bytes=1024), now_ms=0)
    for _ in range(5):
        log.append([0], [b"k"], [b"v" * 400], None, now_ms=0)
    log.close()
    before = {n: (tmp_path / "t-0" / n).read_bytes() for n in os.listdir(directory)
              if n.endswith(".log")}
    faulty = FaultyFiles()
    assert len(before) == 3  # segments 0, 2 and 4
    faulty.fail("mmap", _errno.ENOSPC, path="00000000000000000004.log")
    with pytest.raises(StorageError) as caught:
        PartitionLog(directory, TopicConfig(segment_bytes=1024), now_ms=0, files=faulty)
    assert caught.value.errno == _errno.ENOSPC
    for name, data in before.items():  # mapped files grew by zeros, as any open does
        grown = (tmp_path / "t-0" / name).read_bytes()
        assert grown[: len(data)] == data and not grown[len(data):].strip(b"\0")
    reopened = PartitionLog(directory, TopicConfig(segment_bytes=1024), now_ms=0)
    assert reopened.end_offset == 5
    reopened.close()


@pytest.mark.parametrize("operation", ["open", "mmap"])
def test_a_full_disk_creating_the_reader_view_keeps_the_errno(tmp_path, operation) -> None:
    log = open_log(tmp_path, FaultyFiles())
    log.create_topic("t")
    log.close()
    files = FaultyFiles()
    files.fail(operation, errno.ENOSPC, path="reader-view")
    with pytest.raises(StorageError) as caught:
        open_log(tmp_path, files)
    assert caught.value.errno == errno.ENOSPC  # a full disk is told apart from damage
    assert "reader view" in str(caught.value)
    with eventlog.open(tmp_path) as again:
        assert again.topics() == ["t"]
