"""storage/txn_index.py and Partition's transaction hooks: markers, the aborted index, the LSO."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests.crashsim import abandon

from eventlog.broker.partition import Partition
from eventlog.config import TopicConfig
from eventlog.errors import CorruptLogError, InvalidProducerEpochError
from eventlog.storage import batch as codec
from eventlog.storage import txn_index
from eventlog.storage.partition_log import PartitionLog
from eventlog.storage.txn_index import AbortedTxn
from eventlog.testing.clock import ManualClock

TXN = codec.attr_transactional


def open_partition(directory: str | None, clean: bool = False, **config: object) -> Partition:
    log = PartitionLog(directory, TopicConfig(**config), now_ms=0, clean_shutdown=clean)
    return Partition("t", 0, log, clock=ManualClock(1000))


def send(p: Partition, pid: int, n: int = 1, *, epoch: int = 0, seq: int = 0,
         txn: bool = True) -> int:
    keys = [b"k%d" % i for i in range(n)]
    return p.append_columns(keys, [b"v"] * n, None, [1000] * n, attributes=TXN if txn else 0,
                            producer_id=pid, producer_epoch=epoch, base_sequence=seq).base_offset


@pytest.fixture(params=["memory", "file"])
def directory(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    return None if request.param == "memory" else str(tmp_path / "t-0")


def test_marker_batch_is_kafkas_control_batch() -> None:
    data = txn_index.encode_marker(7, 1234, 42, 3, commit=True, coordinator_epoch=9)
    header = codec.decode_header(data)
    assert header.attributes == codec.attr_control | codec.attr_transactional
    assert (header.base_offset, header.producer_id, header.producer_epoch) == (7, 42, 3)
    assert header.base_sequence == -1 and header.record_count == 1
    cols = codec.decode_columns(header, data[codec.crc_start:])
    assert cols.keys[0] == b"\x00\x00\x00\x01"  # version 0, type 1 COMMIT
    assert cols.values[0] == b"\x00\x00\x00\x00\x00\x09"  # version 0, coordinator epoch 9
    assert txn_index.marker_type(cols.keys[0]) == txn_index.control_commit
    abort = txn_index.encode_marker(0, 0, 1, 0, commit=False)
    cols = codec.decode_columns(codec.decode_header(abort), abort[codec.crc_start:])
    assert txn_index.marker_type(cols.keys[0]) == txn_index.control_abort
    for bad in (b"\x00\x00\x00\x02", b"\x00\x01\x00\x01", b"xx", None):
        with pytest.raises(ValueError):
            txn_index.marker_type(bad)


@pytest.mark.parametrize("commit", [True, False])
@pytest.mark.parametrize("coordinator_epoch", [0, 9])
def test_write_marker_appends_encode_markers_bytes(commit: bool,
                                                   coordinator_epoch: int) -> None:
    """Partition.write_marker encodes with the header in one step (not through
    encode_marker and a decode): the bytes in the log are encode_marker's."""
    p = open_partition(None)
    send(p, 42, 2, epoch=3)
    offset = p.write_marker(42, 3, commit, coordinator_epoch)
    seg = p._log.active_segment
    ((header, position),) = [(h, pos) for h, pos in seg.headers() if h.base_offset == offset]
    assert bytes(seg.read_batch(position, header)) == txn_index.encode_marker(
        offset, 1000, 42, 3, commit, coordinator_epoch)


def test_lso_holds_at_first_open_transaction(directory: str | None) -> None:
    p = open_partition(directory)
    assert p.last_stable_offset == 0
    p.append([(b"a", b"1")])                       # 0: not transactional
    first = send(p, 1, 2)                          # 1-2: pid 1 opens
    send(p, 2, 1)                                  # 3: pid 2 opens
    send(p, 1, 1, seq=2)                           # 4: pid 1 again
    assert first == 1 and p.last_stable_offset == 1 and p.end_offset == 5
    assert p.write_marker(1, 0, commit=True) == 5
    assert p.last_stable_offset == 3               # pid 2 still open
    p.write_marker(2, 0, commit=False)             # 6
    assert p.last_stable_offset == p.end_offset == 7
    assert p.aborted_transactions(0, 7) == [AbortedTxn(2, 3, 6, 7)]
    assert p.aborted_transactions(7, 10) == []
    assert p.aborted_transactions(0, 3) == []      # starts at 3: nothing before it
    p.close()


