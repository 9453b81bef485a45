"""Producer: a bad field is refused at send() before it joins a batch, and a failure
inside the flusher fails that batch's futures (wrapped in an eventlog error) and never
kills the flusher thread or leaves a future unresolved."""

from __future__ import annotations

import logging
import struct

import pytest

import eventlog
from eventlog.broker.partition import Partition
from eventlog.errors import EventLogError, InvalidRecordError, StorageError
from eventlog.testing import ManualClock

# Every producer a test makes must pass Producer.check() once the test is over.
pytestmark = pytest.mark.usefixtures("checked_producers")

BAD_TIMESTAMPS = [2**63, 2**64, -1, -(2**63), 1.5, "0", True, b"1"]


@pytest.fixture
def log(clock: ManualClock):
    with eventlog.open(clock=clock) as log:
        log.create_topic("t")
        yield log


def values(log) -> list[bytes]:
    p = log.partition("t", 0)
    return [r.value for r in p.read(0, 1000)] if p.end_offset else []


@pytest.mark.parametrize("timestamp", BAD_TIMESTAMPS, ids=repr)
@pytest.mark.parametrize("linger_ms", [0, 5])
def test_a_bad_timestamp_is_refused_at_send_and_the_batch_survives(log, clock, timestamp,
                                                                   linger_ms) -> None:
    producer = log.producer(linger_ms=linger_ms)
    before = producer.send("t", b"before")
    with pytest.raises(InvalidRecordError, match=r"timestamp_ms must be an int >= 0 and < 2\*\*63"):
        producer.send("t", b"bad", timestamp_ms=timestamp)
    with pytest.raises(InvalidRecordError, match="timestamp_ms"):  # with headers: other path
        producer.send("t", b"bad", timestamp_ms=timestamp, headers=[("h", b"x")])
    after = producer.send("t", b"after", timestamp_ms=2**63 - 1)  # the largest allowed
    clock.advance(5)
    assert before.result(timeout=30).offset == 0
    assert after.result(timeout=30).offset == 1
    assert after.result().timestamp_ms == 2**63 - 1
    producer.close()
    assert values(log) == [b"before", b"after"]


@pytest.mark.parametrize("timestamp", BAD_TIMESTAMPS, ids=repr)
def test_a_bad_timestamp_is_refused_by_send_batch_and_the_partition(log, timestamp) -> None:
    producer = log.producer()
    with pytest.raises(InvalidRecordError, match="timestamp_ms"):
        producer.send_batch("t", [(b"k", b"v")], timestamp_ms=timestamp)
    p = log.partition("t", 0)
    with pytest.raises(InvalidRecordError, match="timestamp_ms"):
        p.append([(b"k", b"v")], timestamp_ms=timestamp)
    with pytest.raises(InvalidRecordError, match="record 1: timestamp_ms"):
        p.append([(b"k", b"v", None, 0), (b"k", b"v", None, timestamp)])
    assert p.end_offset == 0
    producer.send_batch("t", [(b"k", b"v")], timestamp_ms=2**63 - 1)
    p.append([(b"k", b"v", None, 2**63 - 1)])
    assert [r.timestamp_ms for r in p.read(0, 10)] == [2**63 - 1, 2**63 - 1]


@pytest.mark.parametrize("linger_ms", [0, 5])
def test_a_header_name_that_cannot_be_stored_is_refused_at_send(log, linger_ms) -> None:
    producer = log.producer(linger_ms=linger_ms)
    with pytest.raises(InvalidRecordError, match="not valid Unicode"):
        producer.send("t", b"v", headers=[("\udc80", b"x")])
    with pytest.raises(InvalidRecordError, match="not valid Unicode"):
        producer.send_batch("t", [(b"k", b"v", [("ok", None), ("\udc80", b"x")])])
    producer.send("t", b"v", headers=[("caf\u00e9", b"x")])  # non-ASCII is fine
    producer.close()
    assert values(log) == [b"v"]


def inject_once(monkeypatch, error: Exception) -> list[int]:
    """Make the next append of a lingering batch raise ``error``; returns a list that
    counts the failed calls."""
    real = Partition.append_columns
    calls: list[int] = []

    def failing(self, *args, **kwargs):
        if not calls:
            calls.append(1)
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Partition, "append_columns", failing)
    return calls


