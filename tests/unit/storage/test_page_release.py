"""Releasing mapped pages (MADV_DONTNEED) keeps the data and bounds the resident set."""

from __future__ import annotations

import itertools
import mmap

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
        assert len(p._log.segments) > 3
        p.truncate_to(5)
        p.check()
        p.append([(b"k", b"after")])
        assert [r.value for r in p.read(4, 10)] == [b"0004" * 500, b"after"]
    with eventlog.open(tmp_path) as log:
        p = log.topic("t").partition(0)
        p.check()
        assert p.end_offset == 6
        assert p.read(5)[0].value == b"after"


# -- populate-ahead: writes prefault the pages ahead of them (MADV_POPULATE_WRITE) --------

needs_populate = pytest.mark.skipif(
    not files._populate, reason="no MADV_POPULATE_WRITE (not Linux, or a kernel before 5.14)"
)


def _minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@needs_populate
@pytest.mark.parametrize("kind", ["file", "memory"])
def test_writes_prefault_a_bounded_window_ahead(tmp_path, kind) -> None:
    page = mmap.PAGESIZE
    m = files.MappedFile(None if kind == "memory" else str(tmp_path / "x.log"),
                         capacity_max_bytes=2**30, create=True)
    m.ensure(64 * 1024 * 1024)
    m.write(0, b"x" * 100)
    assert m._populated_end == page  # a small map stays small: one page, not the chunk
    chunk = bytes(range(256)) * 16
    end = 100
    while end < 4 * 1024 * 1024:
        m.write(end, chunk)
        end += len(chunk)
        assert end <= m._populated_end <= end + end // 4 + 2 * page
        assert m._populated_end - end <= files.populate_window_bytes_max + page
    # Up to the next prefault: it maps a whole window (the map is large by now) ...
    populated = m._populated_end
    while m._populated_end == populated:
        m.write(end, chunk)
        end += len(chunk)
    window_end = m._populated_end
    assert window_end - end >= files.populate_window_bytes_max
    # ... whose pages are mapped already: writing them does not fault (one fault per
    # page for anonymous memory otherwise, one per few pages for files).
    before = _minor_faults()
    while end + len(chunk) <= window_end:
        m.write(end, chunk)
        end += len(chunk)
    assert _minor_faults() - before < 16
    assert m.read(100, len(chunk)) == chunk
    assert m.read(end - len(chunk), len(chunk)) == chunk
    m.close(trim_to=end)


@pytest.mark.parametrize("on_disk", [True, False])
def test_a_kernel_without_populate_disables_it_and_keeps_writing(tmp_path, monkeypatch,
                                                                 on_disk) -> None:
    # Before Linux 5.14 madvise(MADV_POPULATE_WRITE) fails with EINVAL; an unknown
    # advice value fails the same way here.
    monkeypatch.setattr(files, "_populate", files._MADV_POPULATE_WRITE is not None)
    monkeypatch.setattr(files, "_MADV_POPULATE_WRITE", 0x7FFF)
    with eventlog.open(tmp_path if on_disk else None) as log:
        p = log.create_topic("t", segment_bytes=200_000).partition(0)
        for batch in range(300):
            p.append([(None, b"%05d" % batch * 200)])
        assert files._populate is False  # for the whole process, after the first failure
        assert [r.value for r in p.read(0, 300)] == [b"%05d" % b * 200 for b in range(300)]
        p.check()
    if on_disk:
        with eventlog.open(tmp_path) as log:
            assert log.topic("t").partition(0).read(299, 1)[0].value == b"00299" * 200


@pytest.mark.parametrize("on_disk", [True, False])
def test_without_madvise_or_mremap_as_on_macos_and_windows(tmp_path, monkeypatch,
                                                            on_disk) -> None:
    monkeypatch.setattr(files, "_can_resize", False)
    monkeypatch.setattr(files, "_populate", False)
    monkeypatch.setattr(files, "_MADV_POPULATE_WRITE", None)
    with eventlog.open(tmp_path if on_disk else None) as log:
        p = log.create_topic("t").partition(0)
        for batch in range(300):
            p.append([(None, b"%05d" % batch * 300)])
        assert [r.value for r in p.read(0, 300)] == [b"%05d" % b * 300 for b in range(300)]
        p.check()


def test_writes_release_the_pages_below_them(tmp_path, monkeypatch, small_release) -> None:
    """The write path's one compare also triggers MADV_DONTNEED every
    ``release_interval_bytes`` of writing (reads count their own bytes)."""
    released: list[int] = []
    original = files.MappedFile._release_below

    def recording(self, position: int) -> None:
        released.append(position)
        original(self, position)

    monkeypatch.setattr(files.MappedFile, "_release_below", recording)
    m = files.MappedFile(str(tmp_path / "x.log"), capacity_max_bytes=2**30, create=True)
    m.ensure(400_000)
    data = bytes(i % 251 for i in range(400_000))
    for position in range(0, 400_000, 1000):
        m.write(position, data[position : position + 1000])
    assert len(released) >= 400_000 // files.release_interval_bytes - 1
    assert all(b - a >= files.release_interval_bytes - 1000
               for a, b in itertools.pairwise(released))
    assert m.read(0, 400_000) == data
    m.close(trim_to=400_000)
    with open(tmp_path / "x.log", "rb") as f:
        assert f.read() == data
    anonymous = files.MappedFile(None, capacity_max_bytes=2**30, create=True)
    released.clear()
    anonymous.ensure(400_000)
    for position in range(0, 400_000, 1000):
        anonymous.write(position, data[position : position + 1000])
    assert released == []  # MADV_DONTNEED would discard anonymous memory
    assert anonymous.read(0, 400_000) == data
    anonymous.close()