def test_marker_fences_older_epochs() -> None:
    p = open_partition(None)
    send(p, 5, 1, epoch=0)
    p.write_marker(5, 1, commit=False)            # the coordinator bumped the epoch
    with pytest.raises(InvalidProducerEpochError):
        send(p, 5, 1, epoch=0, seq=1)
    assert send(p, 5, 1, epoch=1, seq=0) == 2     # the new epoch starts at sequence 0
    with pytest.raises(InvalidProducerEpochError):
        p.write_marker(5, 0, commit=True)


def test_non_transactional_partition_writes_no_transaction_files(tmp_path: Path) -> None:
    p = open_partition(str(tmp_path / "t-0"))
    p.append([(b"a", b"1")])
    send(p, 1, 1, txn=False)
    p.close()
    assert not [n for n in os.listdir(tmp_path / "t-0")
                if n.endswith(".txnindex") or n in ("transactional", "txn-checkpoint")]
    assert open_partition(str(tmp_path / "t-0"), clean=True)._txns is None


def test_index_file_bytes(tmp_path: Path) -> None:
    d = str(tmp_path / "t-0")
    p = open_partition(d)
    send(p, 0x0102030405060708, 2)
    p.write_marker(0x0102030405060708, 0, commit=False)
    data = (tmp_path / "t-0" / "00000000000000000000.txnindex").read_bytes()
    assert data == (b"\x00\x00" + bytes.fromhex("0102030405060708") + (0).to_bytes(8, "big")
                    + (2).to_bytes(8, "big") + (3).to_bytes(8, "big"))
    p.close()
    assert (tmp_path / "t-0" / "txn-checkpoint").read_bytes() == b"3"
    assert (tmp_path / "t-0" / "transactional").exists()


def test_state_survives_clean_reopen_and_crash(tmp_path: Path) -> None:
    d = str(tmp_path / "t-0")
    p = open_partition(d)
    send(p, 1, 2)
    p.write_marker(1, 0, commit=False)            # 0-1 aborted, marker 2
    send(p, 2, 1)                                  # 3
    p.write_marker(2, 0, commit=True)              # 4
    p.close()
    p = open_partition(d, clean=True)
    assert p.aborted_transactions(0, 10) == [AbortedTxn(1, 0, 2, 3)]
    assert p.last_stable_offset == 5
    send(p, 3, 1)                                  # 5: open at the crash
    send(p, 4, 1)                                  # 6
    p.write_marker(4, 0, commit=False)             # 7
    abandon(p._log)
    os.remove(os.path.join(d, "00000000000000000000.txnindex"))  # as if the write was lost
    p = open_partition(d)
    assert p.open_transactions() == {3: 5}
    assert p.last_stable_offset == 5
    # Entries below the checkpoint come from the file (gone here), those after it from
    # the log: the scan started at the checkpoint, 5.
    assert p.aborted_transactions(0, 10) == [AbortedTxn(4, 6, 7, 5)]
    p.write_marker(3, 0, commit=False)
    assert p.last_stable_offset == p.end_offset == 9
    p.close()


def test_crash_without_checkpoint_scans_from_the_start(tmp_path: Path) -> None:
    d = str(tmp_path / "t-0")
    p = open_partition(d)
    send(p, 1, 3)
    p.write_marker(1, 0, commit=False)
    send(p, 2, 1)
    abandon(p._log)
    p = open_partition(d)
    assert p.open_transactions() == {2: 4}
    assert p.aborted_transactions(0, 10) == [AbortedTxn(1, 0, 3, 4)]


