"""The data directory as a whole: names that look like leftovers, long names, hostile
``topics.msgpack`` files, symbolic links, the lock, and crashes during create/delete.

Each test names the defect it pins: it failed before the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
from budget import examples
from crashsim import abandon  # tests/ is on sys.path (its conftest.py)
from eventlog.broker import log_dir, registry
from eventlog.broker.log_dir import deleting_prefix, lock_file, topics_file
from eventlog.broker.topic import validate_topic_name
from eventlog.errors import CorruptLogError, LogDirLockedError, StorageError

LONGEST = "t" * 249  # Kafka's limit; its partition directories are 251..254 characters


def fill(log: eventlog.EventLog, topic: str, n: int = 3) -> None:
    for p in log.topic(topic).partitions:
        p.append([(b"k%d" % i, b"%s-%d-%d" % (topic.encode()[:8], p.index, i)) for i in range(n)])


def contents(log: eventlog.EventLog, topic: str) -> dict[int, list[bytes | None]]:
    return {p.index: [r.value for r in p.read(0, 100)] if p.end_offset else []
            for p in log.topic(topic).partitions}


def entries(path: Path) -> set[str]:
    return set(os.listdir(path))


# --------------------------------------------------------------- defect 2: leftover names


@pytest.mark.parametrize("name", ["orders.deleted", "orders-0.deleted", "a.tmp", "x.deleted.tmp"])
def test_topics_whose_names_look_like_leftovers_survive_reopen(tmp_path: Path, name: str) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic(name, 2)
        fill(log, name)
        expected = contents(log, name)
    for _ in range(2):  # a clean open, then one after a deletion elsewhere
        with eventlog.open(tmp_path) as log:
            assert contents(log, name) == expected
            log.create_topic("other")
            log.delete_topic("other")


def test_open_removes_old_style_leftovers_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("orders")
        log.create_topic("orders.deleted")
        fill(log, "orders.deleted")
    # An earlier version's half-finished deletion, a user's own directory and file,
    # and a directory that looks like a partition but that no metadata lists.
    for leftover in ("orders-0.deleted", "old-3.deleted"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "00000000000000000000.log").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes.deleted.txt").write_text("mine")
    (tmp_path / "stray-0").mkdir()
    (tmp_path / "topics.msgpack.tmp").write_bytes(b"half written")
    with caplog.at_level("WARNING", logger="eventlog.broker"), eventlog.open(tmp_path) as log:
        assert contents(log, "orders.deleted") == {0: [b"orders.d-0-0", b"orders.d-0-1",
                                                       b"orders.d-0-2"]}
    left = entries(tmp_path)
    assert not {"orders-0.deleted", "old-3.deleted", "topics.msgpack.tmp"} & left
    assert {"notes", "notes.deleted.txt", "stray-0", "orders-0", "orders.deleted-0"} <= left
    assert [r.getMessage().split(" ")[0] for r in caplog.records] == [str(tmp_path / "stray-0")]


# --------------------------------------------------------------- defect 7: long names


def test_a_topic_with_the_longest_name_can_be_created_grown_and_deleted(tmp_path: Path) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic(LONGEST, 2)
        log.create_partitions(LONGEST, 11)
        fill(log, LONGEST, 1)
    with eventlog.open(tmp_path) as log:
        assert log.topic(LONGEST).num_partitions == 11
        log.delete_topic(LONGEST)  # used to hit ENAMETOOLONG after the metadata rewrite
        assert log.topics() == []
    assert entries(tmp_path) <= {lock_file, topics_file, ".clean-shutdown"}
    with eventlog.open(tmp_path) as log:
        assert log.topics() == []
        log.create_topic(LONGEST)
        assert contents(log, LONGEST) == {0: []}


# --------------------------------------------------------------- defect 5: topics.msgpack


def write_meta(path: Path, meta: Any) -> None:
    path.mkdir(exist_ok=True)
    (path / topics_file).write_bytes(msgpack.packb(meta))


def entry(name: Any = "t", partitions: Any = 1, config: Any = None) -> dict[str, Any]:
    return {"name": name, "partitions": partitions, "config": {} if config is None else config}


BAD_METADATA = [
    ({"format": 1, "topics": [entry("../escaped")]}, "topic entry 0 ('../escaped')"),
    ({"format": 1, "topics": [entry("/tmp/abs")]}, "topic entry 0 ('/tmp/abs')"),
    ({"format": 1, "topics": [entry("ok"), entry("..")]}, "topic entry 1 ('..')"),
    ({"format": 1, "topics": [entry("")]}, "topic name must not be empty"),
    ({"format": 1, "topics": [entry("t" * 250)]}, "over the limit of 249"),
    ({"format": 1, "topics": [entry(5)]}, "topic name must be a str"),
    ({"format": 1, "topics": [entry(partitions=0)]}, "partitions must be an int in [1, 10000]"),
    ({"format": 1, "topics": [entry(partitions=10_001)]}, "partitions must be an int"),
    ({"format": 1, "topics": [entry(partitions="3")]}, "partitions must be an int"),
    ({"format": 1, "topics": [entry(partitions=True)]}, "partitions must be an int"),
    ({"format": 1, "topics": [entry(config={"retention_ms": "x"})]}, "retention_ms must be"),
    ({"format": 1, "topics": [entry(config={"nope": 1})]}, "unknown topic config nope"),
    ({"format": 1, "topics": [entry(config=[1])]}, "config is list, not a map"),
    ({"format": 1, "topics": [entry(config={"segment_bytes": 1})]}, "segment_bytes must be"),
    ({"format": 1, "topics": [entry(), entry()]}, "the topic is listed twice"),
    ({"format": 1, "topics": [{"name": "t"}]}, "not a map of name, partitions and config"),
    ({"format": 1, "topics": ["t"]}, "topic entry 0 is not a map"),
    ({"format": 1, "topics": {"t": 1}}, "'topics' is dict, not an array"),
    ({"format": 1}, "'topics' is NoneType"),
    ({"format": 2, "topics": []}, "unknown format 2"),
    ({"format": True, "topics": []}, "unknown format True"),
    ([1, 2], "a list, not a map"),
    ({"format": 1, "topics": [], "deleting": ["../x-0"]}, "'deleting' is not an array"),
    ({"format": 1, "topics": [], "deleting": "t-0"}, "'deleting' is not an array"),
]


@pytest.mark.parametrize(("meta", "fragment"), BAD_METADATA)
def test_a_bad_topics_file_is_corrupt_log_error_naming_file_and_entry(
    tmp_path: Path, meta: Any, fragment: str
) -> None:
    data = tmp_path / "data"
    write_meta(data, meta)
    before = entries(tmp_path), entries(data)
    with pytest.raises(CorruptLogError) as info:
        eventlog.open(data)
    assert str(data / topics_file) in str(info.value)
    assert fragment in str(info.value)
    assert (entries(tmp_path), entries(data) - {lock_file}) == before  # nothing created
    write_meta(data, {"format": 1, "topics": [entry("t")]})
    with eventlog.open(data) as log:  # the failed open released the lock
        assert log.topics() == ["t"]


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x81\xa6format\x01extra", b"\x92\x01",
                                  b"\x81\xa6format\xa3\xff\xfe\xfd", b"\x91" * 100_000])
def test_an_undecodable_topics_file_is_corrupt_log_error(tmp_path: Path, data: bytes) -> None:
    tmp_path.joinpath(topics_file).write_bytes(data)
    with pytest.raises(CorruptLogError, match=f"{topics_file} is damaged"):
        eventlog.open(tmp_path)


def small_topics_file(tmp_path: Path) -> bytes:
    source = tmp_path / "source"
    with eventlog.open(source) as log:
        log.create_topic("ab", 2, retention_ms=-1)
    return (source / topics_file).read_bytes()


def open_damaged(root: Path, data: bytes) -> None:
    """Open a directory holding ``data`` as topics.msgpack: it either opens with valid
    topics or raises StorageError, and creates nothing outside the directory."""
    directory = root / "d"
    directory.mkdir()
    (directory / topics_file).write_bytes(data)
    try:
        log = eventlog.open(directory)
    except StorageError:
        pass
    else:
        with log:
            for name in log.topics(include_internal=True):
                validate_topic_name(name)
                assert 1 <= log.topic(name).num_partitions <= 10_000
    assert entries(root) == {"d"}


def test_every_byte_flip_of_a_topics_file_opens_or_is_storage_error(tmp_path: Path) -> None:
    original = small_topics_file(tmp_path)
    for i in range(len(original)):
        for mask in (0xFF, 0x01):
            damaged = bytearray(original)
            damaged[i] ^= mask
            root = tmp_path / f"flip-{i}-{mask}"
            root.mkdir()
            open_damaged(root, bytes(damaged))


@settings(max_examples=examples(30))
@given(st.data())
def test_random_damage_to_a_topics_file_opens_or_is_storage_error(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    root = tmp_path_factory.mktemp("damage")
    original = small_topics_file(root)
    (root / "source").rename(root / "s")
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    scratch = root / "scratch"
    scratch.mkdir()
    open_damaged(scratch, bytes(damaged))


# --------------------------------------------------------------- symbolic links


@pytest.mark.parametrize("entry_name", [topics_file, lock_file, "t-0"])
def test_symlinked_entries_of_the_data_directory_are_refused(
    tmp_path: Path, entry_name: str
) -> None:
    data = tmp_path / "data"
    with eventlog.open(data) as log:
        log.create_topic("t")
        fill(log, "t")
    outside = tmp_path / "outside"
    (data / entry_name).rename(outside)
    (data / entry_name).symlink_to(outside)
    def files() -> dict[str, bytes]:  # the marker aside: open removes it first (defect 8)
        return {str(p): p.read_bytes() for p in tmp_path.rglob("*")
                if p.is_file() and p.name != ".clean-shutdown"}

    before = files()
    with pytest.raises(StorageError, match=re.escape(f"{data / entry_name} is a symbolic link")):
        eventlog.open(data)
    assert files() == before  # the target untouched, nothing created
    (data / entry_name).unlink()
    outside.rename(data / entry_name)
    with eventlog.open(data) as log:
        assert contents(log, "t") == {0: [b"t-0-0", b"t-0-1", b"t-0-2"]}


# --------------------------------------------------------------- defect 12b: the lock


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="directory locks are POSIX")
@pytest.mark.parametrize("replace", [False, True])
def test_deleting_the_lock_file_does_not_let_a_second_log_in(
    tmp_path: Path, replace: bool
) -> None:
    with eventlog.open(tmp_path) as first:
        first.create_topic("t")
        (tmp_path / lock_file).unlink()
        if replace:
            (tmp_path / lock_file).write_bytes(b"")
        with pytest.raises(LogDirLockedError, match=re.escape(str(tmp_path))):
            eventlog.open(tmp_path)
        first.partition("t", 0).append([(None, b"still mine")])
    with eventlog.open(tmp_path) as again:  # and the lock is released on close
        assert contents(again, "t") == {0: [b"still mine"]}


# --------------------------------------------------------------- failures change nothing


def _owner(name: str) -> Any:
    """The broker module whose ``name`` the broker calls: the data directory's file
    steps are in log_dir, the opening of partition logs in registry."""
    return log_dir if hasattr(log_dir, name) else registry


def failing(monkeypatch: pytest.MonkeyPatch, name: str, after: int = 0) -> None:
    """Make the broker's ``name`` raise ENOSPC from its ``after``-th call on."""
    real = getattr(_owner(name), name)
    calls = [0]

    def fail(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(_owner(name), name, fail)


def test_a_failed_metadata_write_in_delete_topic_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("t", 2)
        fill(log, "t")
        expected = contents(log, "t")
        meta = (tmp_path / topics_file).read_bytes()
        with monkeypatch.context() as m:
            failing(m, "atomic_write")
            with pytest.raises(StorageError, match="nothing was changed"):
                log.delete_topic("t")
        assert contents(log, "t") == expected
        assert (tmp_path / topics_file).read_bytes() == meta
        log.partition("t", 1).append([(None, b"more")])
    with eventlog.open(tmp_path) as log:
        assert contents(log, "t")[1][-1] == b"more"


@pytest.mark.parametrize("grow", [False, True])
def test_a_failed_partition_creation_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grow: bool
) -> None:
    with eventlog.open(tmp_path) as log:
        if grow:
            log.create_topic("t")
        meta = msgpack.unpackb((tmp_path / topics_file).read_bytes()) if grow else {"topics": []}
        dirs = entries(tmp_path) | {topics_file}  # (an empty one if there was none)
        with monkeypatch.context() as m:
            failing(m, "PartitionLog", after=1)  # the second partition fails
            with pytest.raises(StorageError, match="No space left"):
                if grow:
                    log.create_partitions("t", 3)
                else:
                    log.create_topic("t", 3)
        assert log.topics() == (["t"] if grow else [])
        assert entries(tmp_path) | {topics_file} == dirs
        assert msgpack.unpackb((tmp_path / topics_file).read_bytes())["topics"] == meta["topics"]
        if grow:
            assert log.topic("t").num_partitions == 1
    with eventlog.open(tmp_path) as log:
        assert log.topics() == (["t"] if grow else [])
        log.create_partitions("t", 3) if grow else log.create_topic("t", 3)


