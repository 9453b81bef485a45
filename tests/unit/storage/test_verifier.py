"""storage/verifier.py: ``eventlog verify`` finds each kind of damage, and none in a
healthy log (the command itself is tested in tests/cli/test_commands.py)."""

from __future__ import annotations

import os
import struct

import eventlog
from eventlog.storage.verifier import dump_segment, index_entries, verify_log


def _log(path, **config):
    log = eventlog.open(path)
    p = log.create_topic("t", segment_bytes=2048, index_interval_bytes=128, **config).partition(0)
    for i in range(200):
        p.append([(b"k%d" % i, b"v" * 30)], timestamp_ms=1000 + i)
    return log, p


def _problems(path) -> list[str]:
    with eventlog.open(path, read_only=True) as reader:
        return [d.problem for d in verify_log(reader.partition("t", 0)._log).damage]


def test_a_healthy_log_has_no_damage(tmp_path) -> None:
    log, p = _log(tmp_path / "d")
    report = verify_log(p._log)
    assert report.batches == 200 and report.damage == []
    log.close()
    assert _problems(tmp_path / "d") == []


def test_a_flipped_byte_fails_its_crc(tmp_path) -> None:
    log, p = _log(tmp_path / "d")
    seg = p._log.segments[0].path
    log.close()
    with open(seg, "r+b") as f:
        f.seek(60)  # inside the first batch's payload
        b = f.read(1)
        f.seek(60)
        f.write(bytes([b[0] ^ 1]))
    assert any("fails its CRC" in d for d in _problems(tmp_path / "d"))


def test_a_missing_segment_leaves_offsets_missing(tmp_path) -> None:
    log, p = _log(tmp_path / "d")
    middle = p._log.segments[1]
    paths = [middle.path, middle.index_path]
    log.close()
    for path in paths:
        os.unlink(path)
    assert any("offsets are missing" in d for d in _problems(tmp_path / "d"))


def test_bad_index_and_time_index_entries(tmp_path) -> None:
    log, p = _log(tmp_path / "d")
    seg = p._log.segments[0]
    index, timeindex = seg.index_path, seg.path[:-4] + ".timeindex"
    log.close()
    entries = index_entries(index)
    assert entries and entries[0]["position"] > 0
    with open(index, "r+b") as f:
        f.write(struct.pack(">ii", 1, 3))  # names no batch
        f.seek(0, os.SEEK_END)
        f.write(b"\x01\x02\x03")  # a partial entry at the end of a sealed segment
    with open(timeindex, "r+b") as f:
        f.write(struct.pack(">qi", 0, 5))  # says records up to offset 5 are at time 0
    problems = _problems(tmp_path / "d")
    assert any("names no batch" in d for d in problems)
    assert any("partial entry" in d for d in problems)
    assert any("are at or before 0" in d for d in problems)


def test_dump_reads_batches_and_stops_at_the_zeros(tmp_path) -> None:
    log, p = _log(tmp_path / "d")
    batches = list(dump_segment(p._log.active_segment.path, records=True))
    assert batches and all(b["isvalid"] for b in batches)
    assert batches[-1]["lastOffset"] == 199 and batches[-1]["records"][0]["payload"] == b"v" * 30
    log.close()
