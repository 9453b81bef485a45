"""A data directory whose batches of many records are in format 2's five-column form
(tests/data/format_v2_columns_log, written by the code before framed records: batches
of 1,000, 100, 64, 33, 32 and 1 records, nulls, headers, gzip and lz4) reads exactly
as it was written, by sequential and point reads; framed appends follow its batches;
and it passes every check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import eventlog
from eventlog.storage import batch as codec
from eventlog.storage.verifier import verify_log

DATA = Path(__file__).parents[2] / "data"


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


def row(r: eventlog.Record) -> list:
    return [r.offset, r.timestamp_ms, _hex(r.key), _hex(r.value),
            [[k, _hex(v)] for k, v in r.headers]]


@pytest.fixture
def old_log(tmp_path: Path) -> Path:
    copy = tmp_path / "log"
    shutil.copytree(DATA / "format_v2_columns_log", copy)
    return copy


@pytest.fixture
def expected() -> dict[str, list]:
    return json.loads((DATA / "format_v2_columns_log.json").read_text())


def test_every_record_reads_as_written_sequentially_and_one_by_one(
    old_log: Path, expected: dict[str, list]
) -> None:
    for _reopen in range(2):  # the second time, every batch was CRC-checked already
        with eventlog.open(str(old_log)) as log:
            for topic, records in expected.items():
                p = log.partition(topic, 0)
                assert [row(r) for r in p.iter()] == records, topic
                for want in reversed(records):  # point reads, none sequential
                    assert [row(r) for r in p.read(want[0], max_records=1)] == [want]
                # Nothing was rewritten: no framed batch in the old files.
                assert not any(h.attributes & codec.attr_record_frames
                               for seg in p._log.segments for h, _ in seg.headers())
            log.check()


def test_framed_appends_follow_the_column_batches(
    old_log: Path, expected: dict[str, list]
) -> None:
    with eventlog.open(str(old_log)) as log:
        p = log.partition("many", 0)
        # As a topic that chose frames after these batches were written.
        p._log.config = p._log.config.replace(frame_records=codec.frame_records_default)
        start = p.end_offset
        p.append([(b"new%d" % i, b"n%d" % i) for i in range(500)])
        headers = [h for seg in p._log.segments for h, _ in seg.headers()]
        assert headers[-1].attributes & codec.attr_record_frames
        assert not any(h.attributes & codec.attr_record_frames for h in headers[:-1])
        after = [row(r) for r in p.iter()]
        assert after[:start] == expected["many"]
        assert [r[3] for r in after[start:]] == [(b"n%d" % i).hex() for i in range(500)]
        # Reads crossing from the old batches into the framed one, and point reads in it.
        assert [r.offset for r in p.read(start - 10, 30)] == list(range(start - 10, start + 20))
        for offset in range(start, start + 500, 7):
            assert [row(r) for r in p.read(offset, max_records=1)] == [after[offset]]
    with eventlog.open(str(old_log)) as log:
        p = log.partition("many", 0)
        assert [row(r) for r in p.iter()] == after
        assert [row(r) for o in range(len(after)) for r in p.read(o, max_records=1)] == after
        log.check()
    with eventlog.open(str(old_log), read_only=True) as reader:
        assert verify_log(reader.partition("many", 0)._log).damage == []
