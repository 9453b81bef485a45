"""Compaction and transactions (Kafka's LogCleaner): aborted data goes, markers stay until
no data of their transaction remains and their delete horizon has passed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.crashsim import abandon

import eventlog
from budget import examples
from eventlog.broker.partition import Partition
from eventlog.config import TopicConfig
from eventlog.records import TopicPartition as TP
from eventlog.storage import batch as codec
from eventlog.storage.compaction import TransactionFilter, clean_batch, cleanable_range
from eventlog.storage.partition_log import PartitionLog
from eventlog.storage.txn_index import AbortedTxn
from eventlog.testing.clock import ManualClock

TXN = codec.attr_transactional
HORIZON_MS = 1000
COMPACT = {"cleanup_policy": "compact", "delete_retention_ms": HORIZON_MS,
           "min_cleanable_dirty_ratio": 0.01}


@pytest.fixture(params=["memory", "file"])
def directory(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    return None if request.param == "memory" else str(tmp_path / "t-0")


def open_partition(directory: str | None, clock: ManualClock, *, clean: bool = False
                   ) -> Partition:
    log = PartitionLog(directory, TopicConfig(**COMPACT), now_ms=clock.time_ms(),
                       clean_shutdown=clean)
    return Partition("t", 0, log, clock=clock)


def put(p: Partition, key: bytes, value: bytes | None, pid: int = -1, *, seq: int = 0) -> int:
    attributes = TXN if pid >= 0 else 0
    return p.append_columns([key], [value], None, [1_000_000], attributes=attributes,
                            producer_id=pid, producer_epoch=0 if pid >= 0 else -1,
                            base_sequence=seq if pid >= 0 else -1).base_offset


def contents(p: Partition) -> list[tuple[int, bytes | None, bool]]:
    """(offset, key, is a marker) of every record left, as read_uncommitted reads."""
    out = []
    for header, cols in p.read_batches(p.start_offset, 10_000):
        control = bool(header.attributes & codec.attr_control)
        out.extend((o, k, control) for o, k in zip(cols.offsets, cols.keys))
    return out


def compact(p: Partition, clock: ManualClock) -> int:
    """Append a duplicate so the cleaning is due, roll, compact; records removed."""
    put(p, b"filler", b"x")
    p.roll()
    stats = p.compact(clock.time_ms())
    assert stats.cleaned, stats.reason
    p.check()
    return stats.records_removed


def test_aborted_data_goes_and_markers_stay_until_their_horizon(directory: str | None) -> None:
    clock = ManualClock(1_000_000)
    p = open_partition(directory, clock)
    put(p, b"a", b"committed", pid=1)               # 0
    p.write_marker(1, 0, commit=True)               # 1
    put(p, b"a", b"aborted", pid=2)                 # 2: must not shadow a@0
    put(p, b"b", b"aborted", pid=2, seq=1)          # 3
    p.write_marker(2, 0, commit=False)              # 4
    put(p, b"c", b"plain")                          # 5
    put(p, b"d", b"later", pid=2, seq=2)            # 6: pid 2's last batches come later,
    p.write_marker(2, 0, commit=True)               # 7: so its abort marker is not kept
    compact(p, clock)                               # for its epoch
    left = contents(p)
    assert (0, b"a", False) in left                 # the aborted a@2 did not remove it
    assert not {2, 3} & {o for o, _k, _m in left}   # the aborted records are gone
    assert (1, codec.CONTROL_KEY.pack(0, 1), True) in left
    assert (4, codec.CONTROL_KEY.pack(0, 0), True) in left  # data seen this pass: kept
    assert p.aborted_transactions(0, p.end_offset) == [AbortedTxn(2, 2, 4, 5)]
    compact(p, clock)                               # no data of it left: stamped
    assert 4 in {o for o, _k, _m in contents(p)}
    clock.advance(HORIZON_MS - 1)
    compact(p, clock)
    assert 4 in {o for o, _k, _m in contents(p)}    # before its delete horizon
    clock.advance(1)
    compact(p, clock)
    left = contents(p)
    assert 4 not in {o for o, _k, _m in left}       # removed at its horizon
    assert p.aborted_transactions(0, p.end_offset) == []  # and forgotten
    assert {(0, b"a"), (5, b"c"), (6, b"d")} <= {(o, k) for o, k, _m in left}
    assert (1, codec.CONTROL_KEY.pack(0, 1), True) in left  # a@0 is still there
    if directory is not None:
        assert not [n for n in os.listdir(directory) if n.endswith(".txnindex")]
    p.close()


def test_commit_marker_goes_once_its_records_were_compacted_away() -> None:
    clock = ManualClock(1_000_000)
    p = open_partition(None, clock)
    put(p, b"k", b"v1", pid=1)                      # 0
    p.write_marker(1, 0, commit=True)               # 1
    put(p, b"k", b"v2", pid=3)                      # 2: supersedes k@0
    p.write_marker(3, 0, commit=True)               # 3: pid 3's last batch: kept
    put(p, b"other", b"x", pid=1, seq=1)            # 4: pid 1 goes on
    p.write_marker(1, 0, commit=True)               # 5
    compact(p, clock)                               # k@0 goes; marker 1 saw it: kept
    assert [o for o, _k, _m in contents(p)][:2] == [1, 2]
    compact(p, clock)                               # nothing of its txn left: stamped
    clock.advance(HORIZON_MS)
    compact(p, clock)
    offsets = [o for o, _k, _m in contents(p)]
    assert 1 not in offsets and {2, 3, 4, 5} <= set(offsets)


def test_nothing_at_or_past_the_last_stable_offset_is_cleaned() -> None:
    clock = ManualClock(1_000_000)
    p = open_partition(None, clock)
    put(p, b"k", b"old")                            # 0
    put(p, b"k", b"open", pid=7)                    # 1: an open transaction
    p.roll()
    put(p, b"k", b"new")                            # 2
    p.roll()
    stats = p.compact(clock.time_ms())
    assert [o for o, _k, _m in contents(p)][:2] == [0, 1]  # k@0 must survive an abort
    assert stats.first_dirty == 0 and stats.records_removed == 0
    p.write_marker(7, 0, commit=False)
    compact(p, clock)
    left = [(o, k) for o, k, m in contents(p) if not m]
    assert (0, b"k") not in left and (1, b"k") not in left and (2, b"k") in left


def test_range_planning_stops_at_the_segment_holding_the_lso() -> None:
    from eventlog.storage.compaction import SegmentInfo
    segments = [SegmentInfo(0, 10, 100, 0, 0), SegmentInfo(10, 20, 100, 0, 0),
                SegmentInfo(20, 30, 100, 0, 0), SegmentInfo(30, 30, 0, -1, -1)]
    plan = cleanable_range(segments, checkpoint=0, log_start_offset=0, now_ms=0,
                           min_compaction_lag_ms=0, last_stable_offset=15)
    assert plan.first_uncleanable == 10
    plan = cleanable_range(segments, checkpoint=0, log_start_offset=0, now_ms=0,
                           min_compaction_lag_ms=0, last_stable_offset=30)
    assert plan.first_uncleanable == 30


def _header(base: int, pid: int, *, control: bool = False, txn: bool = True):
    attributes = (TXN if txn else 0) | (codec.attr_control if control else 0)
    return codec.encode_batch_with_header(base, [0], [b"k"], [b"v"], attributes=attributes,
                                          producer_id=pid)[1]


def test_a_stale_index_entry_never_aborts_a_later_transaction() -> None:
    """An entry whose marker the cleaner removed (a crash before the index file was
    rewritten) must not make the producer's later batches look aborted."""
    filt = TransactionFilter([AbortedTxn(1, 0, 2, 3)])
    assert filt.data_batch(_header(0, 1))           # inside the aborted range
    assert not filt.data_batch(_header(5, 1))       # past its (missing) marker
    assert not filt.marker(_header(6, 1, control=True), codec.control_commit)


