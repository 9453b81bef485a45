"""eventlog's own cases: the reference row of each workload.

Every log lives in a scratch directory under /tmp (removed afterwards) and is
opened with ``fsync="never"`` unless the workload is about fsync: the comparable
peers (SQLite ``synchronous=NORMAL``, queuelib, in-memory recorders) do not fsync
per write either. A missing part of the API (the library is being built) turns a
case into ``skipped: eventlog API not available yet: <error>``.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from time import perf_counter
from typing import Any

from . import latency
from .child import call, kill_when_ready, read_status_kb, ready
from .harness import Case, Skip, time_in_threads
from .scratch import make_dir, remove_dir, scratch_dir
from .workloads import Dataset, make_dataset

__all__ = [
    "TOPIC",
    "append_batch",
    "consumer_poll",
    "e2e_latency",
    "fsync_policy",
    "group_join",
    "open_log",
    "poll_after_send",
    "read_after_send",
    "read_seq",
    "reopen_clean",
    "reopen_killed",
    "rss_read",
    "send",
    "send_batch",
    "send_default",
    "send_threads",
]

TOPIC = "bench"
_READ_RECORDS = 1_000  # records per Partition.read call
_POLL_RECORDS = 500
_MODULE = __name__
_API_ERRORS = (ImportError, AttributeError, NotImplementedError)


@contextlib.contextmanager
def api_guard() -> Iterator[None]:
    """Turn a missing eventlog API into a ``Skip`` that names the error."""
    try:
        yield
    except _API_ERRORS as exc:
        raise Skip(f"eventlog API not available yet: {type(exc).__name__}: {exc}") from None


def _guarded(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with api_guard():
            return fn(*args, **kwargs)

    return wrapper


def open_log(path: Path | str | None, fsync: str = "never") -> Any:
    import eventlog

    if path is None:
        return eventlog.open(None)
    return eventlog.open(str(path), fsync=fsync)


def existing_topic(log: Any, name: str = TOPIC) -> Any:
    """The topic of a reopened log (``log.topic(name)``, else ``log.topics[name]``)."""
    if hasattr(log, "topic"):
        return log.topic(name)
    return log.topics[name]


def append_all(partition: Any, batches: list[list[tuple[bytes, bytes]]]) -> None:
    append = partition.append
    for batch in batches:
        append(batch)


def _expect_end(partition: Any, records: int) -> None:
    if partition.end_offset - partition.start_offset != records:
        raise RuntimeError(f"partition holds {partition.end_offset} records, expected {records}")


# -- append ------------------------------------------------------------------------


def _time_appends(batches: list, records: int, fsync: str) -> float:
    with scratch_dir("eventlog") as folder:
        log = open_log(folder, fsync)
        try:
            partition = log.create_topic(TOPIC, partitions=1).partition(0)
            start = perf_counter()
            append_all(partition, batches)
            elapsed = perf_counter() - start
            _expect_end(partition, records)
            return elapsed
        finally:
            log.close()


def append_batch() -> Case:
    return Case(
        "eventlog Partition.append",
        setup=lambda data: (data.batches(), len(data)),
        run=_guarded(lambda state: _time_appends(*state, "never")),
        reference=True,
        note="1,000 records per call; fsync=never",
    )


def fsync_policy(policy: str, *, reference: bool = False) -> Case:
    return Case(
        f"eventlog fsync={policy}",
        setup=lambda data: (data.batches(), len(data)),
        run=_guarded(lambda state: _time_appends(*state, policy)),
        reference=reference,
        note="Partition.append, 1,000 per call",
    )


def _time_producer(data: Dataset, linger_ms: int, batched: bool) -> float:
    with scratch_dir("eventlog") as folder:
        log = open_log(folder)
        try:
            topic = log.create_topic(TOPIC, partitions=3)
            producer = log.producer(linger_ms=linger_ms)
            start = perf_counter()
            if batched:
                for batch in data.batches():
                    producer.send_batch(TOPIC, batch)
            else:
                send = producer.send
                for key, value in data.records:
                    send(TOPIC, value, key=key)
            producer.flush()
            elapsed = perf_counter() - start
            producer.close()
            held = sum(p.end_offset - p.start_offset for p in topic.partitions)
            if held != len(data):
                raise RuntimeError(f"topic holds {held} records, expected {len(data)}")
            return elapsed
        finally:
            log.close()


def send(linger_ms: int) -> Case:
    return Case(
        f"eventlog Producer.send (linger {linger_ms} ms)",
        run=_guarded(lambda data: _time_producer(data, linger_ms, batched=False)),
        reference=True,
        note="send() per record, one flush() at the end",
    )


def send_batch() -> Case:
    return Case(
        "eventlog Producer.send_batch",
        run=_guarded(lambda data: _time_producer(data, 0, batched=True)),
        reference=True,
        note="1,000 records per call, then flush()",
    )


def disk_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (its apparent size: what a copy takes)."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def batch_count(partition: Any) -> int:
    """How many batches the partition's segments hold (a walk of the batch headers)."""
    return sum(1 for segment in partition._log.segments for _ in segment.headers())


