"""Transactions over the wire, with the real clients: confluent-kafka (librdkafka)
and kafka-python's transactional producers and read_committed consumers against
``eventlog.serve``, and the same suite against the reference broker (noida-db), so
it is known to test Kafka's behaviour.

Per client: a committed transaction is visible to read_committed consumers (wire
and, on eventlog, in-process), an aborted one is not (but is to read_uncommitted),
a read_committed consumer stops at an open transaction, a zombie producer of the
same transactional id is fenced, and offsets sent with
``send_offsets_to_transaction`` reach the group only when the transaction commits.
eventlog only: in-process and wire producers of one id fence each other, and
in-process transactions reach wire consumers. Frame-level tests pin the errors: a
transactional batch to a partition not added to the transaction, a producer of an
older epoch, a bad timeout, unknown partitions, unstable offsets.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_clients import Target, target  # noqa: F401 (the fixture)
from wire import call
from wire_clients import ADAPTERS

import eventlog
from eventlog import TopicPartition
from eventlog.group import coordinator_for
from eventlog.server.records import attr_transactional, encode_batch

deadline_s = 30.0


# ---------------------------------------------------------------------------- clients


class Confluent:
    name = "confluent-kafka"

    def __init__(self, bootstrap: str) -> None:
        import confluent_kafka

        self.ck = confluent_kafka
        self.bootstrap = bootstrap
        self.plain = ADAPTERS[self.name][1](bootstrap)  # topics and plain produce

    def producer(self, txn_id: str) -> Any:
        p = self.ck.Producer({"bootstrap.servers": self.bootstrap, "transactional.id": txn_id,
                              "linger.ms": 1})
        p.init_transactions(deadline_s)
        return p

    def send(self, p: Any, topic: str, values: list[bytes], partition: int = 0) -> None:
        for v in values:
            p.produce(topic, value=v, key=v, partition=partition)
        p.flush(deadline_s)

    def commit(self, p: Any) -> None:
        p.commit_transaction(deadline_s)

    def abort(self, p: Any) -> None:
        p.abort_transaction(deadline_s)

    def is_fenced(self, exc: BaseException) -> bool:
        if not isinstance(exc, self.ck.KafkaException):
            return False
        err = exc.args[0]
        return err.fatal() and err.code() in (self.ck.KafkaError._FENCED,
                                              self.ck.KafkaError.PRODUCER_FENCED,
                                              self.ck.KafkaError.INVALID_PRODUCER_EPOCH)

    def consumer(self, topic: str, group: str, isolation: str) -> Any:
        c = self.ck.Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "isolation.level": isolation, "fetch.wait.max.ms": 10,
            "heartbeat.interval.ms": 100, "session.timeout.ms": 6000,
        })
        c.subscribe([topic])
        return c

    def poll(self, c: Any, count: int) -> list[bytes]:
        """Up to ``count`` values, within the deadline; then whatever else arrives
        in a short grace (so a test sees records that should not be there)."""
        got: list[bytes] = []
        end = time.monotonic() + deadline_s
        while len(got) < count and time.monotonic() < end:
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                got.append(m.value())
        for _ in range(5):
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                got.append(m.value())
        return got

    def send_offsets(self, p: Any, c: Any) -> None:
        positions = c.position(c.assignment())
        p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), deadline_s)

    def committed(self, c: Any, topic: str) -> int:
        (tp,) = c.committed([self.ck.TopicPartition(topic, 0)], timeout=deadline_s)
        return tp.offset

    def close_consumer(self, c: Any) -> None:
        c.close()

    def close_producer(self, p: Any) -> None:
        pass


class KafkaPython:
    name = "kafka-python"

    def __init__(self, bootstrap: str) -> None:
        import kafka

        self.kafka = kafka
        self.bootstrap = bootstrap
        self.plain = ADAPTERS[self.name][1](bootstrap)

    def producer(self, txn_id: str) -> Any:
        p = self.kafka.KafkaProducer(bootstrap_servers=self.bootstrap, transactional_id=txn_id)
        p.init_transactions()
        return p

    def send(self, p: Any, topic: str, values: list[bytes], partition: int = 0) -> None:
        for v in values:
            p.send(topic, value=v, key=v, partition=partition)
        p.flush(deadline_s)

    def commit(self, p: Any) -> None:
        p.commit_transaction()

    def abort(self, p: Any) -> None:
        p.abort_transaction()

    def is_fenced(self, exc: BaseException) -> bool:
        errs = self.kafka.errors
        return isinstance(exc, (errs.ProducerFencedError, errs.InvalidProducerEpochError))

    def consumer(self, topic: str, group: str, isolation: str) -> Any:
        c = self.kafka.KafkaConsumer(
            topic, bootstrap_servers=self.bootstrap, group_id=group,
            auto_offset_reset="earliest", enable_auto_commit=False,
            isolation_level=isolation, fetch_max_wait_ms=10,
            heartbeat_interval_ms=100, session_timeout_ms=6000,
        )
        # the topic's metadata before the first join, or kafka-python's leader assigns
        # nothing and a poll() timing out during the rejoin leaves the member without
        # its assignment (wire_clients.KafkaPythonConsumer says more)
        c.partitions_for_topic(topic)
        return c

    def poll(self, c: Any, count: int) -> list[bytes]:
        got: list[bytes] = []
        end = time.monotonic() + deadline_s
        while len(got) < count and time.monotonic() < end:
            for records in c.poll(timeout_ms=100).values():
                got.extend(r.value for r in records)
        for _ in range(5):
            for records in c.poll(timeout_ms=100).values():
                got.extend(r.value for r in records)
        return got

    def send_offsets(self, p: Any, c: Any) -> None:
        offsets = {tp: self.kafka.OffsetAndMetadata(c.position(tp), "", -1)
                   for tp in c.assignment()}
        p.send_offsets_to_transaction(offsets, c.group_metadata())

    def committed(self, c: Any, topic: str) -> int:
        found = c.committed(self.kafka.TopicPartition(topic, 0))
        return -1 if found is None else found

    def close_consumer(self, c: Any) -> None:
        c.close()

    def close_producer(self, p: Any) -> None:
        p.close(timeout=5)


CLIENTS = {"confluent-kafka": Confluent, "kafka-python": KafkaPython}


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest, target: Target) -> Any:  # noqa: F811
    pytest.importorskip(ADAPTERS[request.param][0])
    adapter = CLIENTS[request.param](target.bootstrap)
    yield adapter
    adapter.plain.close()


@pytest.fixture
def wire_client(request: pytest.FixtureRequest, server: Any) -> Any:
    """A client of ``eventlog.serve`` only (the tests that look at the log too)."""
    name = request.param
    pytest.importorskip(ADAPTERS[name][0])
    adapter = CLIENTS[name](server.bootstrap_servers)
    yield adapter
    adapter.plain.close()


eventlog_clients = pytest.mark.parametrize("wire_client", sorted(CLIENTS), indirect=True)


def committed_values(log: eventlog.EventLog, topic: str) -> list[bytes]:
    """What an in-process read_committed consumer reads of ``topic`` partition 0."""
    with log.consumer(isolation_level="read_committed") as c:
        c.assign([TopicPartition(topic, 0)])
        c.seek_to_beginning()
        out: list[bytes] = []
        while True:
            records = c.poll(timeout_ms=0)
            if not records:
                return out
            out.extend(r.value for r in records)


def group_offset(log: eventlog.EventLog, group: str, topic: str) -> int | None:
    tp = TopicPartition(topic, 0)
    found = coordinator_for(log).committed(group, [tp]).get(tp)
    return None if found is None else found.offset


# ---------------------------------------------------------------------------- tests


def read_committed_values(client: Any, where: Target, topic: str, group: str,
                          count: int) -> list[bytes]:
    """``topic`` through a wire read_committed consumer, and on eventlog checked
    against an in-process read_committed consumer."""
    c = client.consumer(topic, group, "read_committed")
    got = client.poll(c, count)
    client.close_consumer(c)
    if where.log is not None:
        assert committed_values(where.log, topic) == got
        where.log.check()
    return got


def test_commit_is_visible_and_abort_is_not(client: Any, target: Target) -> None:  # noqa: F811
    client.plain.create_topic("out", 1)
    p = client.producer("txn-a")
    p.begin_transaction()
    client.send(p, "out", [b"c1", b"c2"])
    client.commit(p)
    p.begin_transaction()
    client.send(p, "out", [b"a1", b"a2"])
    client.abort(p)
    p.begin_transaction()
    client.send(p, "out", [b"c3"])
    client.commit(p)
    client.close_producer(p)

    assert read_committed_values(client, target, "out", "g-committed", 3) == [
        b"c1", b"c2", b"c3"]
    uncommitted = client.consumer("out", "g-uncommitted", "read_uncommitted")
    assert client.poll(uncommitted, 5) == [b"c1", b"c2", b"a1", b"a2", b"c3"]
    client.close_consumer(uncommitted)


def test_read_committed_stops_at_the_open_transaction(
        client: Any, target: Target) -> None:  # noqa: F811
    client.plain.create_topic("out", 1)
    client.plain.produce("out", [(b"k", b"before", ())], idempotent=False)
    p = client.producer("txn-open")
    p.begin_transaction()
    client.send(p, "out", [b"open"])
    # above the LSO until the transaction ends
    client.plain.produce("out", [(b"k", b"after", ())], idempotent=False)
    c = client.consumer("out", "g-open", "read_committed")
    assert client.poll(c, 1) == [b"before"]
    client.commit(p)
    assert client.poll(c, 2) == [b"open", b"after"]
    client.close_consumer(c)
    client.close_producer(p)


def test_a_zombie_producer_is_fenced(client: Any, target: Target) -> None:  # noqa: F811
    client.plain.create_topic("out", 1)
    zombie = client.producer("txn-z")
    zombie.begin_transaction()
    client.send(zombie, "out", [b"zombie"])
    successor = client.producer("txn-z")  # bumps the epoch: aborts the zombie's transaction
    successor.begin_transaction()
    client.send(successor, "out", [b"successor"])
    client.commit(successor)
    with pytest.raises(Exception) as raised:
        client.commit(zombie)
    assert client.is_fenced(raised.value), raised.value
    assert read_committed_values(client, target, "out", "g-z", 1) == [b"successor"]
    client.close_producer(successor)


def test_send_offsets_commit_with_the_transaction(
        client: Any, target: Target) -> None:  # noqa: F811
    client.plain.create_topic("in", 1)
    client.plain.create_topic("out", 1)
    client.plain.produce("in", [(b"k", f"r{i}".encode(), ()) for i in range(4)],
                         idempotent=False)
    c = client.consumer("in", "g-eos", "read_committed")
    p = client.producer("txn-eos")
    got = client.poll(c, 4)
    assert got == [b"r0", b"r1", b"r2", b"r3"]
    # the aborted transaction moves no offset
    p.begin_transaction()
    client.send(p, "out", [v.upper() for v in got])
    client.send_offsets(p, c)
    client.abort(p)
    assert client.committed(c, "in") < 0
    if target.log is not None:
        assert group_offset(target.log, "g-eos", "in") is None
    # the committed one moves it, atomically with the output
    p.begin_transaction()
    client.send(p, "out", [v.upper() for v in got])
    client.send_offsets(p, c)
    client.commit(p)
    assert client.committed(c, "in") == 4
    if target.log is not None:
        assert group_offset(target.log, "g-eos", "in") == 4
    client.close_consumer(c)
    client.close_producer(p)
    assert read_committed_values(client, target, "out", "g-eos-out", 4) == [
        b"R0", b"R1", b"R2", b"R3"]


@eventlog_clients
def test_in_process_transactions_reach_wire_consumers(wire_client: Any,
                                                      log: eventlog.EventLog) -> None:
    """The control batches an in-process TransactionalProducer writes are markers on
    the wire (not records): both isolation levels see only the data."""
    log.create_topic("out", 1)
    with log.producer(transactional_id="in-process") as p:
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"kept", key=b"k")
        p.commit_transaction()
        p.begin_transaction()
        p.send("out", b"dropped", key=b"k")
        p.abort_transaction()
    committed = wire_client.consumer("out", "g-ip-committed", "read_committed")
    assert wire_client.poll(committed, 1) == [b"kept"]
    wire_client.close_consumer(committed)
    uncommitted = wire_client.consumer("out", "g-ip-uncommitted", "read_uncommitted")
    assert wire_client.poll(uncommitted, 2) == [b"kept", b"dropped"]
    wire_client.close_consumer(uncommitted)


@eventlog_clients
def test_wire_and_in_process_producers_of_one_id_fence_each_other(
        wire_client: Any, log: eventlog.EventLog) -> None:
    log.create_topic("out", 1)
    wire = wire_client.producer("shared")
    wire.begin_transaction()
    wire_client.send(wire, "out", [b"wire"])
    with log.producer(transactional_id="shared") as p:
        p.init_transactions()  # fences the wire producer, aborting its transaction
        with pytest.raises(Exception) as raised:
            wire_client.commit(wire)
        assert wire_client.is_fenced(raised.value), raised.value
        p.begin_transaction()
        p.send("out", b"in-process", key=b"k")
        p.commit_transaction()
    assert committed_values(log, "out") == [b"in-process"]


# ---------------------------------------------------------------------------- frames


def _txn_batch(pid: int, epoch: int, sequence: int = 0) -> bytes:
    return encode_batch([0], [1_700_000_000_000], [b"k"], [b"v"], None,
                        attributes=attr_transactional, producer_id=pid,
                        producer_epoch=epoch, base_sequence=sequence)


def _produce(server: Any, txn_id: str | None, data: bytes) -> int:
    body = call(server, 0, 9, {"transactional_id": txn_id, "acks": -1, "timeout": 1000,
                               "topic_data": [{"name": "t", "partition_data": [
                                   {"index": 0, "records": data}]}]})
    return body.responses[0].partition_responses[0].error_code.value


def _init(server: Any, txn_id: str) -> tuple[int, int]:
    body = call(server, 22, 4, {"transactional_id": txn_id, "transaction_timeout": 60_000,
                                "producer_id": -1, "producer_epoch": -1})
    assert body.error_code.value == 0
    return body.producer_id, body.producer_epoch


def _add(server: Any, txn_id: str, pid: int, epoch: int) -> int:
    body = call(server, 24, 3, {
        "v3_and_below_transactional_id": txn_id, "v3_and_below_producer_id": pid,
        "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": "t", "partitions": [0]}]})
    return body.results_by_topic_v3_and_below[0].results_by_partition[0] \
        .partition_error_code.value


def test_a_transactional_batch_needs_its_partition_added(server: Any,
                                                         log: eventlog.EventLog) -> None:
    log.create_topic("t", 1)
    pid, epoch = _init(server, "frames")
    assert _produce(server, "frames", _txn_batch(pid, epoch)) == 48  # INVALID_TXN_STATE
    assert _produce(server, None, _txn_batch(pid, epoch)) == 87  # INVALID_RECORD
    assert log.topic("t").partition(0).end_offset == 0  # nothing appended
    assert _add(server, "frames", pid, epoch) == 0
    assert _produce(server, "frames", _txn_batch(pid, epoch)) == 0
    assert log.topic("t").partition(0).last_stable_offset == 0  # open until EndTxn
    body = call(server, 26, 3, {"transactional_id": "frames", "producer_id": pid,
                                "producer_epoch": epoch, "committed": True})
    assert body.error_code.value == 0
    assert log.topic("t").partition(0).last_stable_offset == 2  # the record, its marker


def test_an_older_epoch_is_fenced_at_every_call(server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("t", 1)
    pid, old = _init(server, "epochs")
    _, new = _init(server, "epochs")
    assert new == old + 1
    assert _add(server, "epochs", pid, old) == 90  # PRODUCER_FENCED (v3)
    body = call(server, 24, 1, {
        "v3_and_below_transactional_id": "epochs", "v3_and_below_producer_id": pid,
        "v3_and_below_producer_epoch": old,
        "v3_and_below_topics": [{"name": "t", "partitions": [0]}]})
    code = body.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    assert code.value == 47  # INVALID_PRODUCER_EPOCH: v1 predates PRODUCER_FENCED
    body = call(server, 26, 3, {"transactional_id": "epochs", "producer_id": pid,
                                "producer_epoch": old, "committed": True})
    assert body.error_code.value == 90
    # KIP-360: InitProducerId naming a stale (id, epoch) is fenced too
    body = call(server, 22, 4, {"transactional_id": "epochs", "transaction_timeout": 60_000,
                                "producer_id": pid, "producer_epoch": old})
    assert body.error_code.value == 90
    body = call(server, 22, 4, {"transactional_id": "epochs", "transaction_timeout": 60_000,
                                "producer_id": pid, "producer_epoch": new})
    assert (body.error_code.value, body.producer_epoch) == (0, new + 1)


def test_a_bad_transaction_timeout_is_refused(server: Any) -> None:
    body = call(server, 22, 4, {"transactional_id": "slow", "transaction_timeout": 3_600_000,
                                "producer_id": -1, "producer_epoch": -1})
    assert body.error_code.value == 50  # INVALID_TRANSACTION_TIMEOUT


def test_unknown_partitions_add_nothing(server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("t", 1)
    pid, epoch = _init(server, "unknown")
    body = call(server, 24, 3, {
        "v3_and_below_transactional_id": "unknown", "v3_and_below_producer_id": pid,
        "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": "t", "partitions": [0, 5]}]})
    codes = {r.partition_index: r.partition_error_code.value
             for r in body.results_by_topic_v3_and_below[0].results_by_partition}
    assert codes == {0: 55, 5: 3}  # OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION
    assert _produce(server, "unknown", _txn_batch(pid, epoch)) == 48


def _offset_fetch(server: Any, stable: bool) -> tuple[int, int]:
    body = call(server, 9, 7, {"group_id": "g", "require_stable": stable,
                               "topics": [{"name": "t", "partition_indexes": [0]}]})
    p = body.topics[0].partitions[0]
    return p.error_code.value, p.committed_offset


def test_offsets_in_an_open_transaction_are_unstable(server: Any,
                                                     log: eventlog.EventLog) -> None:
    log.create_topic("t", 1)
    pid, epoch = _init(server, "offsets")
    body = call(server, 25, 3, {"transactional_id": "offsets", "producer_id": pid,
                                "producer_epoch": epoch, "group_id": "g"})
    assert body.error_code.value == 0
    body = call(server, 28, 3, {
        "transactional_id": "offsets", "group_id": "g", "producer_id": pid,
        "producer_epoch": epoch, "generation_id": -1, "member_id": "",
        "group_instance_id": None, "topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "committed_offset": 7, "committed_leader_epoch": -1,
             "committed_metadata": "m"}]}]})
    assert body.topics[0].partitions[0].error_code.value == 0
    assert _offset_fetch(server, stable=False) == (0, -1)  # not visible before the commit
    assert _offset_fetch(server, stable=True) == (88, -1)  # UNSTABLE_OFFSET_COMMIT
    body = call(server, 26, 3, {"transactional_id": "offsets", "producer_id": pid,
                                "producer_epoch": epoch, "committed": True})
    assert body.error_code.value == 0
    assert _offset_fetch(server, stable=True) == (0, 7)


def test_a_produce_after_the_timeout_is_fenced(tmp_path: Any) -> None:
    from eventlog.testing import ManualClock

    clock = ManualClock()
    with eventlog.open(tmp_path / "data", clock=clock) as log, eventlog.serve(log) as server:
        log.create_topic("t", 1)
        body = call(server, 22, 4, {"transactional_id": "late", "transaction_timeout": 1_000,
                                    "producer_id": -1, "producer_epoch": -1})
        pid, epoch = body.producer_id, body.producer_epoch
        assert _add(server, "late", pid, epoch) == 0
        clock.advance(1_000)  # the transaction's timeout: aborted at the next call
        assert _produce(server, "late", _txn_batch(pid, epoch)) == 47  # INVALID_PRODUCER_EPOCH
        assert log.topic("t").partition(0).last_stable_offset == \
            log.topic("t").partition(0).end_offset
