"""storage/files.py: Kafka's file naming, atomic replacement and growable maps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eventlog.errors import StorageError
from eventlog.storage import files
from eventlog.storage.files import (
    MappedFile,
    atomic_write,
    chunk_bytes_min,
    offset_from_file_name,
    segment_file_name,
)


@pytest.mark.parametrize(
    ("base_offset", "suffix", "name"),
    [
        (0, ".log", "00000000000000000000.log"),
        (368769, ".log", "00000000000000368769.log"),  # Kafka's LogFileUtils example
        (368769, ".index", "00000000000000368769.index"),
        (1, ".timeindex", "00000000000000000001.timeindex"),
        (2**63 - 1, ".log", "09223372036854775807.log"),  # the largest int64 still fits
    ],
)
def test_segment_file_name(base_offset: int, suffix: str, name: str) -> None:
    assert segment_file_name(base_offset, suffix) == name
    assert len(name.split(".")[0]) == 20
    assert offset_from_file_name(name) == base_offset


@pytest.mark.parametrize(
    "name",
    [
        "0000000000000000000.log",  # 19 digits
        "000000000000000000000.log",  # 21 digits
        "0000000000000000000a.log",
        "00000000000000000000",  # no suffix
        "LOCK",
        "recovery-point",
        "log-start-offset",
        "-0000000000000000001.log",
    ],
)
def test_offset_from_file_name_rejects_other_names(name: str) -> None:
    assert offset_from_file_name(name) is None


def test_segment_file_names_sort_like_offsets() -> None:
    offsets = [0, 9, 10, 99, 100, 368769, 10**12]
    names = [segment_file_name(o, ".log") for o in offsets]
    assert sorted(names) == names


def test_anonymous_map_grows_by_doubling_up_to_the_cap() -> None:
    m = MappedFile(None, capacity_max_bytes=4 * chunk_bytes_min + 100, create=True)
    assert m.capacity == chunk_bytes_min
    m.ensure(chunk_bytes_min)  # already fits: no growth
    assert m.capacity == chunk_bytes_min
    m.ensure(chunk_bytes_min + 1)
    assert m.capacity == 2 * chunk_bytes_min
    m.ensure(3 * chunk_bytes_min)
    assert m.capacity == 4 * chunk_bytes_min
    m.ensure(4 * chunk_bytes_min + 1)  # doubling would pass the cap: stop at the cap
    assert m.capacity == 4 * chunk_bytes_min + 100
    m.ensure(10 * chunk_bytes_min)  # past the cap, still granted: one huge batch must fit
    assert m.capacity == 10 * chunk_bytes_min
    m.close()
    assert m.closed


def test_anonymous_map_write_read_zero_cut() -> None:
    m = MappedFile(None, capacity_max_bytes=2**20, create=True)
    m.write(10, b"hello")
    assert m.read(8, 9) == b"\0\0hello\0\0"
    m.ensure(chunk_bytes_min * 2)
    assert m.read(10, 5) == b"hello"  # growing keeps the contents
    assert m.read(chunk_bytes_min * 2 - 2, 10) == b"\0\0"  # short read at the end
    m.zero(11, 13)
    assert m.read(10, 5) == b"h\0\0lo"
    m.cut(12)
    assert m.read(10, 5) == b"h\0\0\0\0"
    m.close()


def test_file_map_grows_the_file_and_close_trims_it(tmp_path) -> None:
    path = str(tmp_path / segment_file_name(0, ".log"))
    m = MappedFile(path, capacity_max_bytes=2**30, create=True)
    assert m.file_bytes_at_open == 0
    assert os.path.getsize(path) == chunk_bytes_min  # preallocated one chunk
    m.ensure(chunk_bytes_min + 10)
    assert os.path.getsize(path) == 2 * chunk_bytes_min
    data = bytes(range(256)) * 300  # 76800 bytes, across the first chunk boundary
    m.write(0, data)
    m.flush()
    with open(path, "rb") as f:
        assert f.read(len(data)) == data  # the map is the file
    m.close(trim_to=len(data))
    assert os.path.getsize(path) == len(data)

    again = MappedFile(path, capacity_max_bytes=2**30, create=False)
    assert again.file_bytes_at_open == len(data)
    assert again.capacity == len(data)
    assert again.read(0, len(data)) == data
    again.close()


def test_file_map_cut_discards_the_tail(tmp_path) -> None:
    path = str(tmp_path / "x.log")
    m = MappedFile(path, capacity_max_bytes=2**30, create=True)
    m.write(0, b"a" * 100)
    m.cut(40)
    assert m.read(0, 100) == b"a" * 40 + bytes(60)
    assert m.capacity == chunk_bytes_min
    m.close()
    with open(path, "rb") as f:
        assert f.read(100) == b"a" * 40 + bytes(60)


def test_missing_file_without_create_is_a_storage_error(tmp_path) -> None:
    path = str(tmp_path / "absent.log")
    with pytest.raises(StorageError, match=r"absent\.log"):
        MappedFile(path, capacity_max_bytes=2**20, create=False)
    assert not os.path.exists(path)


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path) -> None:
    path = str(tmp_path / "topics.msgpack")
    atomic_write(path, b"one")
    atomic_write(path, b"two", durable=False)
    with open(path, "rb") as f:
        assert f.read() == b"two"
    assert os.listdir(tmp_path) == ["topics.msgpack"]


def test_fsync_dir_accepts_a_directory(tmp_path) -> None:
    files.fsync_dir(str(tmp_path))  # must not raise
    with pytest.raises(OSError):
        files.fsync_dir(str(tmp_path / "missing"))


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_released_pages_keep_their_data(tmp_path, monkeypatch, kind) -> None:
    """Writers and readers drop the pages below them from the map every
    ``release_interval_bytes`` (RSS stays bounded); the data must stay: in the page
    cache for a file (dirty pages too), and anonymous maps are never released."""
    monkeypatch.setattr(files, "release_interval_bytes", 3 * 4096)
    path = None if kind == "memory" else str(tmp_path / "x.log")
    m = MappedFile(path, capacity_max_bytes=2**30, create=True)
    chunk = 1000
    total = 300 * chunk
    m.ensure(total)
    data = bytes(i * 7 % 251 for i in range(total))
    for position in range(0, total, chunk):
        m.write(position, data[position : position + chunk])
    assert b"".join(m.read(p, chunk) for p in range(0, total, chunk)) == data
    assert m.read(0, total) == data
    if path is None:
        m.close()
        return
    m.close(trim_to=total)  # no flush: what a killed process leaves is the page cache
    with open(path, "rb") as f:
        assert f.read() == data


class _Recording(files.Files):
    """Files that remember every path they opened, listed, mapped or stat'ed."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        self.paths.append(path)
        return super().open(path, flags, mode)

    def stat(self, path: str) -> os.stat_result:
        self.paths.append(path)
        return super().stat(path)

    def exists(self, path: str) -> bool:
        self.paths.append(path)
        return super().exists(path)