def test_marker_kept_whole_when_it_is_its_producers_last_batch() -> None:
    data = codec.encode_marker(4, 0, 9, 0, commit=False)
    header = codec.decode_header(data)
    cols = codec.decode_columns(header, data[codec.crc_start:])
    stamped, _ = clean_batch(header, data, cols, latest={}, map_end=10, now_ms=100,
                             delete_retention_ms=50, keep_empty=True, marker_removable=True)
    assert stamped is not None and codec.delete_horizon_ms(codec.decode_header(stamped)) == 150
    again = codec.decode_header(stamped)
    cols = codec.decode_columns(again, stamped[codec.crc_start:])
    kept, _ = clean_batch(again, stamped, cols, latest={}, map_end=10, now_ms=150,
                          delete_retention_ms=50, keep_empty=True, marker_removable=True)
    assert kept == stamped  # its producer's last batch: the epoch stays readable
    gone, removed = clean_batch(again, stamped, cols, latest={}, map_end=10, now_ms=150,
                                delete_retention_ms=50, keep_empty=False, marker_removable=True)
    assert gone is None and removed == 1


def test_read_committed_and_uncommitted_consumers_after_compaction(tmp_path: Path) -> None:
    clock = ManualClock(1_000_000)
    with eventlog.open(str(tmp_path / "data"), clock=clock) as log:
        log.create_topic("c", 1, **COMPACT)
        producer = eventlog.Producer(log, transactional_id="tx", linger_ms=0)
        producer.init_transactions()
        producer.begin_transaction()
        producer.send("c", b"kept", key=b"a")
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send("c", b"dropped", key=b"a")
        producer.send("c", b"dropped", key=b"b")
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send("c", b"later", key=b"c")
        producer.commit_transaction()
        partition = log.partition("c", 0)
        partition.roll()
        assert log.run_compaction() >= 2

        def values(isolation: str) -> list[tuple[bytes, bytes]]:
            consumer = log.consumer(isolation_level=isolation, auto_offset_reset="earliest")
            consumer.assign([TP("c", 0)])
            out = []
            while batch := consumer.poll():
                out.extend((r.key, r.value) for r in batch)
            consumer.close()
            return out

        expected = [(b"a", b"kept"), (b"c", b"later")]
        assert values("read_committed") == expected
        assert values("read_uncommitted") == expected  # the aborted records are gone
        producer.close()