def _send_default_records(log: Any, data: Dataset) -> tuple[Any, float]:
    """One ``send()`` per record with the default producer config, then ``flush()``:
    what a new user writes. Returns the partition and the seconds it took."""
    partition = log.create_topic(TOPIC, partitions=1).partition(0)
    producer = log.producer()  # the defaults, whatever they are
    send = producer.send
    start = perf_counter()
    for key, value in data.records:
        send(TOPIC, value, key=key)
    producer.flush()
    elapsed = perf_counter() - start
    producer.close()
    _expect_end(partition, len(data))
    return partition, elapsed


def _time_send_default(data: Dataset) -> dict[str, float]:
    with scratch_dir("eventlog") as folder:
        log = open_log(folder)
        try:
            partition, elapsed = _send_default_records(log, data)
            batches = batch_count(partition)
        finally:
            log.close()
        size = disk_bytes(folder)
    return {
        "records/s": len(data) / max(elapsed, 1e-9),
        "batches written": batches,
        "bytes on disk per record": size / len(data),
    }


def send_default() -> Case:
    return Case(
        "eventlog Producer.send (default config)",
        run=_guarded(_time_send_default),
        reference=True,
        note="log.producer() as given; send() per record, flush(); one partition; "
             "bytes: the closed data directory",
    )


def _time_threads(data: Dataset, threads: int, shared: bool) -> float:
    """One default ``send()`` per record into one partition from ``threads`` threads,
    each sending its share of the records, through one shared producer or a producer
    each; then ``flush()``. The clock runs from when all threads are ready."""
    with scratch_dir("eventlog") as folder:
        log = open_log(folder)
        try:
            partition = log.create_topic(TOPIC, partitions=1).partition(0)
            producers = [log.producer() for _ in range(1 if shared else threads)]
            def send_share(i: int, share: list) -> None:
                send = producers[0 if shared else i].send
                for key, value in share:
                    send(TOPIC, value, key=key)

            def flush() -> None:
                for producer in producers:
                    producer.flush()

            elapsed = time_in_threads(data.records, threads, send_share, flush)
            for producer in producers:
                producer.close()
            _expect_end(partition, len(data))
            return elapsed
        finally:
            log.close()


def send_threads(threads: int, *, shared: bool = True) -> Case:
    how = "" if threads == 1 else (", one shared producer" if shared else ", a producer each")
    return Case(
        f"eventlog Producer.send, {threads} thread{'s' if threads > 1 else ''}{how}",
        run=_guarded(lambda data: _time_threads(data, threads, shared)),
        reference=threads == 1,
        note="default config; send() per record, the records split between the threads; "
             "one partition",
    )


# -- read ----------------------------------------------------------------------------