def test_reader_view_and_aborted_index_go_through_files(tmp_path: Path) -> None:
    """The reader view and the .txnindex are files of the log like any other: a test's
    Files (fault injection) must see their calls too (they used os directly)."""
    from eventlog.broker.partition import Partition
    from eventlog.config import TopicConfig
    from eventlog.storage import batch as codec
    from eventlog.storage.follower import FollowedLog
    from eventlog.storage.partition_log import PartitionLog
    from eventlog.testing.clock import ManualClock

    recording = _Recording()
    directory = str(tmp_path / "t-0")
    log = PartitionLog(directory, TopicConfig(), now_ms=0, files=recording)
    p = Partition("t", 0, log, clock=ManualClock(1000))
    p.append_columns([b"k"], [b"v"], None, [1000], attributes=codec.attr_transactional,
                     producer_id=7, producer_epoch=0, base_sequence=0)
    p.write_marker(7, 0, commit=False)
    names = {os.path.basename(path) for path in recording.paths}
    assert "reader-view" in names
    assert "00000000000000000000.txnindex" in names
    assert "transactional.tmp" in names  # atomic_write's temporary file
    follower = FollowedLog(directory, TopicConfig(), now_ms=0)
    try:
        assert follower.read(0, 10)
    finally:
        follower.close()
    p.close()
    recording.paths.clear()
    reopened = PartitionLog(directory, TopicConfig(), now_ms=0, clean_shutdown=True,
                            files=recording)
    Partition("t", 0, reopened, clock=ManualClock(1000)).close()
    names = {os.path.basename(path) for path in recording.paths}
    assert {"reader-view", "transactional", "00000000000000000000.txnindex"} <= names


@pytest.mark.parametrize("separate_view_cache", [False, True])
def test_sync_data_flushes_the_view_first_where_the_map_is_not_the_page_cache(
        tmp_path, monkeypatch, separate_view_cache) -> None:
    """POSIX: one fdatasync covers what was stored through the map. Windows keeps a
    view's dirty pages apart, so FlushViewOfFile (msync) must come before the fsync."""
    from eventlog.testing import FaultyFiles

    monkeypatch.setattr(files, "_msync_before_fsync", separate_view_cache)
    faulty = FaultyFiles()
    m = MappedFile(str(tmp_path / "0.log"), capacity_max_bytes=2**20, create=True,
                   files=faulty)
    m.write(0, b"acknowledged")
    before = dict(faulty.calls)
    m.sync_data()
    assert faulty.calls["fsync"] - before.get("fsync", 0) == 1  # the fdatasync
    assert faulty.calls["msync"] - before.get("msync", 0) == (1 if separate_view_cache else 0)
    m.close()
