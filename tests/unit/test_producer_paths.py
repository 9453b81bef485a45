"""Producer: the append paths agree, and Producer.check() finds a broken state.

``send()`` appends through one of two paths, ``linger_ms=0`` (a batch of one record,
appended before it returns) and the accumulator (a lingering batch per partition);
``send_batch`` is a third. Fed the same records, all of them must store the same
records at the same offsets and return the same metadata.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventlog
from eventlog.partitioning import DefaultPartitioner, murmur2
from eventlog.testing import ManualClock
from locks import ContentionLock

pytestmark = pytest.mark.usefixtures("checked_producers")

PARTITIONS = 3

keys = st.none() | st.binary(max_size=12)
values = st.none() | st.binary(max_size=40)
headers = st.none() | st.lists(
    st.tuples(st.text(max_size=4), st.none() | st.binary(max_size=6)), min_size=1, max_size=2)
records = st.lists(
    st.fixed_dictionaries({
        "key": keys,
        "value": values,
        "headers": headers,
        "callback": st.booleans(),
        "partition": st.none() | st.integers(0, PARTITIONS - 1),
        "timestamp_ms": st.integers(0, 2**40),
    }),
    min_size=1,
    max_size=40,
)


def stored(log: Any) -> list[list[tuple]]:
    """Every record of topic "t", per partition, as read back from the log."""
    out = []
    for p in log.topic("t").partitions:
        rows = p.read(0, 10_000) if p.end_offset else []
        out.append([(r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp_ms)
                    for r in rows])
    return out


def run(sends: list[dict], **config: Any) -> tuple[list, list, list]:
    """Send ``sends`` one ``send()`` each; (metadata, callback outcomes, stored records)."""
    with eventlog.open(clock=ManualClock()) as log:
        log.create_topic("t", partitions=PARTITIONS)
        # The same seed for every path: keyless records draw the same sticky partitions.
        partitioner = DefaultPartitioner(batch_size=config.pop("sticky_bytes", 64),
                                         rng=random.Random(7))
        producer = log.producer(partitioner=partitioner, **config)
        delivered: list[tuple] = []
        futures = []
        for i, r in enumerate(sends):
            callback = None
            if r["callback"]:
                def callback(err: Any, md: Any, i: int = i) -> None:
                    delivered.append((i, err, md))
            futures.append(producer.send(
                "t", r["value"], key=r["key"], partition=r["partition"],
                timestamp_ms=r["timestamp_ms"], headers=r["headers"], on_delivery=callback,
            ))
        producer.flush()
        metadata = [f.result(timeout=0) for f in futures]
        producer.check()
        producer.close()
        return metadata, sorted(delivered, key=lambda d: d[0]), stored(log)


@given(records)
def test_linger_zero_and_the_accumulator_store_the_same_records(sends: list[dict]) -> None:
    at_once = run(sends, linger_ms=0)
    lingering = run(sends, linger_ms=60_000, batch_size=128)  # drains as batches fill
    assert lingering == at_once
    metadata = at_once[0]
    for r, md in zip(sends, metadata):
        assert (md.serialized_key_size, md.serialized_value_size) == (
            -1 if r["key"] is None else len(r["key"]),
            -1 if r["value"] is None else len(r["value"]))
        if r["partition"] is not None:
            assert md.partition == r["partition"]
        elif r["key"] is not None:  # send()'s inlined key hash is murmur2's
            assert md.partition == (murmur2(r["key"]) & 0x7FFFFFFF) % PARTITIONS
    assert [d[0] for d in at_once[1]] == [i for i, r in enumerate(sends) if r["callback"]]
    assert all(err is None and md == metadata[i] for i, err, md in at_once[1])


@given(st.lists(st.tuples(st.binary(max_size=12), values), min_size=1, max_size=40),
       st.integers(0, 2**40))
def test_send_batch_stores_what_send_stores(pairs: list[tuple], timestamp_ms: int) -> None:
    sends = [{"key": k, "value": v, "headers": None, "callback": False, "partition": None,
              "timestamp_ms": timestamp_ms} for k, v in pairs]
    one_by_one = run(sends, linger_ms=5)
    with eventlog.open(clock=ManualClock()) as log:
        log.create_topic("t", partitions=PARTITIONS)
        producer = log.producer()
        batch = producer.send_batch("t", pairs, timestamp_ms=timestamp_ms)
        producer.check()
        producer.close()
        assert list(batch) == one_by_one[0]
        assert stored(log) == one_by_one[2]


# ---------------------------------------------------------------------- Producer.check()


@pytest.fixture
def held(log: Any) -> tuple[Any, Any]:
    """A producer holding a lingering batch of two records, and that batch's queue."""
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000)
    producer.send("t", b"a", key=b"k")
    producer.send("t", b"b", headers=[("h", b"x")])
    producer.check()
    (q,) = producer._state.queues.values()
    return producer, q


@pytest.fixture
def log(clock: ManualClock) -> Any:
    with eventlog.open(clock=clock) as log:
        yield log


def test_check_finds_a_byte_count_out_of_step(held) -> None:
    producer, q = held
    q.bytes += 1
    with pytest.raises(AssertionError):
        producer.check()
    q.bytes -= 1
    producer.check()


def test_check_finds_columns_out_of_step(held) -> None:
    producer, q = held
    q.values.append(b"stray")
    with pytest.raises(AssertionError, match="columns out of step"):
        producer.check()
    q.values.pop()
    last = q.headers.pop()
    with pytest.raises(AssertionError, match="headers out of step"):
        producer.check()
    q.headers.append(last)
    producer.check()


