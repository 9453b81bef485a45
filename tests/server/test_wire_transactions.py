"""Transactions over the wire, with the real clients: confluent-kafka (librdkafka)
and kafka-python's transactional producers and read_committed consumers against
``eventlog.serve``.

Per client: a committed transaction is visible to read_committed consumers (wire
and in-process), an aborted one is not (but is to read_uncommitted), a zombie
producer of the same transactional id is fenced, and offsets sent with
``send_offsets_to_transaction`` reach the group only when the transaction commits.
Frame-level tests pin the errors: a transactional batch to a partition not added
to the transaction, a producer of an older epoch.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from wire import call

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
        return self.kafka.KafkaConsumer(
            topic, bootstrap_servers=self.bootstrap, group_id=group,
            auto_offset_reset="earliest", enable_auto_commit=False,
            isolation_level=isolation, fetch_max_wait_ms=10,
            heartbeat_interval_ms=100, session_timeout_ms=6000,
        )

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
def client(request: pytest.FixtureRequest, server: Any) -> Any:
    pytest.importorskip(request.param.replace("-python", "").replace("-", "_"))
    return CLIENTS[request.param](server.bootstrap_servers)


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


def test_commit_is_visible_and_abort_is_not(client: Any, log: eventlog.EventLog) -> None:
    log.create_topic("out", 1)
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

    committed = client.consumer("out", "g-committed", "read_committed")
    assert client.poll(committed, 3) == [b"c1", b"c2", b"c3"]
    client.close_consumer(committed)
    uncommitted = client.consumer("out", "g-uncommitted", "read_uncommitted")
    assert client.poll(uncommitted, 5) == [b"c1", b"c2", b"a1", b"a2", b"c3"]
    client.close_consumer(uncommitted)
    assert committed_values(log, "out") == [b"c1", b"c2", b"c3"]
    log.check()


def test_read_committed_stops_at_the_open_transaction(client: Any,
                                                      log: eventlog.EventLog) -> None:
    log.create_topic("out", 1)
    with log.producer() as plain:
        plain.send("out", b"before", key=b"k")
    p = client.producer("txn-open")
    p.begin_transaction()
    client.send(p, "out", [b"open"])
    with log.producer() as plain:
        plain.send("out", b"after", key=b"k")  # above the LSO until the transaction ends
    c = client.consumer("out", "g-open", "read_committed")
    assert client.poll(c, 1) == [b"before"]
    client.commit(p)
    assert client.poll(c, 2) == [b"open", b"after"]
    client.close_consumer(c)
    client.close_producer(p)


def test_a_zombie_producer_is_fenced(client: Any, log: eventlog.EventLog) -> None:
    log.create_topic("out", 1)
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
    assert committed_values(log, "out") == [b"successor"]
    client.close_producer(successor)
    log.check()


def test_send_offsets_commit_with_the_transaction(client: Any, log: eventlog.EventLog) -> None:
    log.create_topic("in", 1)
    log.create_topic("out", 1)
    with log.producer() as plain:
        for i in range(4):
            plain.send("in", f"r{i}".encode(), key=b"k", partition=0)
    c = client.consumer("in", "g-eos", "read_committed")
    p = client.producer("txn-eos")
    got = client.poll(c, 4)
    assert got == [b"r0", b"r1", b"r2", b"r3"]
    # the aborted transaction moves no offset
    p.begin_transaction()
    client.send(p, "out", [v.upper() for v in got])
    client.send_offsets(p, c)
    client.abort(p)
    assert group_offset(log, "g-eos", "in") is None
    # the committed one moves it, atomically with the output
    p.begin_transaction()
    client.send(p, "out", [v.upper() for v in got])
    client.send_offsets(p, c)
    client.commit(p)
    assert client.committed(c, "in") == group_offset(log, "g-eos", "in") == 4
    assert committed_values(log, "out") == [b"R0", b"R1", b"R2", b"R3"]
    client.close_consumer(c)
    client.close_producer(p)
    log.check()


def test_in_process_transactions_reach_wire_consumers(client: Any,
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
    committed = client.consumer("out", "g-ip-committed", "read_committed")
    assert client.poll(committed, 1) == [b"kept"]
    client.close_consumer(committed)
    uncommitted = client.consumer("out", "g-ip-uncommitted", "read_uncommitted")
    assert client.poll(uncommitted, 2) == [b"kept", b"dropped"]
    client.close_consumer(uncommitted)


def test_wire_and_in_process_producers_of_one_id_fence_each_other(
        client: Any, log: eventlog.EventLog) -> None:
    log.create_topic("out", 1)
    wire = client.producer("shared")
    wire.begin_transaction()
    client.send(wire, "out", [b"wire"])
    with log.producer(transactional_id="shared") as p:
        p.init_transactions()  # fences the wire producer, aborting its transaction
        with pytest.raises(Exception) as raised:
            client.commit(wire)
        assert client.is_fenced(raised.value), raised.value
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
