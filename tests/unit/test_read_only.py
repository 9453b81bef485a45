"""eventlog.open(path, read_only=True): a reader of a directory another EventLog holds.

The writer here is in the same process (the lock is per directory, so a second
writable open would fail just as from another process); tests/crash/test_readers.py
runs readers in other processes against a writer that is killed.
"""

from __future__ import annotations

import os

import pytest

import eventlog
from eventlog import TopicPartition
from eventlog.errors import (
    InvalidConfigError,
    LogDirLockedError,
    OffsetOutOfRangeError,
    ReadOnlyLogError,
    StorageError,
)
from eventlog.storage.reader_view import ReaderView, reader_view_file


@pytest.fixture
def writer(tmp_path):
    log = eventlog.open(tmp_path / "data")
    yield log
    log.close()


def _reader(writer) -> eventlog.EventLog:
    return eventlog.open(writer.path, read_only=True)


def test_a_reader_opens_while_the_writer_holds_the_lock(writer) -> None:
    p = writer.create_topic("t", partitions=2).partition(0)
    p.append([(b"k", b"v%d" % i) for i in range(5)])
    with pytest.raises(LogDirLockedError):
        eventlog.open(writer.path)
    with _reader(writer) as reader:
        assert reader.read_only and not writer.read_only
        assert reader.topics() == ["t"]
        rp = reader.partition("t", 0)
        assert (rp.start_offset, rp.end_offset) == (0, 5)
        assert [r.value for r in rp.read(0)] == [b"v%d" % i for i in range(5)]
        reader.check()


def test_the_reader_follows_appends_rolls_and_deleted_segments(writer) -> None:
    p = writer.create_topic("t", segment_bytes=1024).partition(0)
    with _reader(writer) as reader:
        rp = reader.partition("t", 0)
        assert rp.end_offset == 0
        for i in range(200):
            p.append([(b"k%d" % i, b"x" * 40)])
        assert rp.end_offset == 0  # nothing seen before a refresh (a poll)
        assert reader.refresh()
        assert rp.end_offset == 200 and len(rp._log.segments) == len(p._log.segments) > 5
        assert [r.key for r in rp.read(0, 1000)] == [b"k%d" % i for i in range(200)]
        p.delete_before(150)
        reader.refresh()
        assert rp.start_offset == 150 and len(rp._log.segments) == len(p._log.segments)
        with pytest.raises(OffsetOutOfRangeError):
            rp.read(10)
        assert rp.read(150)[0].key == b"k150"
        assert not reader.refresh()  # nothing new: no change
        reader.check()


def test_the_reader_sees_only_the_published_end(writer) -> None:
    """A batch whose bytes are in the segment but whose end was not published (the
    writer copied it and was killed before the store) stays invisible."""
    p = writer.create_topic("t").partition(0)
    p.append([(b"a", b"1")])
    view = ReaderView.for_reader(p._log.directory)
    assert view is not None and view.read().end_offset == 1
    view.close()
    words = p._log._published
    p.append([(b"b", b"2")])
    words[1] = 1  # as if the writer had not published the second batch yet
    with _reader(writer) as reader:
        rp = reader.partition("t", 0)
        assert rp.end_offset == 1 and [r.value for r in rp.read(0)] == [b"1"]
        words[1] = 2
        reader.refresh()
        assert [r.value for r in rp.read(0)] == [b"1", b"2"]


def test_every_write_raises_read_only_log_error_and_changes_nothing(writer) -> None:
    writer.create_topic("t").partition(0).append([(b"k", b"v")])
    with _reader(writer) as reader:
        rp = reader.partition("t", 0)
        for call in (
            lambda: rp.append([(b"k", b"v")]),
            lambda: rp.append_batch([(b"k", b"v")]),
            lambda: rp.truncate_to(0),
            lambda: rp.delete_before(1),
            lambda: rp.roll(),
            lambda: rp.compact(),
            lambda: rp.flush(),
            lambda: reader.create_topic("u"),
            lambda: reader.delete_topic("t"),
            lambda: reader.create_partitions("t", 3),
            lambda: reader.producer(),
            lambda: reader.run_retention(),
            lambda: reader.run_compaction(),
            lambda: reader.flush(),
        ):
            with pytest.raises(ReadOnlyLogError, match="read-only"):
                call()
        reader.refresh()
        assert rp.end_offset == 1 and reader.topics() == ["t"]
    assert writer.partition("t", 0).end_offset == 1 and writer.topics() == ["t"]


def test_bad_read_only_opens_are_refused(tmp_path, writer) -> None:
    with pytest.raises(StorageError, match="in-memory"):
        eventlog.open(None, read_only=True)
    with pytest.raises(StorageError, match="no such directory"):
        eventlog.open(tmp_path / "missing", read_only=True)
    assert not os.path.exists(tmp_path / "missing")
    with pytest.raises(InvalidConfigError, match="fsync"):
        eventlog.open(writer.path, read_only=True, fsync="always")
    with pytest.raises(InvalidConfigError, match="read_only"):
        eventlog.open(writer.path, read_only="yes")


