"""Releasing mapped pages (MADV_DONTNEED) keeps the data and bounds the resident set."""

from __future__ import annotations

import pytest

import eventlog
from eventlog.storage import files


@pytest.fixture
def small_release(monkeypatch):
    monkeypatch.setattr(files, "release_interval_bytes", 4096)


def test_data_survives_page_release_while_writing_and_reading(tmp_path, small_release):
    with eventlog.open(tmp_path) as log:
        p = log.create_topic("t").partition(0)
        for batch in range(200):
            p.append([(b"k%d" % batch, b"%d-%d" % (batch, i) * 20) for i in range(10)])
        offset = 0
        while offset < p.end_offset:
            for record in p.read(offset, 7):
                batch, i = divmod(record.offset, 10)
                assert record.value == b"%d-%d" % (batch, i) * 20
                offset = record.offset + 1
    with eventlog.open(tmp_path) as log:  # and on disk, after a clean close
        p = log.topic("t").partition(0)
        assert p.read(1999, 1)[0].value == b"199-9" * 20


def test_memory_maps_are_never_released(small_release):
    # MADV_DONTNEED on anonymous memory would zero it: in-memory logs must keep data.
    with eventlog.open() as log:
        p = log.create_topic("t").partition(0)
        for batch in range(100):
            p.append([(None, b"x%d" % batch * 50)])
        assert [r.value for r in p.read(0, 100)] == [b"x%d" % b * 50 for b in range(100)]


@pytest.mark.parametrize("on_disk", [True, False])
def test_growing_without_mremap_keeps_data(tmp_path, monkeypatch, on_disk):
    # macOS and Windows have no mremap: maps grow by mapping anew.
    monkeypatch.setattr(files, "_can_resize", False)
    with eventlog.open(tmp_path if on_disk else None) as log:
        p = log.create_topic("t").partition(0)
        reader_view = p.read(0, 1) if p.end_offset else []
        for batch in range(300):
            p.append([(None, b"%05d" % batch * 100)])
        assert reader_view == []
        assert [r.value for r in p.read(0, 300)] == [b"%05d" % b * 100 for b in range(300)]
        p.check()


def test_sealed_segments_reopen_their_index_files_when_truncated(tmp_path):
    # Sealing releases the index descriptors; cutting into a sealed segment must
    # reopen them, and the result must survive a reopen of the log.
    with eventlog.open(tmp_path) as log:
        p = log.create_topic("t", segment_bytes=20_000, index_interval_bytes=100).partition(0)
        for i in range(40):
            p.append([(b"k", b"%04d" % i * 500)])
        assert len(p.log.segments) > 3
        p.truncate_to(5)
        p.check()
        p.append([(b"k", b"after")])
        assert [r.value for r in p.read(4, 10)] == [b"0004" * 500, b"after"]
    with eventlog.open(tmp_path) as log:
        p = log.topic("t").partition(0)
        p.check()
        assert p.end_offset == 6
        assert p.read(5)[0].value == b"after"
