"""use_eventlog, the bootstrap-servers registry, config refusals and the pytest plugin."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import eventlog
import eventlog.compat
from eventlog.compat import confluent_kafka as ck
from eventlog.compat import kafka as kp
from eventlog.testing import ManualClock, use_eventlog

SRC = Path(__file__).resolve().parents[2] / "src"


def test_imports_resolve_to_compat_modules_inside_and_come_back_after(log) -> None:
    roots = ("confluent_kafka", "kafka", "aiokafka")
    before = {n: m for n, m in sys.modules.items() if n.split(".")[0] in roots}
    with use_eventlog(log) as clients:
        import confluent_kafka
        import confluent_kafka.admin
        import kafka
        import kafka.errors
        from confluent_kafka.serialization import StringSerializer

        assert confluent_kafka is ck
        assert confluent_kafka.admin is ck.admin
        assert kafka is kp and kafka.errors is kp.errors
        assert StringSerializer is ck.serialization.StringSerializer
        assert clients.log is log and clients.confluent_kafka is ck
        import aiokafka
        import aiokafka.errors

        assert aiokafka is clients.aiokafka
        assert aiokafka.errors.ConsumerStoppedError.__module__ == "eventlog.compat.aiokafka.errors"
        seen = []
        t = threading.Thread(target=lambda: seen.append(importlib.import_module("kafka")))
        t.start()
        t.join()
        assert seen == [kp]  # other threads see the swap too
    after = {n: m for n, m in sys.modules.items() if n.split(".")[0] in roots}
    assert after == before


def test_any_bootstrap_servers_use_the_default_log_inside(log) -> None:
    with use_eventlog(log):
        p = ck.Producer({"bootstrap.servers": "broker-1:9092,broker-2:9092"})
        p.produce("orders", b"v")
        p.flush()
        kp.KafkaProducer(bootstrap_servers=["localhost:9092"]).send("orders", b"w").get()
    assert [r.value for r in log.partition("orders", 0).read(0)] == [b"v", b"w"]


def test_nested_blocks_restore_the_outer_default(log) -> None:
    inner = eventlog.open(None, clock=ManualClock(), auto_create_topics=True)
    with use_eventlog(log):
        with use_eventlog(inner):
            assert eventlog.compat.get_default() is inner
        assert eventlog.compat.get_default() is log
        import confluent_kafka
        assert confluent_kafka is ck
    assert eventlog.compat.get_default() is None
    inner.close()


def test_use_eventlog_without_a_log_opens_and_closes_one() -> None:
    with use_eventlog() as clients:
        p = clients.confluent_kafka.Producer({})
        p.produce("t", b"x")
        assert p.flush() == 0
        assert clients.log.partition("t", 0).end_offset == 1
    assert clients.log.closed


def test_eventlog_scheme_names_a_registered_log(log) -> None:
    eventlog.compat.register("orders-db", log)
    try:
        p = ck.Producer({"bootstrap.servers": "eventlog://orders-db"})
        p.produce("x", b"1")
        p.flush()
        assert log.partition("x", 0).end_offset == 1
    finally:
        eventlog.compat.unregister("orders-db")


def test_unresolvable_bootstrap_servers_name_the_fix() -> None:
    with pytest.raises(ck.KafkaException) as info:
        ck.Producer({"bootstrap.servers": "localhost:9092"})
    assert "use_eventlog" in str(info.value) and "eventlog://" in str(info.value)
    assert isinstance(info.value, eventlog.InvalidConfigError)
    assert info.value.args[0].code() == ck.KafkaError._INVALID_ARG
    with pytest.raises(ck.KafkaException, match="register"):
        ck.Consumer({"bootstrap.servers": "eventlog://nobody"})
    with pytest.raises(kp.errors.NoBrokersAvailable):
        kp.KafkaConsumer(bootstrap_servers="localhost:9092")


def test_semantic_options_are_refused_and_network_ones_ignored(log) -> None:
    with use_eventlog(log):
        ck.Producer({"socket.timeout.ms": 100, "security.protocol": "SSL", "linger.ms": 50,
                     "sasl.mechanism": "PLAIN", "client.id": "me"})
        ck.Consumer({"group.id": "g", "fetch.wait.max.ms": 10, "debug": "all",
                     "isolation.level": "read_committed"})
        with pytest.raises(ck.KafkaException, match=r"transactional\.id"):
            ck.Producer({"transactional.id": "tx"})
        with pytest.raises(ck.KafkaException, match=r"made\.up"):
            ck.Consumer({"group.id": "g", "made.up": 1})
        with pytest.raises(ck.KafkaException, match=r"auto\.offset\.reset"):
            ck.Consumer({"group.id": "g", "auto.offset.reset": "sideways"})
        kp.KafkaProducer(request_timeout_ms=10, security_protocol="SSL", linger_ms=5)
        with pytest.raises(kp.errors.KafkaConfigurationError, match="transactional_id"):
            kp.KafkaProducer(transactional_id="tx")
        with pytest.raises(kp.errors.KafkaConfigurationError, match="made_up"):
            kp.KafkaConsumer(made_up=1)


def test_subscribe_needs_a_group_id(log) -> None:
    with use_eventlog(log):
        c = ck.Consumer({})
        with pytest.raises(ck.KafkaException) as info:
            c.subscribe(["t"])
        assert info.value.args[0].code() == ck.KafkaError._INVALID_ARG
        c.close()


def test_unknown_topic_is_a_delivery_error_without_auto_create() -> None:
    log = eventlog.open(None, clock=ManualClock())
    with use_eventlog(log):
        p = ck.Producer({})
        reports = []
        p.produce("missing", b"x", on_delivery=lambda err, msg: reports.append(err))
        p.poll(0)
        assert [e.code() for e in reports] == [ck.KafkaError.UNKNOWN_TOPIC_OR_PART]
        with pytest.raises(kp.errors.KafkaTimeoutError):
            kp.KafkaProducer().send("missing", b"x")
    log.close()


def test_produce_errors_raise_kafka_exceptions(log) -> None:
    log.create_topic("t", 2)
    with use_eventlog(log):
        p = ck.Producer({"message.max.bytes": 1000})
        with pytest.raises(ck.KafkaException) as info:
            p.produce("t", b"x", partition=5)
        assert info.value.args[0].code() == ck.KafkaError._UNKNOWN_PARTITION
        with pytest.raises(ck.KafkaException) as info:
            p.produce("t", b"x" * 5000)
        assert info.value.args[0].code() == ck.KafkaError.MSG_SIZE_TOO_LARGE
        with pytest.raises(TypeError):
            p.produce("t", 42)
        kp.KafkaConsumer(group_id="g").close()  # creates __consumer_offsets
        with pytest.raises(ck.KafkaException) as info:
            p.produce("__consumer_offsets", b"x")
        assert info.value.args[0].code() == ck.KafkaError.TOPIC_EXCEPTION
        with pytest.raises(kp.errors.InvalidTopicError):
            kp.KafkaProducer().send("__consumer_offsets", b"x")
        assert len(p) == 0  # nothing was queued by the refused calls


def test_queue_full_raises_buffer_error(log) -> None:
    with use_eventlog(log):
        p = ck.Producer({"queue.buffering.max.messages": 2})
        p.produce("t", b"1")
        p.produce("t", b"2")
        with pytest.raises(BufferError):
            p.produce("t", b"3")
        assert p.poll(1.0) == 2
        p.produce("t", b"3")


def test_confluent_producer_batches_as_librdkafka_lingers(log) -> None:
    """produce() lingers (linger.ms 5) so a loop appends one batch; poll(0) right after
    produce() serves nothing yet, a second poll(0) with nothing produced between
    appends what lingers, and every read of the partition sees the lingering records."""
    log.create_topic("t", 1)
    with use_eventlog(log):
        p = ck.Producer({})
        reports: list[int] = []
        for i in range(10):
            p.produce("t", b"%d" % i, on_delivery=lambda err, msg: reports.append(msg.offset()))
        assert p.poll(0) == 0 and len(p) == 10  # lingering: no report yet
        assert p.poll(0) == 10  # nothing produced since the last poll: appended now
        assert reports == list(range(10))
        assert len(log.topic("t").partition(0).read_batches(0, 100)) == 1  # one batch of ten
        for i in range(3):
            p.produce("t", b"w%d" % i)
        c = ck.Consumer({"group.id": "g"})
        assert c.get_watermark_offsets(ck.TopicPartition("t", 0)) == (0, 13)
        for i in range(2):
            p.produce("t", b"x%d" % i)
        assert c.get_watermark_offsets(ck.TopicPartition("t", 0), cached=True) == (0, 15)
        p.produce("t", b"y")
        (found,) = c.offsets_for_times([ck.TopicPartition("t", 0, log.clock.time_ms())])
        assert found.offset == 0
        p.produce("t", b"z")
        c.assign([ck.TopicPartition("t", 0, 15)])
        assert [m.value() for m in c.consume(5, 0)] == [b"y", b"z"]
        assert p.flush() == 0 and len(p) == 0
        c.close()
        unlingered = ck.Producer({"linger.ms": 0})
        unlingered.produce("t", b"now")
        assert unlingered.poll(0) == 1  # appended by produce() itself
        with pytest.raises(ck.KafkaException, match=r"linger\.ms"):
            ck.Producer({"linger.ms": -1})


def test_kafka_python_producer_lingers_when_linger_ms_is_set(log) -> None:
    log.create_topic("t", 1)
    with use_eventlog(log):
        p = kp.KafkaProducer()  # kafka-python's default linger_ms 0: done at once
        assert p.send("t", b"now").is_done
        p = kp.KafkaProducer(linger_ms=5)
        futures = [p.send("t", b"%d" % i) for i in range(4)]
        done: list[int] = []
        futures[0].add_callback(lambda md: done.append(md.offset))
        assert not futures[0].is_done and futures[0].value is None and done == []
        c = kp.KafkaConsumer()
        tp = kp.TopicPartition("t", 0)
        assert c.end_offsets([tp]) == {tp: 5}  # the read appends what lingers
        assert all(f.is_done and f.succeeded() for f in futures) and done == [1]
        assert [f.get().offset for f in futures] == [1, 2, 3, 4]
        assert len(log.topic("t").partition(0).read_batches(0, 100)) == 2
        late = p.send("t", b"late")
        assert late.get().offset == 5  # get() appends it without waiting out the linger
        p.close()
        c.close()
        with pytest.raises(kp.errors.KafkaConfigurationError):
            kp.KafkaProducer(linger_ms=-1)


def test_aiokafka_producer_lingers_when_linger_ms_is_set(log) -> None:
    import asyncio

    from eventlog.compat import aiokafka as ak

    log.create_topic("t", 1)

    async def main() -> None:
        p = ak.AIOKafkaProducer(linger_ms=5)
        await p.start()
        futures = [await p.send("t", b"%d" % i) for i in range(3)]
        assert not any(f.done() for f in futures)
        await p.flush()
        assert [(await f).offset for f in futures] == [0, 1, 2]
        assert (await p.send_and_wait("t", b"w")).offset == 3
        await p.stop()
        p0 = ak.AIOKafkaProducer()  # aiokafka's default linger_ms 0: done when the loop
        first = await p0.send("t", b"now")  # has run (aiokafka's sender drains then)
        assert not first.done()
        await asyncio.sleep(0)  # one iteration of the loop, no time passing
        assert first.done() and first.result().offset == 4
        await p0.stop()

    with use_eventlog(log):
        asyncio.run(main())
    assert len(log.topic("t").partition(0).read_batches(0, 100)) == 3


def test_reports_without_a_callback_are_served_in_produce_order_behind_a_lingering_one(
        log) -> None:
    log.create_topic("t2", 2)
    with use_eventlog(log):
        p = ck.Producer({"linger.ms": 5})
        p.produce("t2", b"a", partition=0)
        p.produce("t2", b"b", partition=1)
        p.produce("no-such-topic", b"x")  # reported (as an error) without a callback
        assert len(p) == 3
        assert p.poll(0) == 0  # the first record still lingers: the rest wait behind it
        log.topic("t2").partition(0).read(0, 10)  # a read appends partition 0's batch
        assert p.poll(0) == 1 and len(p) == 2  # served up to partition 1's, lingering
        assert p.poll(0) == 2  # a second poll(0) in a row appends what lingers
        assert len(p) == 0
        seen: list[bytes] = []
        p.produce("t2", b"c", partition=0)
        p.produce("t2", b"d", partition=0, on_delivery=lambda err, m: seen.append(m.value()))
        p.produce("t2", b"e", partition=1)
        assert p.flush() == 0 and seen == [b"d"]
        for i in range(20):  # only callback-less reports, all due: served at once
            p.produce("t2", b"%d" % i, partition=i % 2)
        assert len(p) == 20 and p.poll(1) == 20 and len(p) == 0
        p.close()
        with pytest.raises(RuntimeError):
            p.produce("t2", b"late")


def test_a_poll_whose_oldest_report_is_due_appends_nothing_lingering(log) -> None:
    log.create_topic("t2", 2)
    with use_eventlog(log):
        p = ck.Producer({"linger.ms": 5})
        seen: list[bytes] = []
        p.produce("t2", b"a", partition=0, on_delivery=lambda err, m: seen.append(m.value()))
        p.produce("t2", b"b", partition=1, on_delivery=lambda err, m: seen.append(m.value()))
        log.topic("t2").partition(0).read(0, 10)  # a read appends partition 0's batch
        assert p.poll(1) == 1 and seen == [b"a"] and len(p) == 1  # "b" still lingers
        assert p.flush() == 0 and seen == [b"a", b"b"]


def test_auto_commit_commits_stored_offsets_on_the_log_clock(log) -> None:
    clock = log.clock
    with use_eventlog(log):
        p = ck.Producer({})
        for i in range(3):
            p.produce("t", b"%d" % i)
        p.flush()
        c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest",
                         "auto.commit.interval.ms": 1000})
        c.subscribe(["t"])
        got = [c.poll(0) for _ in range(2)]
        assert [m.value() for m in got] == [b"0", b"1"]
        tp = ck.TopicPartition("t", 0)
        assert c.committed([tp])[0].offset == ck.OFFSET_INVALID
        clock.advance(1000)
        assert c.poll(0).value() == b"2"  # the poll commits what was returned before it
        assert c.committed([tp])[0].offset == 2
        c.close()  # and close commits the rest
        c2 = ck.Consumer({"group.id": "g"})
        assert c2.committed([tp])[0].offset == 3
        c2.close()


def test_async_commit_reports_to_on_commit_at_the_next_poll(log) -> None:
    with use_eventlog(log):
        p = ck.Producer({})
        p.produce("t", b"x")
        p.flush()
        results = []
        c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False,
                         "on_commit": lambda err, parts: results.append((err, parts))})
        c.subscribe(["t"])
        msg = c.poll(0)
        assert c.commit(message=msg) is None
        assert results == []
        c.poll(0)
        [(err, parts)] = results
        assert err is None and [(tp.topic, tp.offset) for tp in parts] == [("t", 1)]
        c.close()


def test_two_members_share_the_partitions(log) -> None:
    log.create_topic("t", 2)
    with use_eventlog(log):
        p = ck.Producer({})
        for i in range(10):
            p.produce("t", b"%d" % i, partition=i % 2)
        p.flush()
        conf = {"group.id": "g", "auto.offset.reset": "earliest"}
        a, b = ck.Consumer(conf), ck.Consumer(conf)
        a.subscribe(["t"])
        b.subscribe(["t"])
        got: list[bytes] = []
        for _ in range(30):
            for c in (a, b):
                m = c.poll(0)
                if m is not None and m.error() is None:
                    got.append(m.value())
        assert sorted(got) == sorted(b"%d" % i for i in range(10))
        assert {tp.partition for tp in a.assignment()} | {
            tp.partition for tp in b.assignment()} == {0, 1}
        assert not {tp.partition for tp in a.assignment()} & {
            tp.partition for tp in b.assignment()}
        a.close()
        b.close()


def test_serializing_producer_and_deserializing_consumer(log) -> None:
    from eventlog.compat.confluent_kafka.serialization import (
        IntegerDeserializer,
        IntegerSerializer,
        StringDeserializer,
        StringSerializer,
    )

    with use_eventlog(log):
        p = ck.SerializingProducer({"key.serializer": IntegerSerializer(),
                                    "value.serializer": StringSerializer()})
        p.produce("t", key=7, value="seven")
        p.flush()
        c = ck.DeserializingConsumer({"group.id": "g", "auto.offset.reset": "earliest",
                                      "key.deserializer": IntegerDeserializer(),
                                      "value.deserializer": StringDeserializer()})
        c.subscribe(["t"])
        m = c.poll(0)
        assert (m.key(), m.value()) == (7, "seven")
        c.close()


def test_pytest_plugin_fixtures(tmp_path: Path) -> None:
    test = tmp_path / "test_app.py"
    test.write_text(textwrap.dedent('''
        def test_app(kafka_clients, eventlog_clock, eventlog_log):
            import confluent_kafka
            assert kafka_clients.log is eventlog_log
            assert eventlog_log.clock is eventlog_clock
            p = confluent_kafka.Producer({"bootstrap.servers": "localhost:9092"})
            p.produce("orders", b"x")
            assert p.flush() == 0
            assert eventlog_log.partition("orders", 0).end_offset == 1

        def test_no_swap_without_the_fixture():
            import sys
            assert "eventlog.compat" not in getattr(sys.modules.get("confluent_kafka"),
                                                    "__name__", "")
    '''))
    # autoload off: the plugin is loaded by -p here whether or not the entry point is installed
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "eventlog.testing.pytest_plugin",
            "-p", "no:cacheprovider", str(test)]
    run = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_plugin_is_declared_as_the_eventlog_pytest11_entry_point() -> None:
    import tomllib

    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["pytest11"]
    assert entry == {"eventlog": "eventlog.testing.pytest_plugin"}


def _entry_point_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "eventlog" and ep.value == "eventlog.testing.pytest_plugin"
               for ep in entry_points(group="pytest11"))


@pytest.mark.skipif(not _entry_point_installed(),
                    reason="the pytest11 entry point exists after `pip install -e .`")
def test_installed_plugin_is_on_by_default_and_off_with_no_eventlog(tmp_path: Path) -> None:
    test = tmp_path / "test_fixture.py"
    test.write_text("def test_it(eventlog_log):\n    assert not eventlog_log.closed\n")
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)]
    on = subprocess.run(base, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert on.returncode == 0, on.stdout + on.stderr
    off = subprocess.run([*base, "-p", "no:eventlog"], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert off.returncode != 0 and "fixture 'eventlog_log' not found" in off.stdout


def test_kafka_python_futures_of_lingering_and_appended_sends(log) -> None:
    """send()'s FutureRecordMetadata on both paths: appended at once (linger_ms 0) and
    lingering (linger_ms 5, done when flush() appends the batch)."""
    log.create_topic("t", 1)
    with use_eventlog(log):
        now = kp.KafkaProducer()
        first = now.send("t", b"a", key=b"k")
        assert first.is_done and first.succeeded() and first.exception is None
        assert (first.get().offset, first.value.serialized_key_size) == (0, 1)
        lingering = kp.KafkaProducer(linger_ms=5)
        futures = [lingering.send("t", b"%d" % i) for i in range(3)]
        called: list = []
        futures[1].add_callback(called.append)
        assert not any(f.is_done for f in futures) and called == []
        assert futures[0].exception is None and futures[0].value is None  # not yet
        lingering.flush()
        assert all(f.is_done and f.succeeded() and not f.failed() for f in futures)
        assert [f.get().offset for f in futures] == [1, 2, 3]
        assert [m.offset for m in called] == [2]
        now.close()
        lingering.close()


def test_aiokafka_settles_appended_batches_while_a_loop_sends_without_yielding(log) -> None:
    """A loop of send() that never yields keeps only the lingering batch's futures
    pending: those of the batches a full batch appended are settled from send()."""
    import asyncio

    from eventlog.compat import aiokafka as ak
    from eventlog.testing import records

    log.create_topic("t", 2)

    async def main() -> None:
        p = ak.AIOKafkaProducer(max_batch_size=1024)
        futures = [await p.send("t", b"%04d" % i, partition=0) for i in range(200)]
        other = await p.send("t", b"other", partition=1)  # a batch of its own, lingering
        more = [await p.send("t", b"m%d" % i, partition=0) for i in range(100)]
        assert futures[0].done() and futures[0].result().offset == 0
        assert not other.done() and not more[-1].done()
        assert len(p._futures) < 150  # the settled ones are no longer held
        assert [r.value for r in records(log, "t")][:3] == [b"0000", b"0001", b"0002"]
        await asyncio.sleep(0)  # the loop runs the drain: no time passes
        assert other.done() and other.result().partition == 1
        assert [f.result().offset for f in futures + more] == list(range(300))
        await p.stop()

    with use_eventlog(log):
        asyncio.run(main())


def test_aiokafka_pending_sends_survive_a_cancelled_future_and_the_log_closing() -> None:
    import asyncio

    from eventlog.compat import aiokafka as ak
    from eventlog.testing import records

    own = eventlog.open(None, clock=ManualClock())
    own.create_topic("t", 1)

    async def main() -> None:
        p = ak.AIOKafkaProducer()
        cancelled = await p.send("t", b"a")
        kept = await p.send("t", b"b")
        cancelled.cancel()  # the record is sent all the same, as aiokafka's
        await p.flush()
        assert cancelled.cancelled() and kept.result().offset == 1
        assert [r.value for r in records(own, "t")] == [b"a", b"b"]
        last = await p.send("t", b"c")
        own.close()  # appends what its producers hold, then closes
        await asyncio.sleep(0)  # the drain, after the close: the future is settled
        assert last.result().offset == 2
        await p.stop()

    with use_eventlog(own):
        asyncio.run(main())


def test_aiokafka_consumer_parks_on_the_loop_until_a_record_arrives(log) -> None:
    import asyncio

    from eventlog.compat import aiokafka as ak

    async def main() -> list[bytes]:
        with use_eventlog(log):
            log.create_topic("t", 1)
            consumer = ak.AIOKafkaConsumer("t", group_id="g", auto_offset_reset="earliest")
            producer = ak.AIOKafkaProducer()
            await consumer.start()
            waiting = asyncio.ensure_future(consumer.getone())
            await asyncio.sleep(0)  # the getone is parked now, and the loop is free
            assert not waiting.done()
            await producer.send_and_wait("t", b"x")
            record = await asyncio.wait_for(waiting, 30)
            await consumer.stop()
            await producer.stop()
            return [record.value]

    assert asyncio.run(main()) == [b"x"]


def test_an_evicted_member_gets_on_lost_not_on_revoke() -> None:
    clock = ManualClock()
    log = eventlog.open(None, clock=clock, auto_create_topics=True)
    log.create_topic("t", 1)
    events: list[tuple[str, list]] = []
    with use_eventlog(log):
        conf = {"group.id": "g", "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
                "max.poll.interval.ms": 10000}
        c = ck.Consumer(conf)
        c.subscribe(["t"], on_assign=lambda cons, p: events.append(("assign", p)),
                    on_revoke=lambda cons, p: events.append(("revoke", p)),
                    on_lost=lambda cons, p: events.append(("lost", p)))
        c.poll(0)
        other = ck.Consumer(conf)
        other.subscribe(["t"])
        clock.advance(20_000)  # c stops polling past max.poll.interval.ms: evicted
        for _ in range(5):
            other.poll(0)
        c.poll(0)
        assert [(kind, [(tp.topic, tp.partition) for tp in parts]) for kind, parts in events] \
            == [("assign", [("t", 0)]), ("lost", [("t", 0)])]
        assert [(tp.topic, tp.partition) for tp in other.assignment()] == [("t", 0)]
        c.close()
        other.close()
    log.close()
