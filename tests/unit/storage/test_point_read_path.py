"""``Partition.read(offset, max_records=1)``: the point read through the batch holding
the offset returns what the general read returns, checks a batch's CRC once per
process (bytes appended here count as checked), and still refuses damaged bytes it
has not checked."""

from __future__ import annotations

from pathlib import Path

import pytest

import eventlog
from eventlog.errors import CorruptLogError, OffsetOutOfRangeError
from eventlog.storage import batch as codec


def fill(p: eventlog.Partition) -> None:
    """One-record batches, batches of 20 records, records with headers, a compressed
    batch: every shape the point read may meet."""
    for i in range(30):
        p.append([(b"k%d" % i, b"one-%d" % i)])
    for n in range(5):
        p.append([(None, b"many-%d-%d" % (n, j)) for j in range(20)])
    p.append([(b"h", b"with headers", [("a", b"1")])])


def test_a_point_read_returns_what_the_general_read_returns(tmp_path: Path) -> None:
    with eventlog.open(str(tmp_path)) as log:
        p = log.create_topic("t").partition(0)
        fill(p)
        end = p.end_offset
        for offset in range(end):
            assert p.read(offset, max_records=1) == p.read(offset, max_records=2)[:1]
        assert p.read(end, max_records=1) == []
        with pytest.raises(OffsetOutOfRangeError):
            p.read(end + 1, max_records=1)


def count_crcs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = codec.verify_crc

    def counting(tail: bytes | memoryview, header: codec.BatchHeader) -> bool:
        calls.append(header.base_offset)
        return real(tail, header)

    monkeypatch.setattr(codec, "verify_crc", counting)
    return calls


def test_batches_appended_here_are_not_checked_again_by_point_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with eventlog.open(str(tmp_path)) as log:
        p = log.create_topic("t").partition(0)
        for n in range(10):
            p.append([(None, b"v%d-%d" % (n, j)) for j in range(50)])
        calls = count_crcs(monkeypatch)
        for offset in range(0, 500, 7):
            assert p.read(offset, max_records=1)[0].offset == offset
        assert calls == []


def test_after_a_reopen_a_batch_is_checked_once_and_damage_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with eventlog.open(str(tmp_path)) as log:
        p = log.create_topic("t").partition(0)
        for n in range(10):
            p.append([(None, b"v%d-%d" % (n, j)) for j in range(50)])
    # A flipped payload byte in the last batch, written while the log was closed.
    (seg_path,) = (tmp_path / "t-0").glob("*.log")
    data = bytearray(seg_path.read_bytes())
    data[-3] ^= 0xFF
    seg_path.write_bytes(bytes(data))
    with eventlog.open(str(tmp_path)) as log:
        p = log.topic("t").partition(0)
        calls = count_crcs(monkeypatch)
        assert p.read(10, max_records=1)[0].value == b"v0-10"
        assert p.read(20, max_records=1)[0].value == b"v0-20"
        assert calls == [0]  # the first batch: checked once, then remembered
        for _ in range(2):
            with pytest.raises(CorruptLogError, match="fails its CRC"):
                p.read(470, max_records=1)