def test_a_directory_that_cannot_be_removed_after_delete_is_removed_at_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("t", 2)
        fill(log, "t")
        with monkeypatch.context() as m:
            failing(m, "_rename")
            log.delete_topic("t")  # recorded: the directories go at the next open
        assert log.topics() == []
    assert {"t-0", "t-1"} <= entries(tmp_path)
    with eventlog.open(tmp_path) as log:
        assert log.topics() == []
    assert not {"t-0", "t-1"} & entries(tmp_path)
    assert "deleting" not in msgpack.unpackb((tmp_path / topics_file).read_bytes())


def test_an_open_that_fails_half_way_closes_what_it_opened_and_unlocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("a", 2)
        log.create_topic("b", 2)
        fill(log, "b")
    with monkeypatch.context() as m:
        failing(m, "PartitionLog", after=3)  # a-0, a-1, b-0 open; b-1 fails
        with pytest.raises(StorageError, match="No space left"):
            eventlog.open(tmp_path)
    with eventlog.open(tmp_path) as log:  # not LogDirLockedError: the lock was released
        assert contents(log, "b") == {i: [b"b-%d-%d" % (i, j) for j in range(3)]
                                      for i in range(2)}


# --------------------------------------------------------------- defect 12a: crashes


class Crash(BaseException):
    """The process dies here (a BaseException: no cleanup handler catches it)."""