class _Built:
    """A log in a scratch folder holding a dataset; closed and removed by ``drop``.

    Written 1,000 records per ``Partition.append``, or (``sent``) as
    ``send_default`` writes it: one default ``send()`` per record into one partition,
    or (``one_per_batch``) one ``Partition.append`` per record, as ``linger_ms=0`` does.
    """

    def __init__(
        self, data: Dataset, partitions: int = 1, *, sent: bool = False,
        one_per_batch: bool = False,
    ) -> None:
        self.folder = make_dir("eventlog")
        self.records = len(data)
        self.log = None
        try:
            self.log = open_log(self.folder)
            if sent:
                self.partitions = [_send_default_records(self.log, data)[0]]
                return
            topic = self.log.create_topic(TOPIC, partitions=partitions)
            self.partitions = [topic.partition(i) for i in range(partitions)]
            if one_per_batch:
                append = self.partitions[0].append
                for record in data.records:
                    append([record])
                return
            for i, batch in enumerate(data.batches()):
                self.partitions[i % partitions].append(batch)
        except BaseException:
            self.drop()
            raise

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            if self.log is not None:
                self.log.close()
        remove_dir(self.folder)


def _build(partitions: int) -> Callable[[Dataset], _Built]:
    return _guarded(lambda data: _Built(data, partitions))


def read_through(partition: Any) -> int:
    """Read a partition from start to end in chunks; return the record count."""
    read = partition.read
    offset, end = partition.start_offset, partition.end_offset
    count = 0
    while offset < end:
        records = read(offset, max_records=_READ_RECORDS)
        if not records:
            raise RuntimeError(f"read returned nothing at offset {offset} < end {end}")
        count += len(records)
        offset = records[-1].offset + 1
    return count


def _time_read(built: _Built) -> float:
    start = perf_counter()
    count = read_through(built.partitions[0])
    elapsed = perf_counter() - start
    if count != built.records:
        raise RuntimeError(f"read {count} records, expected {built.records}")
    return elapsed


def read_seq() -> Case:
    return Case(
        "eventlog Partition.read",
        setup=_build(1),
        run=_guarded(_time_read),
        teardown=lambda built: built.drop(),
        reference=True,
        note="read(offset, max_records=1000) to the end",
    )


