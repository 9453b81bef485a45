"""A data directory written in batch format 1 (tests/data/format_v1_log, written by the
code before format 2: one-record and many-record batches, headers, nulls, every codec,
a compacted topic, a transaction) reads exactly as it was written, takes format-2
appends after its format-1 batches, and passes every check."""

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


def rows(log: eventlog.EventLog, topic: str) -> list[list]:
    return [[r.offset, r.timestamp_ms, _hex(r.key), _hex(r.value),
             [[k, _hex(v)] for k, v in r.headers]]
            for r in log.partition(topic, 0).iter()]


@pytest.fixture
def old_log(tmp_path: Path) -> Path:
    copy = tmp_path / "log"
    shutil.copytree(DATA / "format_v1_log", copy)
    return copy


def test_every_topic_reads_as_written(old_log: Path) -> None:
    expected = json.loads((DATA / "format_v1_log.json").read_text())
    with eventlog.open(str(old_log)) as log:
        for topic, records in expected.items():
            assert rows(log, topic) == records, topic
            p = log.partition(topic, 0)
            # Every batch on disk is format 1: nothing was rewritten by opening.
            for seg in p._log.segments:
                assert {h.magic for h, _ in seg.headers()} <= {codec.magic_v1}
        log.check()


def test_format_2_appends_follow_format_1_batches(old_log: Path) -> None:
    """(The fixture's clock is years behind this one, so segment_ms rolls a new segment
    for the appends; test_run_reads covers both formats in one segment.)"""
    expected = json.loads((DATA / "format_v1_log.json").read_text())
    with eventlog.open(str(old_log)) as log:
        p = log.partition("one", 0)
        start = p.end_offset
        for i in range(40):
            p.append([(b"new", b"n%d" % i)])
        p.append([(b"many", b"m%d" % i) for i in range(5)])
        magics = [h.magic for seg in p._log.segments for h, _ in seg.headers()]
        assert magics == [1] * start + [2] * 41
        after = rows(log, "one")
        assert after[:start] == expected["one"]
        assert [r[3] for r in after[start:]] == [
            (b"n%d" % i).hex() for i in range(40)] + [(b"m%d" % i).hex() for i in range(5)]
        # A read starting in the old batches and crossing into the new ones.
        assert [r.offset for r in p.read(start - 10, 30)] == list(range(start - 10, start + 20))
    with eventlog.open(str(old_log)) as log:
        assert rows(log, "one") == after
        log.check()
    with eventlog.open(str(old_log), read_only=True) as reader:
        assert verify_log(reader.partition("one", 0)._log).damage == []