def test_topics_created_deleted_and_grown_by_the_writer_appear(writer) -> None:
    with _reader(writer) as reader:
        assert reader.topics() == []
        writer.create_topic("a").partition(0).append([(b"k", b"v")])
        assert reader.topics() == ["a"]
        assert reader.partition("a", 0).read(0)[0].value == b"v"
        writer.create_partitions("a", 3)
        assert reader.topics() == ["a"] and reader.topic("a").num_partitions == 3
        old = reader.partition("a", 0)
        writer.delete_topic("a")
        writer.create_topic("a").partition(0).append([(b"k", b"new")])
        assert reader.topics() == ["a"]
        assert old.closed
        assert reader.partition("a", 0).read(0)[0].value == b"new"


def test_a_directory_without_a_writer_or_reader_view(tmp_path) -> None:
    path = tmp_path / "data"
    with eventlog.open(path) as log:
        log.create_topic("t").partition(0).append([(b"k", b"v%d" % i) for i in range(3)])
    os.unlink(path / "t-0" / reader_view_file)  # as an earlier version left it
    with eventlog.open(path, read_only=True) as reader:
        assert [r.value for r in reader.partition("t", 0).read(0)] == [b"v0", b"v1", b"v2"]
        with eventlog.open(path) as log:  # a writer comes: the reader follows it
            log.partition("t", 0).append([(b"k", b"v3")])
            reader.refresh()
            assert reader.partition("t", 0).end_offset == 4


def test_a_read_only_consumer_assigns_and_polls_without_committing(writer) -> None:
    p = writer.create_topic("t").partition(0)
    p.append([(b"k", b"%d" % i) for i in range(10)])
    with _reader(writer) as reader:
        consumer = reader.consumer(group_id="g", auto_offset_reset="earliest")
        consumer.assign([TopicPartition("t", 0)])
        assert [r.value for r in consumer.poll(100)] == [b"%d" % i for i in range(10)]
        p.append([(b"k", b"10")])
        assert [r.value for r in consumer.poll(1000)] == [b"10"]
        with pytest.raises(ReadOnlyLogError, match="nothing was committed"):
            consumer.commit()
        consumer.close()
    assert writer.describe_group("g").offsets == ()


def test_subscribe_reads_from_the_writers_committed_offsets(writer) -> None:
    p = writer.create_topic("t", partitions=2).partition(0)
    p.append([(b"k", b"%d" % i) for i in range(10)])
    with writer.consumer(group_id="g", auto_offset_reset="earliest") as member:
        member.assign([TopicPartition("t", 0)])
        member.commit({TopicPartition("t", 0): 7})
    with _reader(writer) as reader:
        view = reader.consumer("t", group_id="g", auto_offset_reset="earliest")
        assert [r.value for r in view.poll(500)] == [b"7", b"8", b"9"]
        assert view.assignment() == {TopicPartition("t", 0), TopicPartition("t", 1)}
        assert view.committed(TopicPartition("t", 0)) == 7
        with writer.consumer(group_id="g") as member:
            member.assign([TopicPartition("t", 0)])
            member.commit({TopicPartition("t", 0): 9})
        assert view.committed(TopicPartition("t", 0)) == 9  # the view follows commits
        lag = {o.topic_partition: o.lag for o in reader.describe_group("g").offsets}
        assert lag[TopicPartition("t", 0)] == 1
        view.close()


def test_the_key_index_of_a_reader_catches_up(writer) -> None:
    p = writer.create_topic("t").partition(0)
    p.append([(b"a", b"1"), (b"b", b"1")])
    with _reader(writer) as reader:
        rp = reader.partition("t", 0)
        assert rp.key_version(b"a") == 1
        p.append([(b"a", b"2")])
        reader.refresh()
        assert rp.key_version(b"a") == 2
        assert [r.value for r in rp.read_key(b"a")] == [b"1", b"2"]


def test_wait_for_returns_when_the_writer_appends(writer) -> None:
    import threading

    p = writer.create_topic("t").partition(0)
    with _reader(writer) as reader:
        rp = reader.partition("t", 0)
        started = threading.Event()

        def append() -> None:
            started.wait()
            p.append([(b"k", b"v")])

        t = threading.Thread(target=append)
        t.start()
        started.set()
        assert rp.wait_for(0, timeout=30)
        t.join()
        assert not rp.wait_for(1, timeout=0)