def _time_poll(built: _Built) -> float:
    consumer = built.log.consumer(
        TOPIC,
        group_id=f"poll-{time.monotonic_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        count, empty_polls = 0, 0
        start = perf_counter()
        while count < built.records and empty_polls < 50:
            records = consumer.poll(timeout_ms=100, max_records=_POLL_RECORDS)
            count += len(records)
            empty_polls = 0 if records else empty_polls + 1
        elapsed = perf_counter() - start
    finally:
        consumer.close()
    if count != built.records:
        raise RuntimeError(f"polled {count} of {built.records} records")
    return elapsed


def consumer_poll() -> Case:
    return Case(
        "eventlog Consumer.poll (3 partitions)",
        setup=_build(3),
        run=_guarded(_time_poll),
        teardown=lambda built: built.drop(),
        reference=True,
        note="poll(timeout_ms=100, max_records=500); group join included",
    )


def _built_by_send(data: Dataset) -> _Built:
    with api_guard():
        return _Built(data, sent=True)


def read_one_per_batch() -> Case:
    return Case(
        "eventlog Partition.read (one-record batches)",
        setup=_guarded(lambda data: _Built(data, one_per_batch=True)),
        run=_guarded(_time_read),
        teardown=lambda built: built.drop(),
        reference=True,
        note="written by one Partition.append per record; read(offset, max_records=1000)",
    )


def read_after_send() -> Case:
    return Case(
        "eventlog Partition.read (after send_default)",
        setup=_built_by_send,
        run=_guarded(_time_read),
        teardown=lambda built: built.drop(),
        reference=True,
        note="the log send_default writes; read(offset, max_records=1000) to the end",
    )


def poll_after_send() -> Case:
    return Case(
        "eventlog group poll (after send_default)",
        setup=_built_by_send,
        run=_guarded(_time_poll),
        teardown=lambda built: built.drop(),
        note="the log send_default writes; a group member's poll(max_records=500); "
             "join included",
    )


# -- latency and groups ----------------------------------------------------------------


def _time_latency(data: Dataset) -> dict[str, float]:
    with scratch_dir("eventlog") as folder:
        log = open_log(folder)
        try:
            log.create_topic(TOPIC, partitions=1)
            producer = log.producer(linger_ms=0)
            consumer = log.consumer(
                TOPIC, group_id="latency", auto_offset_reset="earliest", enable_auto_commit=False
            )
            producer.send(TOPIC, b"start").result()
            _poll_until(consumer, 1)

            def receive() -> list[bytes]:
                return [r.value for r in consumer.poll(timeout_ms=100, max_records=500)]

            try:
                return latency.measure(lambda v: producer.send(TOPIC, v), receive, len(data))
            finally:
                producer.close()
                consumer.close()
        finally:
            log.close()


def _poll_until(consumer: Any, records: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    got = 0
    while got < records:
        if time.monotonic() > deadline:
            raise RuntimeError(f"consumer got {got} of {records} records in {timeout_s} s")
        got += len(consumer.poll(timeout_ms=100, max_records=_POLL_RECORDS))


def e2e_latency() -> Case:
    return Case(
        "eventlog send → poll",
        run=_guarded(_time_latency),
        reference=True,
        note="linger_ms=0; receiver polls in another thread",
    )


def _settled(consumers: list, partitions: int) -> bool:
    """One generation for all, and every partition owned by exactly one member."""
    if len({c.generation for c in consumers}) != 1 or consumers[0].generation < 1:
        return False
    owned = [tp for c in consumers for tp in c.assignment()]
    return len(owned) == partitions == len(set(owned))


def _settle(consumers: list, partitions: int) -> None:
    """Poll every member from this thread (timeout 0) until the group is settled."""
    deadline = time.monotonic() + 30
    while not _settled(consumers, partitions):
        if time.monotonic() > deadline:
            raise RuntimeError(f"a group of {len(consumers)} did not settle in 30 s")
        for consumer in consumers:
            consumer.poll(timeout_ms=0, max_records=1)


def _time_group_join(built: _Built) -> dict[str, float]:
    """3 members to their first assignment; then a 10th member joining a stable 9."""
    partitions = built.log.topic(TOPIC).num_partitions
    figures = {}
    for members, metric in ((3, "ms to first assignment (3 members)"),
                            (10, "ms to settle a join (10 members)")):
        group = f"join-{members}-{time.monotonic_ns()}"

        def member(group: str = group) -> Any:
            return built.log.consumer(
                TOPIC, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
            )

        consumers = [member() for _ in range(3 if members == 3 else 9)]
        try:
            if members == 10:  # a stable group of 9, then the 10th member joins
                _settle(consumers, partitions)
                consumers.append(member())
            start = perf_counter()
            _settle(consumers, partitions)
            figures[metric] = (perf_counter() - start) * 1e3
        finally:
            for consumer in consumers:
                consumer.close()
    return figures


def group_join() -> Case:
    return Case(
        "eventlog group (3 members)",
        setup=lambda data: _build(12)(data.head(12)),
        run=_guarded(_time_group_join),
        teardown=lambda built: built.drop(),
        reference=True,
        warmup=False,
        note="members polled from one thread with poll(timeout_ms=0)",
    )


# -- reopen and memory (run in fresh interpreters) --------------------------------------


def build(path: str, records: int, seed: int, key_mode: str, hang: bool = False) -> dict:
    """Child side: append ``records`` records; with ``hang``, wait to be SIGKILLed."""
    with api_guard():
        data = make_dataset(min(records, 100_000), key_mode=key_mode, seed=seed)
        log = open_log(path)
        partition = log.create_topic(TOPIC, partitions=1).partition(0)
        batches = data.cycle_batches()
        written = 0
        while written < records:
            batch = next(batches)[: records - written]
            partition.append(batch)
            written += len(batch)
        if hang:
            ready({"records": written})
            while True:
                time.sleep(60)
        log.close()
    return {"records": written}


def open_and_read_last(path: str) -> dict:
    """Child side: time ``eventlog.open()`` plus reading the last record."""
    with api_guard():
        import eventlog  # noqa: F401  (imported before the clock starts, as sqlite3 is)

        start = perf_counter()
        log = open_log(path)
        opened = perf_counter()
        partition = existing_topic(log).partition(0)
        last = partition.read(partition.end_offset - 1, max_records=1)
        done = perf_counter()
        log.close()
    return {
        "open ms": (opened - start) * 1e3,
        "total ms": (done - start) * 1e3,
        "last_offset": last[0].offset if last else None,
    }


def _reopen_case(system: str, killed: bool) -> Case:
    def setup(data: Dataset) -> tuple[Path, int]:
        folder = make_dir("eventlog-reopen")
        kwargs = {"path": str(folder), "records": len(data), "seed": data.seed}
        kwargs["key_mode"] = data.key_mode
        try:
            if killed:
                kill_when_ready(_MODULE, "build", hang=True, **kwargs)
            else:
                call(_MODULE, "build", **kwargs)
        except BaseException:
            remove_dir(folder)
            raise
        return folder, len(data)

    def run(state: tuple[Path, int]) -> dict[str, float]:
        folder, records = state
        copy = make_dir("eventlog-copy")
        try:
            # A fresh copy per run: the first open after a kill does the recovery.
            _copy_tree(folder, copy)
            out = call(_MODULE, "open_and_read_last", path=str(copy))
        finally:
            remove_dir(copy)
        if out["last_offset"] != records - 1:
            raise RuntimeError(f"last offset {out['last_offset']}, expected {records - 1}")
        return {"open + read last, ms": out["total ms"], "open, ms": out["open ms"]}

    return Case(
        system,
        setup=setup,
        run=run,
        teardown=lambda s: remove_dir(s[0]),
        reference=not killed,
        warmup=False,
    )


def _copy_tree(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target, dirs_exist_ok=True)


def reopen_clean() -> Case:
    return _reopen_case("eventlog, clean close", killed=False)


def reopen_killed() -> Case:
    return _reopen_case("eventlog, after kill -9", killed=True)


def read_all_rss(path: str) -> dict:
    """Child side: peak RSS growth of a reader of the whole log (records not kept)."""
    with api_guard():
        import eventlog  # noqa: F401  (its import is not the reader's memory)

        before = read_status_kb("VmRSS")
        anon_before = read_status_kb("RssAnon")
        log = open_log(path)
        count = read_through(existing_topic(log).partition(0))
        peak = read_status_kb("VmHWM")
        anon_after = read_status_kb("RssAnon")
        log.close()
    return {
        "peak RSS increase, MB": (peak - before) / 1024,
        "anon RSS increase, MB": (anon_after - anon_before) / 1024,
        "records": count,
    }


def rss_read() -> Case:
    def setup(data: Dataset) -> Path:
        folder = make_dir("eventlog-rss")
        try:
            call(
                _MODULE,
                "build",
                path=str(folder),
                records=len(data),
                seed=data.seed,
                key_mode=data.key_mode,
            )
        except BaseException:
            remove_dir(folder)
            raise
        return folder

    def run(folder: Path) -> dict[str, float]:
        out = call(_MODULE, "read_all_rss", path=str(folder))
        out.pop("records")
        return out

    return Case(
        "eventlog reader", setup=setup, run=run, teardown=remove_dir, reference=True, warmup=False
    )