def test_torn_index_entry_is_dropped_and_bad_one_refused(tmp_path: Path) -> None:
    d = str(tmp_path / "t-0")
    p = open_partition(d)
    send(p, 1, 1)
    p.write_marker(1, 0, commit=False)
    p.close()
    path = os.path.join(d, "00000000000000000000.txnindex")
    with open(path, "ab") as f:
        f.write(b"\x00" * 10)
    p = open_partition(d, clean=True)
    assert p.aborted_transactions(0, 5) == [AbortedTxn(1, 0, 1, 2)]
    assert any("torn" in w for w in p._txns.warnings)
    p.close()
    with open(path, "wb") as f:
        f.write(b"\x00\x07" + b"\x00" * 32)
    os.remove(os.path.join(d, "txn-checkpoint"))
    with open(os.path.join(d, "txn-checkpoint"), "wb") as f:
        f.write(b"2")
    with pytest.raises(CorruptLogError, match="txnindex"):
        open_partition(d, clean=True)


def test_entries_follow_segments_through_retention_and_truncation(tmp_path: Path) -> None:
    d = str(tmp_path / "t-0")
    p = open_partition(d)
    send(p, 1, 1)
    p.write_marker(1, 0, commit=False)             # 0, marker 1 in segment 0
    p.roll()
    send(p, 2, 1)
    p.write_marker(2, 0, commit=False)             # 2, marker 3 in segment 2
    assert sorted(n for n in os.listdir(d) if n.endswith(".txnindex")) == [
        "00000000000000000000.txnindex", "00000000000000000002.txnindex"]
    p.roll()
    p.delete_before(2)
    assert p.aborted_transactions(0, 10) == [AbortedTxn(2, 2, 3, 4)]
    assert [n for n in os.listdir(d) if n.endswith(".txnindex")] == [
        "00000000000000000002.txnindex"]
    send(p, 3, 1)                                  # 4
    p.truncate_to(3)                               # the marker of pid 2 is gone
    assert p.open_transactions() == {2: 2}
    assert p.aborted_transactions(0, 10) == []
    p.write_marker(2, 0, commit=True)
    assert p.last_stable_offset == p.end_offset
    p.close()


def test_directory_written_before_transactions_reads_unchanged(tmp_path: Path) -> None:
    """tests/data/pre_transactions_log was written by the code before transactions (3
    records to t-0, a group commit): it opens with no transaction state, LSO = end."""
    copy = tmp_path / "log"
    shutil.copytree(Path(__file__).parents[2] / "data" / "pre_transactions_log", copy)
    p = open_partition(str(copy / "t-0"), clean=True)
    assert p._txns is None
    assert p.last_stable_offset == p.end_offset == 3
    assert p.aborted_transactions(0, 3) == []
    assert [r.value for r in p.read(0)] == [b"v0", b"v1", b"v2"]
    p.close()
    # No transaction file was written (reader-view is every writer's, for readers in
    # other processes: storage/reader_view.py).
    assert sorted(set(os.listdir(copy / "t-0")) - {"reader-view"}) == [
        "00000000000000000000.index", "00000000000000000000.log"]


def test_a_failed_index_append_is_rebuilt_not_lost(tmp_path: Path) -> None:
    """The marker is in the log when its .txnindex append fails (a full disk): the
    marker's caller sees no error, and the entry survives a clean close and reopen
    (no checkpoint is written while the file lags, so the next open rescans)."""
    import errno

    from eventlog.testing import FaultyFiles

    d = str(tmp_path / "t-0")
    files = FaultyFiles()
    log = PartitionLog(d, TopicConfig(), now_ms=0, files=files)
    p = Partition("t", 0, log, clock=ManualClock(1000))
    send(p, 1, 2)
    files.fail("pwrite", errno.ENOSPC, path=".txnindex")
    p.write_marker(1, 0, commit=False)  # no error: the index is derived data
    files.clear()
    assert p.aborted_transactions(0, 10) == [AbortedTxn(1, 0, 2, 3)]
    assert os.path.getsize(os.path.join(d, "00000000000000000000.txnindex")) == 0
    p.close()
    assert not os.path.exists(os.path.join(d, "txn-checkpoint"))
    p = open_partition(d, clean=True)
    assert p.aborted_transactions(0, 10) == [AbortedTxn(1, 0, 2, 3)]
    p.close()  # the open rewrote the file: a checkpoint again
    assert os.path.exists(os.path.join(d, "txn-checkpoint"))
    assert os.path.getsize(os.path.join(d, "00000000000000000000.txnindex")) == 34