@pytest.mark.parametrize("error, wrapped", [
    (struct.error("int too large to convert"), EventLogError),
    (TypeError("unexpected"), EventLogError),
    (OSError(5, "Input/output error"), StorageError),
], ids=["struct", "type", "os"])
def test_a_failure_in_the_flusher_fails_the_batch_and_the_thread_lives_on(
    log, clock, monkeypatch, caplog, error, wrapped
) -> None:
    producer = log.producer(linger_ms=5)
    calls = inject_once(monkeypatch, error)
    first = [producer.send("t", b"%d" % i) for i in range(3)]
    with caplog.at_level(logging.ERROR, logger="eventlog.producer"):
        clock.advance(5)  # the flusher appends the batch: the injected failure
        for future in first:
            exc = future.exception(timeout=30)
            assert isinstance(exc, wrapped) and exc.__cause__ is error
            assert "t-0" in str(exc)
            with pytest.raises(wrapped):
                future.result()
    assert calls == [1]
    assert any("t-0" in r.getMessage() for r in caplog.records)
    flusher = producer._state.flusher
    assert flusher is not None and flusher.is_alive()
    second = [producer.send("t", b"again-%d" % i) for i in range(2)]
    clock.advance(5)  # delivered by the same flusher thread, not by flush()
    assert [f.result(timeout=30).offset for f in second] == [0, 1]
    assert producer._state.flusher is flusher and flusher.is_alive()
    producer.close()
    assert values(log) == [b"again-0", b"again-1"]


def test_flush_and_close_resolve_a_batch_whose_append_failed(log, monkeypatch) -> None:
    """flush() and close() drain in the caller's thread: they return, and the futures
    are failed, instead of raising the raw error or hanging."""
    producer = log.producer(linger_ms=60_000)
    inject_once(monkeypatch, struct.error("boom"))
    futures = [producer.send("t", b"%d" % i) for i in range(3)]
    producer.flush()
    assert all(isinstance(f.exception(timeout=30), EventLogError) for f in futures)
    late = producer.send("t", b"late")
    producer.close()
    assert late.result(timeout=30).offset == 0


def test_a_failure_appending_one_by_one_fails_only_that_record(log, clock,
                                                               monkeypatch) -> None:
    """A batch refused as invalid is appended record by record; an unexpected error
    there fails that record's future only."""
    producer = log.producer(linger_ms=5)
    real_columns = Partition.append_columns
    calls: list[int] = []

    def refuse_the_batch_and_fail_the_second_record(self, keys, *args, **kwargs):
        if len(keys) > 1:
            raise InvalidRecordError("injected: one record is bad")
        calls.append(1)  # then each record comes alone, as a batch of one
        if len(calls) == 2:
            raise struct.error("injected")
        return real_columns(self, keys, *args, **kwargs)

    monkeypatch.setattr(Partition, "append_columns", refuse_the_batch_and_fail_the_second_record)
    futures = [producer.send("t", b"%d" % i) for i in range(3)]
    clock.advance(5)
    outcomes = [f.exception(timeout=30) for f in futures]
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], EventLogError)
    assert isinstance(outcomes[1].__cause__, struct.error)
    assert [f.result().offset for f in (futures[0], futures[2])] == [0, 1]
    assert calls == [1, 1, 1]
    monkeypatch.setattr(Partition, "append_columns", real_columns)
    producer.close()
    assert values(log) == [b"0", b"2"]


@pytest.mark.parametrize("linger_ms", [0, 5])
def test_a_transactional_batch_is_retried_after_a_storage_error(log, monkeypatch,
                                                                linger_ms) -> None:
    """The transactional producer's retry hook takes the record count of a batch, as the
    producer's own does (it used to fail the retry of a batch with a TypeError)."""
    producer = eventlog.Producer(log, transactional_id="tx", retry_backoff_ms=0,
                                 linger_ms=linger_ms)
    producer.init_transactions()
    producer.begin_transaction()
    calls = inject_once(monkeypatch, StorageError("disk full, once"))
    batch = producer.send_batch("t", [(b"k", b"a"), (b"k", b"b")])
    producer.commit_transaction()
    assert calls == [1]
    assert [md.offset for md in batch] == [0, 1]
    assert producer.metrics()["record-retry-total"] == 2
    producer.close()
    assert values(log)[:2] == [b"a", b"b"]  # then the commit marker
    assert log.partition("t", 0).end_offset == 3