def test_records_after_one_with_headers_keep_the_header_column_in_step(held) -> None:
    """send() adds plain records to an open batch inline, except to a batch that has a
    header or callback column: those must get their ``()`` / None entries too."""
    producer, q = held
    assert q.room == -1  # the batch has a header column: no inline path
    futures = [producer.send("t", b"c%d" % i, key=b"k") for i in range(3)]
    assert q.headers == [(), (("h", b"x"),), (), (), ()]
    producer.check()
    producer.flush()
    assert [f.result().offset for f in futures] == [2, 3, 4]
    records = q.partition.read(0, 10)
    assert [tuple(r.headers or ()) for r in records] == [(), (("h", b"x"),), (), (), ()]


def test_check_finds_the_inline_path_open_on_a_batch_with_headers(held) -> None:
    producer, q = held
    q.room = q.batch_bytes_max
    with pytest.raises(AssertionError):
        producer.check()
    q.room = -1
    producer.check()


def test_check_finds_a_batch_the_partition_does_not_know_of(held) -> None:
    producer, q = held
    flush = q.partition.lingering.pop(q)
    with pytest.raises(AssertionError, match="lingering registration"):
        producer.check()
    q.partition.lingering[q] = flush
    producer.check()


def test_check_finds_a_sequence_out_of_range(held) -> None:
    producer, q = held
    q.next_sequence = -1  # idempotence is on: sequences start at 0
    with pytest.raises(AssertionError):
        producer.check()
    q.next_sequence = 0
    producer.check()


def test_check_after_close_finds_nothing_held(held) -> None:
    producer, q = held
    producer.close()
    producer.check()
    assert q.keys == [] and producer.metrics()["pending_records"] == 0


# ---------------------------------------------------------------------- shared producers


def test_a_contended_queue_lock_is_taken_once_its_holder_releases_it(monkeypatch) -> None:
    """acquire_contended yields the GIL and retries instead of queueing on the lock;
    it takes the lock as soon as the holder released it, and blocks after its tries."""
    from eventlog.producer import queues

    lock = threading.Lock()
    lock.acquire()
    tries: list[float] = []

    def sleep(seconds: float) -> None:  # the holder releases during the third yield
        tries.append(seconds)
        if len(tries) == 3:
            lock.release()

    monkeypatch.setattr(queues, "_sleep", sleep)
    queues.acquire_contended(lock)
    assert len(tries) == 3 and lock.locked()
    lock.release()


def test_a_lock_held_past_the_yields_is_waited_for(monkeypatch) -> None:
    from eventlog.producer import queues

    calls: list[str] = []

    class Held:
        """A lock whose holder keeps it through every yield."""

        def acquire(self, blocking: bool = True) -> bool:
            calls.append("wait" if blocking else "try")
            return blocking

    monkeypatch.setattr(queues, "_sleep", lambda seconds: calls.append("yield"))
    queues.acquire_contended(Held())
    assert calls == ["yield", "try"] * queues.contended_yields_max + ["wait"]


def test_senders_a_bulk_sender_and_a_reader_share_one_producer() -> None:
    """Every path that takes a queue's two locks, at once from several threads: each
    key's records stay in order, none is lost or doubled, and check() passes."""
    with eventlog.open() as log:
        log.create_topic("t", partitions=2)
        producer = log.producer(linger_ms=1, batch_size=600)  # the flusher and full batches
        per_thread = 3_000
        errors: list[BaseException] = []
        done = threading.Event()

        def sender(tid: int) -> None:
            for i in range(per_thread):
                producer.send("t", b"%d:%d" % (tid, i), key=b"k%d-%d" % (tid, i % 5))

        def bulk(tid: int) -> None:
            for start in range(0, per_thread, 50):
                producer.send_batch("t", [(b"k%d-%d" % (tid, i % 5), b"%d:%d" % (tid, i))
                                          for i in range(start, start + 50)])

        def reader() -> None:
            while not done.is_set():  # each read appends the lingering batches first
                for p in log.topic("t").partitions:
                    p.read(max(0, p.end_offset - 10), 10)
                producer.flush()

        def guarded(fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=guarded, args=(sender, t)) for t in range(3)]
        workers.append(threading.Thread(target=guarded, args=(bulk, 3)))
        watcher = threading.Thread(target=guarded, args=(reader,))
        watcher.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        done.set()
        watcher.join()
        producer.flush()
        assert errors == []
        producer.check()
        seen: dict[bytes, list[int]] = {}
        for p in log.topic("t").partitions:
            for r in p.read(0, 10**6):
                seen.setdefault(r.key, []).append(int(r.value.split(b":")[1]))
        assert sum(map(len, seen.values())) == 4 * per_thread
        for key, numbers in seen.items():
            assert numbers == sorted(set(numbers)), f"order broken for {key!r}"
        producer.close()


def test_flush_waits_for_a_batch_another_thread_took_and_is_appending(held) -> None:
    """A batch the flusher took before flush() was called is still being appended:
    flush() returns only after its records are delivered (it once saw the queue empty
    and returned at once, with their futures unresolved)."""
    producer, q = held
    state = producer._state
    contended = threading.Event()
    q.lock = ContentionLock(contended)
    futures_before = [producer.send("t", b"c", key=b"k")]
    with q.batch_lock:  # what the flusher does: take the batch, keep q.lock
        taken = state.take_batch(q)
    assert not q.keys
    flushed = threading.Event()
    flusher = threading.Thread(target=lambda: (producer.flush(), flushed.set()))
    flusher.start()
    try:
        assert contended.wait(10), "flush() returned without waiting for the append"
        assert not flushed.is_set()
        assert not futures_before[0].done()
    finally:
        state.append_batches(q, [taken])  # the append finishes, q.lock is released
        flusher.join(10)
    assert flushed.is_set()
    assert futures_before[0].result().offset == 2
    producer.check()
