"""eventlog.aio: the asyncio producer and consumer over the native API."""

from __future__ import annotations

import asyncio
import threading

import pytest

import eventlog
from eventlog.aio import AsyncConsumer, AsyncProducer, waiter_for
from eventlog.errors import ClosedError, EventLogTimeoutError, InvalidConfigError
from eventlog.records import TopicPartition


@pytest.fixture
def system_log():
    log = eventlog.open(None, auto_create_topics=True)
    yield log
    log.close()


async def until_parked(log: eventlog.EventLog, n: int = 1) -> None:
    """Yield to the loop until ``n`` coroutines are parked on the log's waiter."""
    waiter = waiter_for(log)
    while sum(not p[1].done() for p in waiter._pending) < n:
        await asyncio.sleep(0)


def test_send_send_batch_flush_and_async_with(log) -> None:
    async def main() -> None:
        async with AsyncProducer(log) as p:
            md = await p.send("t", b"a", b"k")
            assert (md.topic, md.partition, md.offset) == ("t", 0, 0)
            batch = await p.send_batch("t", [(None, b"b"), (None, b"c")])
            assert [m.offset for m in batch] == [1, 2]
            assert p.partitions_for("t") == [0]
        assert p.closed
        lingering = AsyncProducer(log, linger_ms=60_000)
        fut = lingering.send_nowait("t", b"d")
        assert not fut.done()  # lingers: the manual clock does not reach 60 s
        await lingering.flush()
        assert (await fut).offset == 3
        assert (await lingering.send("t", b"e")).offset == 4  # never waits out linger
        await lingering.close()
    asyncio.run(main())
    assert [r.value for r in log.partition("t", 0).read(0)] == [b"a", b"b", b"c", b"d", b"e"]


def test_a_send_error_is_raised_by_the_await(log) -> None:
    async def main() -> None:
        async with AsyncProducer(log) as p:
            with pytest.raises(TypeError):
                await p.send("t", "not bytes")
    asyncio.run(main())


def test_poll_parks_on_the_loop_until_a_record_arrives(system_log) -> None:
    log = system_log
    log.create_topic("t", 1)

    async def main() -> None:
        c = AsyncConsumer(log, "t", group_id="g", auto_offset_reset="earliest")
        await c.poll(0)  # join
        task = asyncio.ensure_future(c.poll(timeout_ms=60_000))
        await until_parked(log)
        assert not task.done()
        async with AsyncProducer(log) as p:
            await p.send("t", b"x")
        records = await task
        assert [r.value for r in records] == [b"x"]
        await c.close()
    asyncio.run(main())


def test_many_parked_polls_share_one_helper_thread(system_log) -> None:
    log = system_log
    log.create_topic("t", 1)

    async def main() -> None:
        consumers = [AsyncConsumer(log) for _ in range(20)]
        for c in consumers:
            c.assign([TopicPartition("t", 0)])
        tasks = [asyncio.ensure_future(c.poll(timeout_ms=60_000)) for c in consumers]
        await until_parked(log, 20)
        helpers = [t for t in threading.enumerate() if t.name == "eventlog-aio-waiter"]
        assert len(helpers) == 1
        async with AsyncProducer(log) as p:
            await p.send("t", b"x")
        assert [len(r) for r in await asyncio.gather(*tasks)] == [1] * 20
        for c in consumers:
            await c.close()
    asyncio.run(main())


def test_a_cancelled_poll_leaves_positions_and_commits_alone(system_log) -> None:
    log = system_log
    log.create_topic("t", 1)

    async def main() -> None:
        c = AsyncConsumer(log, "t", group_id="g", auto_offset_reset="earliest",
                          enable_auto_commit=False)
        await c.poll(0)
        tp = TopicPartition("t", 0)
        before = c.position(tp)
        task = asyncio.ensure_future(c.poll(timeout_ms=60_000))
        await until_parked(log)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert c.position(tp) == before and c.committed(tp) is None
        async with AsyncProducer(log) as p:
            await p.send("t", b"after")
        assert [r.value for r in await c.poll(timeout_ms=60_000)] == [b"after"]
        await c.commit()
        assert c.committed(tp) == 1
        await c.close()
    asyncio.run(main())