STEPS = ("atomic_write", "_rename", "_remove_entry", "PartitionLog")


def crash_at(monkeypatch: pytest.MonkeyPatch, step: int | None) -> list[str]:
    """Count the file system steps of the broker; raise Crash at ``step`` and at every
    step after it (a dead process does nothing more). Returns the steps taken."""
    taken: list[str] = []
    for name in STEPS:
        real = getattr(_owner(name), name)

        def wrapper(*args: Any, _real: Callable[..., Any] = real, _name: str = name,
                    **kwargs: Any) -> Any:
            if step is not None and len(taken) >= step:
                raise Crash(_name)
            taken.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(_owner(name), name, wrapper)
    return taken


def kill(log: eventlog.EventLog) -> None:
    """Drop ``log`` as kill -9 would: no flush, no trim, no marker; the locks die."""
    log._maintenance.stop()
    for topic in log._topics.values():
        for p in topic.partitions:
            if not p._log._closed:
                abandon(p._log)
    for fd in log._dir._lock_fds:
        os.close(fd)


def setup_log(path: Path) -> None:
    with eventlog.open(path) as log:
        log.create_topic("keep", 2)
        fill(log, "keep")
        log.create_topic("t", 2)
        fill(log, "t")
        log.create_topic("gone", 2)
        fill(log, "gone")
        log.delete_topic("gone")  # its directories are listed as being deleted no more