def test_aborted_between_finds_every_entry_a_range_holds_with_long_and_short_spans() -> None:
    """Producers whose transactions interleave, one spanning many others: for every
    range, aborted_between returns exactly the entries a scan of all of them would."""
    p = open_partition(None)
    seqs = {1: 0, 2: 0, 3: 0}

    def record(pid: int) -> None:
        send(p, pid, seq=seqs[pid])
        seqs[pid] += 1

    record(1)  # producer 1 stays open across everything below: the longest span
    for round_ in range(12):
        record(2)
        record(3)
        p.write_marker(2, 0, commit=round_ % 3 == 0)
        record(3)
        p.write_marker(3, 0, commit=round_ % 2 == 0)
    p.write_marker(1, 0, commit=False)
    entries = list(p._txns.aborted)
    assert any(e.producer_id == 1 for e in entries) and len(entries) > 10
    end = p.end_offset
    for start in range(end + 1):
        for stop in range(start, end + 2):
            expected = [e for e in entries if e.last_offset >= start and e.first_offset < stop]
            assert p._txns.aborted_between(start, stop) == expected, (start, stop)
    p.close()


def test_an_abort_appends_its_entry_in_place_not_by_copying_the_index() -> None:
    """Recording an aborted transaction is amortised O(1): the published entries grow
    in place (a tuple rebuilt per abort made n aborts cost O(n^2)), and lookups over
    them still find exactly what a scan would."""
    p = open_partition(None)
    for seq in range(3):
        send(p, 1, 2, seq=2 * seq)
        p.write_marker(1, 0, commit=False)
    txns = p._txns
    index = txns._index
    entries, offsets = index
    send(p, 1, 2, seq=6)
    p.write_marker(1, 0, commit=False)
    assert txns._index is index and index[0] is entries and index[1] is offsets
    assert len(entries) == len(offsets) == 4
    assert txns.aborted_between(0, p.end_offset) == list(txns.aborted)
    assert txns.aborted_between(9, 10) == [AbortedTxn(1, 9, 11, 12)]
    p.close()


def test_an_aborts_entry_is_visible_before_the_lso_moves_past_its_transaction() -> None:
    """A lock-free reader reads the LSO, then the records below it, then the entries
    that hide aborted ones: the entry must be published first, or a reader between
    the two steps returns the aborted records as committed data."""
    seen: list[tuple[int, list[AbortedTxn]]] = []

    class Watched(txn_index.PartitionTxns):
        @property  # type: ignore[override]
        def _first_open(self) -> int:
            return self.__dict__["_first"]

        @_first_open.setter
        def _first_open(self, value: int) -> None:
            self.__dict__["_first"] = value
            lso = self.last_stable_offset(1 << 40)  # what a reader sees as the LSO moves
            seen.append((lso, self.aborted_between(0, lso)))

    p = open_partition(None)
    send(p, 7, 3)
    txns = p._txns
    txns.__dict__["_first"] = txns.__dict__.pop("_first_open")
    txns.__class__ = Watched
    send(p, 8, 1)  # a second open transaction, later: the LSO moves to it
    p.write_marker(7, 0, commit=False)
    p.write_marker(8, 0, commit=False)
    assert seen, "the LSO never moved"
    for lso, entries in seen:
        if lso > 0:  # past producer 7's first record: its abort must be known
            assert AbortedTxn(7, 0, 4, 3) in entries, (lso, entries)
        if lso > 3:
            assert any(e.producer_id == 8 for e in entries), (lso, entries)
    p.close()