def test_compaction_of_aborted_data_survives_kill_and_reopen(tmp_path: Path) -> None:
    """After a cleaning removed an abort marker (the swap done, the index file not yet
    rewritten: a kill at that moment), reopening keeps every committed record and the
    producer's later transactions stay readable."""
    d = str(tmp_path / "t-0")
    clock = ManualClock(1_000_000)
    p = open_partition(d, clock)
    put(p, b"a", b"committed", pid=1)
    p.write_marker(1, 0, commit=True)
    put(p, b"a", b"aborted", pid=2)
    p.write_marker(2, 0, commit=False)               # 3
    put(p, b"z", b"z", pid=2, seq=1)                  # 4
    p.write_marker(2, 0, commit=True)                 # 5
    compact(p, clock)
    compact(p, clock)
    p.close()                                        # writes txn-checkpoint
    p = open_partition(d, clock, clean=True)
    clock.advance(HORIZON_MS)
    index_files = {n: Path(d, n).read_bytes() for n in os.listdir(d) if n.endswith(".txnindex")}
    compact(p, clock)
    assert 3 not in {o for o, _k, _m in contents(p)}
    abandon(p._log)
    for name, data in index_files.items():  # as if killed before the index was rewritten
        Path(d, name).write_bytes(data)
    p = open_partition(d, clock)
    stale = AbortedTxn(2, 2, 3, 4)
    assert p.aborted_transactions(0, p.end_offset) == [stale]  # its marker is gone
    assert p.open_transactions() == {}
    put(p, b"y", b"y", pid=2, seq=2)
    p.write_marker(2, 0, commit=True)
    compact(p, clock)
    left = {(o, k) for o, k, m in contents(p) if not m}
    assert (0, b"a") in left and (4, b"z") in left
    assert any(k == b"y" for _o, k in left)
    p.close()