OPERATIONS: dict[str, Callable[[eventlog.EventLog], Any]] = {
    "create": lambda log: log.create_topic("new", 3),
    "grow": lambda log: log.create_partitions("t", 4),
    "delete": lambda log: log.delete_topic("t"),
    "recreate": lambda log: (log.delete_topic("t"), log.create_topic("t", 1)),
}


def check_after_crash(path: Path, operation: str) -> None:
    with eventlog.open(path) as log:
        assert contents(log, "keep") == {i: [b"keep-%d-%d" % (i, j) for j in range(3)]
                                         for i in range(2)}
        topics = set(log.topics())
        assert topics - {"keep"} <= {"t", "new"}
        t_data = {i: [b"t-%d-%d" % (i, j) for j in range(3)] for i in range(2)}
        if operation == "create":
            assert "t" in topics
            if "new" in topics:
                assert contents(log, "new") == {0: [], 1: [], 2: []}
        elif operation == "grow":
            assert contents(log, "t") in (t_data, {**t_data, 2: [], 3: []})
        elif operation == "delete":
            assert "t" not in topics or contents(log, "t") == t_data
        else:
            assert "t" not in topics or contents(log, "t") in (t_data, {0: []})
        named = {f"{t}-{p.index}" for t in log.topics(include_internal=True)
                 for p in log.topic(t).partitions}
        left = entries(path) - {lock_file, topics_file, ".clean-shutdown"}
        assert left == named, "orphaned or missing partition directories"
        log.create_topic("after")  # the directory works on
    assert not any(name.startswith(deleting_prefix) for name in entries(path))


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_crash_at_any_step_of_create_or_delete_leaves_no_orphan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    with monkeypatch.context() as m:
        counted = tmp_path / "count"
        setup_log(counted)
        taken = crash_at(m, None)
        with eventlog.open(counted) as log:
            OPERATIONS[operation](log)
        steps = len(taken)
    assert steps >= 2
    for step in range(steps + 1):
        path = tmp_path / f"step-{step}"
        setup_log(path)
        log = eventlog.open(path)
        with monkeypatch.context() as m:
            crash_at(m, step)
            try:
                OPERATIONS[operation](log)
            except Crash:
                pass
            kill(log)
        check_after_crash(path, operation)


def test_crashed_leftovers_of_earlier_steps(tmp_path: Path) -> None:
    """What a crash between the rename and the removal of a deletion leaves."""
    with eventlog.open(tmp_path) as log:
        log.create_topic("t")
    (tmp_path / f"{deleting_prefix}0123456789abcdef").mkdir()
    (tmp_path / f"{deleting_prefix}0123456789abcdef" / "x.log").write_bytes(b"x")
    with eventlog.open(tmp_path) as log:
        assert log.topics() == ["t"]
    assert entries(tmp_path) == {lock_file, topics_file, ".clean-shutdown", "t-0"}