def test_the_reader_follows_compaction_swaps_and_truncation(writer) -> None:
    p = writer.create_topic("c", cleanup_policy="compact", segment_bytes=1024).partition(0)
    for i in range(60):
        p.append([(b"k%d" % (i % 3), b"v%d" % i)])
    p.roll()
    with _reader(writer) as reader:
        rp = reader.partition("c", 0)
        assert len(rp.read(0, 1000)) == 60
        assert writer.run_compaction() > 0  # segments replaced by renames: new inodes
        reader.refresh()
        assert [r.value for r in rp.read(0, 1000)] == [r.value for r in p.read(0, 1000)]
        assert [r.value for r in rp.read(0, 1000)][-3:] == [b"v57", b"v58", b"v59"]
        p.append([(b"k0", b"new")])
        p.truncate_to(p.end_offset - 1)
        reader.refresh()
        assert rp.end_offset == p.end_offset
        p.append([(b"k1", b"after")])
        reader.refresh()
        assert rp.read(p.end_offset - 1)[0].value == b"after"
        reader.check()


def test_a_reader_sees_the_writers_group_members(writer) -> None:
    import subprocess
    import sys

    import msgpack

    from eventlog.group.members_view import members_view_file

    writer.create_topic("t", partitions=2)
    member = writer.consumer("t", group_id="g", client_id="app-1")
    member.poll(100)
    with _reader(writer) as reader:
        d = reader.describe_group("g")
        assert str(d.state) == "Stable" and [m.client_id for m in d.members] == ["app-1"]
        assert set(d.members[0].assignment) == {TopicPartition("t", 0), TopicPartition("t", 1)}
        assert [(g.group_id, str(g.state)) for g in reader.list_groups()] == [("g", "Stable")]
        member.close()  # the writer publishes the change
        assert str(reader.describe_group("g").state) in ("Empty", "Dead")
        view = os.path.join(writer.path, members_view_file)
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
        with open(view, "wb") as f:  # a writer that died: its members are gone too
            f.write(msgpack.packb({"format": 1, "pid": int(dead), "written_ms": 0, "groups": [
                {"group": "ghost", "state": "STABLE", "generation": 3, "protocol": "range",
                 "members": [["m", None, "c", [["t", 0]]]]}]}))
        assert "ghost" not in [g.group_id for g in reader.list_groups()]
        with open(view, "wb") as f:
            f.write(b"not msgpack")
        assert reader.list_groups() == [] or all(g.group_id != "ghost"
                                                 for g in reader.list_groups())


def test_a_following_reader_indexes_as_the_writer_does(writer) -> None:
    """Following batch by batch must build the same sparse index as the writer's, or
    every read walks the active segment's headers from its start."""
    p = writer.create_topic("t", index_interval_bytes=512).partition(0)
    with _reader(writer) as reader:
        rp = reader.partition("t", 0)
        for i in range(300):
            p.append([(b"k", b"v%d" % i)])
            reader.refresh()  # one batch per refresh, as a tailing consumer sees them
        ours, theirs = rp._log.active_segment.index, p._log.active_segment.index
        assert len(theirs) > 10
        assert list(ours.offsets) == list(theirs.offsets)
        assert list(ours.positions) == list(theirs.positions)
        assert rp.read(299)[0].value == b"v299"


def test_links_in_the_data_directory_are_refused(tmp_path) -> None:
    path = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    with eventlog.open(path) as log:
        log.create_topic("t")
    os.unlink(path / "t-0" / reader_view_file)
    os.symlink(outside, path / "t-0" / reader_view_file)
    with pytest.raises(StorageError, match="reader view"):
        eventlog.open(path)  # the writer does not write through the link
    assert outside.read_bytes() == b"keep"
    os.unlink(path / "t-0" / reader_view_file)
    os.rename(path / "t-0", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", path / "t-0")
    with pytest.raises(StorageError, match="symbolic link"):
        eventlog.open(path, read_only=True)


def test_a_reader_never_sees_an_append_that_a_failed_fsync_undid(tmp_path) -> None:
    """fsync="always": the end is published after the fsync, so a reader looking while
    the fsync runs (and fails) sees only acknowledged records."""
    import errno

    from eventlog.testing import FaultyFiles

    seen_during_msync: list[int] = []  # during the append's fdatasync (the group commit)

    class Watching(FaultyFiles):
        def fdatasync(self, fd):  # type: ignore[no-untyped-def]
            view = ReaderView.for_reader(str(tmp_path / "data" / "t-0"))
            if view is not None:
                seen_during_msync.append(view.read().end_offset)
                view.close()
            return super().fdatasync(fd)

    files = Watching()
    log = eventlog.open(tmp_path / "data", fsync="always", files=files)
    p = log.create_topic("t").partition(0)
    p.append([(None, b"durable")])
    seen_during_msync.clear()
    with _reader(log) as reader:
        files.fail("fsync", errno.EIO, path=".log")
        with pytest.raises(StorageError):
            p.append([(None, b"not acknowledged")])
        assert seen_during_msync and set(seen_during_msync) == {1}
        reader.refresh()
        rp = reader.partition("t", 0)
        assert rp.end_offset == 1
        assert [r.value for r in rp.read(0)] == [b"durable"]
    with pytest.raises(StorageError):
        log.close()