def test_poll_timeout_moves_a_manual_clock_instead_of_waiting(log) -> None:
    log.create_topic("t", 1)

    async def main() -> None:
        c = AsyncConsumer(log, "t", group_id="g")
        start = log.clock.monotonic_ms()
        assert await c.poll(timeout_ms=5_000) == []
        assert log.clock.monotonic_ms() - start >= 5_000
        with pytest.raises(InvalidConfigError):
            await c.poll(timeout_ms=-1)
        with pytest.raises(EventLogTimeoutError):
            await c.getone(timeout_ms=1_000)
        await c.close()
    asyncio.run(main())


def test_getmany_getone_and_a_group_of_two(log) -> None:
    log.create_topic("t", 2)

    async def main() -> None:
        a = AsyncConsumer(log, "t", group_id="g", auto_offset_reset="earliest")
        b = AsyncConsumer(log, "t", group_id="g", auto_offset_reset="earliest")
        while not (a.assignment() and b.assignment()):  # both join before anything is there
            await a.poll(0)
            await b.poll(0)
        async with AsyncProducer(log) as p:
            for i in range(6):
                await p.send("t", str(i).encode(), partition=i % 2)
        got: dict[str, dict[TopicPartition, list]] = {"a": {}, "b": {}}
        for _ in range(50):
            for name, c in (("a", a), ("b", b)):
                for tp, rs in (await c.getmany(timeout_ms=100)).items():
                    got[name].setdefault(tp, []).extend(r.value for r in rs)
            if sum(len(v) for g in got.values() for v in g.values()) == 6:
                break
        assert a.assignment() | b.assignment() == {TopicPartition("t", 0),
                                                   TopicPartition("t", 1)}
        assert a.assignment() and b.assignment()
        merged = {**got["a"], **got["b"]}
        assert merged == {TopicPartition("t", 0): [b"0", b"2", b"4"],
                          TopicPartition("t", 1): [b"1", b"3", b"5"]}
        await a.close()
        await b.close()
        c = AsyncConsumer(log, group_id="other", auto_offset_reset="earliest")
        c.assign([TopicPartition("t", 1)])
        assert (await c.getone()).value == b"1"
        await c.close()
        with pytest.raises(ClosedError):
            await c.getone()
    asyncio.run(main())


def test_async_for_ends_at_consumer_timeout_and_at_close(log) -> None:
    log.create_topic("t", 1)

    async def main() -> None:
        async with AsyncProducer(log) as p:
            await p.send_batch("t", [(None, b"a"), (None, b"b")])
        async with AsyncConsumer(log, "t", group_id="g", auto_offset_reset="earliest",
                                 consumer_timeout_ms=1_000) as c:
            assert [r.value async for r in c] == [b"a", b"b"]
            assert [r.value async for r in c] == []  # again, after another idle second
        assert c.closed

    asyncio.run(main())


def test_close_from_another_task_ends_a_parked_iteration(system_log) -> None:
    log = system_log
    log.create_topic("t", 1)

    async def main() -> None:
        c = AsyncConsumer(log, "t", group_id="g")
        await c.poll(0)

        async def drain() -> list:
            return [r async for r in c]
        task = asyncio.ensure_future(drain())
        await until_parked(log)
        await c.close()
        assert await task == []
    asyncio.run(main())


def test_unknown_attributes_are_not_forwarded(log) -> None:
    c = AsyncConsumer(log)
    assert c.assignment() == set()
    with pytest.raises(AttributeError):
        c.poll_sync  # noqa: B018
    asyncio.run(c.close())
