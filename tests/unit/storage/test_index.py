"""storage/index.py: the sparse offset and time indexes, checked against a SortedDict."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sortedcontainers import SortedDict

from eventlog.storage.index import OffsetIndex, TimeIndex


def _model_lookup(model: SortedDict, key: int, default: int) -> int:
    """Value of the greatest key <= ``key`` (Kafka's index lookup), else ``default``."""
    i = model.bisect_right(key)
    return model.peekitem(i - 1)[1] if i else default


@st.composite
def offset_entries(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Strictly increasing (relative offset, position) pairs, none at position 0."""
    rels = draw(st.lists(st.integers(1, 10_000), unique=True, max_size=40))
    positions = draw(
        st.lists(st.integers(1, 2**31 - 1), unique=True, min_size=len(rels), max_size=len(rels))
    )
    return list(zip(sorted(rels), sorted(positions)))


@pytest.fixture(params=["memory", "file"])
def index_path(request, tmp_path) -> str | None:
    return None if request.param == "memory" else str(tmp_path / "00000000000000000000.index")


@given(entries=offset_entries(), probes=st.lists(st.integers(-5, 10_010), max_size=50))
def test_offset_lookup_matches_a_sorted_dict(tmp_path_factory, entries, probes) -> None:
    path = str(tmp_path_factory.mktemp("idx") / "x.index")
    index = OffsetIndex(path)
    model = SortedDict()
    for rel, pos in entries:
        index.append(rel, pos)
        model[rel] = pos
    index.check()
    for probe in probes + [rel for rel, _ in entries]:
        assert index.lookup(probe) == _model_lookup(model, probe, 0)
    positions = SortedDict((pos, pos) for _, pos in entries)
    for probe in probes + [pos for _, pos in entries]:
        assert index.position_at_or_below(probe) == _model_lookup(positions, probe, 0)
    # Reloading from the file gives the same entries, trusted or not.
    index.close()
    for trusted in (True, False):
        again = OffsetIndex(path, trusted=trusted)
        assert list(zip(again.offsets, again.positions)) == entries
        again.close()


def test_offset_index_file_format(index_path) -> None:
    index = OffsetIndex(index_path)
    index.append(3, 83)
    index.append(5, 166)
    assert len(index) == 2
    assert index.last_entry() == (5, 166)
    index.close()
    if index_path is not None:
        with open(index_path, "rb") as f:
            # 8-byte entries, big-endian int32 relative offset then int32 position.
            assert f.read() == bytes.fromhex("00000003" "00000053" "00000005" "000000a6")


def test_offset_index_truncate_after_position(index_path) -> None:
    index = OffsetIndex(index_path)
    model = SortedDict()
    for rel, pos in [(2, 100), (4, 200), (9, 300), (12, 400)]:
        index.append(rel, pos)
        model[rel] = pos
    index.write_pending()  # on file, so the cuts below must cut the file too
    index.truncate_after_position(301)  # the log was cut at byte 301: entry at 300 stays
    assert list(index.offsets) == [2, 4, 9]
    index.truncate_after_position(300)  # cut at 300: the batch at 300 is gone
    assert list(index.offsets) == [2, 4]
    assert list(index.positions) == [100, 200]
    index.check()
    index.truncate_after_position(5000)  # nothing to drop
    assert len(index) == 2
    if index_path is not None:
        assert os.path.getsize(index_path) == 16
    index.drop_last()
    assert index.last_entry() == (2, 100)
    index.append(3, 150)  # appending after a truncate continues from the new end
    index.check()
    index.close()
    if index_path is not None:
        reloaded = OffsetIndex(index_path, trusted=False)
        assert list(zip(reloaded.offsets, reloaded.positions)) == [(2, 100), (3, 150)]
        reloaded.close()


def test_offset_index_append_must_increase() -> None:
    index = OffsetIndex(None)
    index.append(5, 100)
    with pytest.raises(AssertionError):
        index.append(5, 200)
    with pytest.raises(AssertionError):
        index.append(6, 100)
    assert list(index.offsets) == [5]


def _write(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _entries(*pairs: tuple[int, int]) -> bytes:
    return b"".join(struct.pack(">ii", a, b) for a, b in pairs)


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (_entries((1, 10), (2, 20)) + b"\x00\x00\x00", [(1, 10), (2, 20)]),  # partial entry
        (_entries((1, 10), (2, 20), (0, 0), (0, 0)), [(1, 10), (2, 20)]),  # zero tail
        (_entries((1, 10), (2, 20), (2, 30)), [(1, 10), (2, 20)]),  # offset not increasing
        (_entries((1, 10), (2, 20), (3, 20)), [(1, 10), (2, 20)]),  # position not increasing
        (_entries((1, 10), (3, 30), (2, 40)), [(1, 10), (3, 30)]),
        (bytes(8), []),  # one zero entry: nothing was written
        (bytes(64), []),  # a zero-filled file (preallocated, or zeroed by a crash)
        (b"", []),
        (_entries((-5, 10), (2, 20)), []),  # garbage: a negative relative offset
        (_entries((0, 10), (2, 20)), []),  # offset 0 is the first batch: never indexed
        (_entries((1, -10), (2, 20)), []),  # a negative position
        (b"\xde\xad\xbe\xef" * 4, []),
    ],
    ids=["partial", "zero-tail", "offset-repeats", "position-repeats", "offset-drops",
         "one-zero-entry", "zero-filled", "empty", "negative-offset", "offset-0",
         "negative-position", "deadbeef"],
)
def test_untrusted_offset_index_keeps_the_valid_prefix(tmp_path, data, kept) -> None:
    path = tmp_path / "x.index"
    _write(path, data)
    index = OffsetIndex(str(path), trusted=False)
    assert list(zip(index.offsets, index.positions)) == kept
    index.check()
    assert os.path.getsize(path) == 8 * len(kept)  # the torn tail is cut from the file
    index.close()


def test_time_index_file_format_and_lookups(tmp_path) -> None:
    path = str(tmp_path / "x.timeindex")
    index = TimeIndex(path)
    assert index.max_timestamp() == -1
    assert index.last_below(10**12) is None
    index.append(1000, 3)
    index.append(1000, 5)  # not a new maximum: no entry
    index.append(900, 6)  # older: no entry
    index.append(2000, 7)
    index.append(2500, 9)
    assert list(index.timestamps) == [1000, 2000, 2500]
    assert list(index.offsets) == [3, 7, 9]
    assert index.max_timestamp() == 2500
    model = SortedDict({1000: 3, 2000: 7, 2500: 9})
    for ts in (0, 999, 1000, 1001, 1999, 2000, 2001, 2500, 2501, 10**13):
        # "last entry with timestamp < ts"
        i = model.bisect_left(ts)
        expected = model.peekitem(i - 1)[1] if i else None
        assert index.last_below(ts) == expected, ts
    index.check()
    index.close()
    with open(path, "rb") as f:
        assert f.read() == bytes.fromhex(
            "00000000000003e8" "00000003"
            "00000000000007d0" "00000007"
            "00000000000009c4" "00000009"
        )
    again = TimeIndex(path)
    assert list(again.timestamps) == [1000, 2000, 2500]
    again.truncate_after_offset(7)
    assert list(again.offsets) == [3, 7]
    again.truncate_after_offset(6)
    assert list(again.offsets) == [3]
    assert again.max_timestamp() == 1000
    again.check()
    again.close()
    assert os.path.getsize(path) == 12


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (struct.pack(">qi", 5, 1) + struct.pack(">qi", 9, 2) + b"\x01\x02", [5, 9]),
        (struct.pack(">qi", 5, 1) + struct.pack(">qi", 4, 2), [5]),  # not increasing
        (struct.pack(">qi", 5, 1) + bytes(24), [5]),
        (bytes(36), []),
        (struct.pack(">qi", 0, 3), [0]),  # timestamp 0 is a real timestamp
        (struct.pack(">qi", 5, 0), []),  # relative offset 0 is the first batch: never indexed
        (struct.pack(">qi", -2, 3), []),  # garbage
    ],
    ids=["partial", "not-increasing", "zero-tail", "zero-filled", "timestamp-0", "offset-0",
         "negative-timestamp"],
)
def test_time_index_keeps_the_valid_prefix(tmp_path, data, kept) -> None:
    path = tmp_path / "x.timeindex"
    _write(path, data)
    index = TimeIndex(str(path))
    assert list(index.timestamps) == kept
    index.check()
    index.close()
    assert os.path.getsize(path) == 12 * len(kept)


def test_in_memory_time_index_has_no_file() -> None:
    index = TimeIndex(None)
    index.append(5, 1)
    index.truncate_after_offset(0)
    assert len(index) == 0
    index.fsync()
    index.close()