# ---------------------------------------------------------------------- a model check

_keys = st.sampled_from([b"a", b"b", b"c"])
_ops = st.lists(st.one_of(
    st.tuples(st.just("data"), st.integers(1, 3), _keys),
    st.tuples(st.just("end"), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("plain"), _keys),
    st.tuples(st.just("roll")),
    st.tuples(st.just("compact"), st.sampled_from([0, HORIZON_MS])),
), max_size=40)


def _committed_view(p: Partition) -> dict[int, bytes]:
    """offset -> key of every record a read_committed reader returns (below the LSO)."""
    stable = p.last_stable_offset
    aborted = p.aborted_transactions(p.start_offset, stable)
    out = {}
    for header, cols in p.read_batches(p.start_offset, 10_000):
        if header.base_offset >= stable:
            break
        if header.attributes & codec.attr_control:
            continue
        for offset, key in zip(cols.offsets, cols.keys):
            if offset >= stable:
                break
            if header.attributes & TXN and any(
                    e.producer_id == header.producer_id
                    and e.first_offset <= offset <= e.last_offset for e in aborted):
                continue
            out[offset] = key
    return out


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ops)
def test_compaction_keeps_what_read_committed_readers_must_see(ops: list[tuple]) -> None:
    """Whatever the interleaving of transactions, aborts and cleanings: every key's
    latest committed record stays where it was, nothing a read_committed reader could
    not see appears, and once everything is decided and cleaned no aborted record is
    left for a read_uncommitted reader either."""
    clock = ManualClock(1_000_000)
    p = open_partition(None, clock)
    open_txns: set[int] = set()
    seq: dict[int, int] = {}
    committed: dict[int, bytes] = {}  # offset -> key, what read_committed may ever see
    pending: dict[int, list[tuple[int, bytes]]] = {}

    def cleaning() -> None:
        before = _committed_view(p)
        p.roll()
        p.compact(clock.time_ms())
        p.check()
        after = _committed_view(p)
        assert set(after.items()) <= set(before.items()) <= set(committed.items())
        latest = {}
        for offset, key in sorted(before.items()):
            latest[key] = offset
        for key, offset in latest.items():
            assert after.get(offset) == key, (key, offset)

    for op in ops:
        if op[0] == "data":
            _, pid, key = op
            offset = put(p, key, b"v", pid=pid, seq=seq.get(pid, 0))
            seq[pid] = seq.get(pid, 0) + 1
            open_txns.add(pid)
            pending.setdefault(pid, []).append((offset, key))
        elif op[0] == "end" and op[1] in open_txns:
            _, pid, commit = op
            p.write_marker(pid, 0, commit=commit)
            open_txns.discard(pid)
            records = pending.pop(pid, [])
            if commit:
                committed.update(records)
        elif op[0] == "plain":
            committed[put(p, op[1], b"v")] = op[1]
        elif op[0] == "roll":
            p.roll()
        elif op[0] == "compact":
            clock.advance(op[1])
            cleaning()
    for pid in sorted(open_txns):
        p.write_marker(pid, 0, commit=True)
        committed.update(pending.pop(pid, []))
    for advance in (0, 0, HORIZON_MS):
        clock.advance(advance)
        cleaning()
    active = p._log.active_segment.base_offset
    for header, cols in p.read_batches(p.start_offset, 10_000):
        if not header.attributes & codec.attr_control:
            for offset, key in zip(cols.offsets, cols.keys):
                assert offset >= active or committed.get(offset) == key, (offset, key)
