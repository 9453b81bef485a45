"""The workloads, in the order they run, and which systems take part in each.

Each workload names its cases (eventlog's reference row first, then the peers, then
the floors) and its sizes: the run's two sizes (10^4/10^5 quick, 10^5/10^6 full),
only the larger one, or a fixed count. ``scaling`` runs its own loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import eventlog_bench as ev
from . import scaling
from . import transactions as txn
from .harness import Case, Settings
from .peers import (
    confluent_mock,
    eventsourcing_recorders,
    floors,
    mockafka,
    persist_queue,
    queuelib_queue,
    sqlite_table,
)
from .results import Result
from .workloads import Dataset

__all__ = ["WORKLOADS", "Workload", "shutdown_peers"]


def _both(settings: Settings) -> tuple[int, ...]:
    return settings.sizes


def _largest(settings: Settings) -> tuple[int, ...]:
    return (settings.largest,)


def _latency_count(settings: Settings) -> tuple[int, ...]:
    return (1_000,) if settings.quick else (5_000,)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    cases: Callable[[], list[Case]] = list
    sizes: Callable[[Settings], tuple[int, ...]] = _both
    full_only: bool = False
    custom: Callable[[Settings, Dataset], list[Result]] | None = None
    reads: bool = False  # also run once with the collector live (see suite.run_suite)


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "append_batch",
        "append in batches of 1,000 records per call",
        lambda: [
            ev.append_batch(),
            sqlite_table.append_batch(),
            eventsourcing_recorders.append_batch("popo"),
            eventsourcing_recorders.append_batch("sqlite"),
            confluent_mock.append_batch(),
            floors.mmap_frames(),
            floors.msgpack_pack(),
        ],
    ),
    Workload(
        "append_one",
        "one record per call (eventlog Producer.send with linger_ms=0)",
        lambda: [
            ev.send(linger_ms=0),
            sqlite_table.append_one(),
            eventsourcing_recorders.append_one("popo"),
            eventsourcing_recorders.append_one("sqlite"),
            persist_queue.append_one("file"),
            persist_queue.append_one("sqlite"),
            queuelib_queue.append_one(),
            confluent_mock.append_one(linger_ms=0),
            mockafka.append_one(),
        ],
    ),
    Workload(
        "send_linger5",
        "Producer.send with linger_ms=5, one record per call",
        lambda: [ev.send(linger_ms=5), confluent_mock.append_one(linger_ms=5)],
    ),
    Workload(
        "send_default",
        "one send() per record with the default producer config, then flush(); "
        "batches written and bytes on disk per record",
        lambda: [
            ev.send_default(),
            sqlite_table.insert_one_txn(),
            confluent_mock.append_one_default(),
        ],
    ),
    Workload(
        "send_threads",
        "one default send() per record into one partition from 1 thread, then from 4 "
        "threads through one shared producer and with a producer each; confluent-kafka's "
        "4 threads through one producer to the mock",
        lambda: [
            ev.send_threads(1),
            ev.send_threads(4, shared=True),
            ev.send_threads(4, shared=False),
            confluent_mock.produce_threads(4),
        ],
    ),
    Workload(
        "send_batch",
        "the producer's batch call, 1,000 records per call",
        lambda: [
            ev.send_batch(),
            sqlite_table.append_batch(),
            confluent_mock.append_batch(),
        ],
    ),
    Workload(
        "read_seq",
        "read the whole log from the start into record objects",
        lambda: [
            ev.read_seq(),
            sqlite_table.read_seq(),
            eventsourcing_recorders.read_seq("popo"),
            eventsourcing_recorders.read_seq("sqlite"),
            queuelib_queue.read_seq(),
            confluent_mock.read_seq(),
            mockafka.read_seq(),
            floors.msgpack_unpack(),
        ],
        reads=True,
    ),
    Workload(
        "consumer_poll",
        "Consumer.poll over a whole 3-partition topic",
        lambda: [ev.consumer_poll()],
        reads=True,
    ),
    Workload(
        "read_after_send",
        "read back what send_default writes: Partition.read, and a group member's poll",
        lambda: [
            ev.read_after_send(),
            ev.poll_after_send(),
            sqlite_table.read_after_inserts(),
            confluent_mock.group_consume(),
        ],
        reads=True,
    ),
    Workload(
        "read_one_batches",
        "read back a log of one-record batches (one Partition.append per record, as "
        "linger_ms=0 writes); SQLite reads the same rows inserted one by one",
        lambda: [ev.read_one_per_batch(), sqlite_table.read_after_inserts()],
        reads=True,
    ),
    Workload(
        "e2e_latency",
        "send() in one thread until poll() returns it in another; µs percentiles",
        lambda: [ev.e2e_latency(), confluent_mock.e2e_latency()],
        sizes=_latency_count,
    ),
    Workload(
        "reopen",
        "open the log in a fresh process and read its last record",
        lambda: [
            ev.reopen_clean(),
            ev.reopen_killed(),
            sqlite_table.reopen_clean(),
            sqlite_table.reopen_killed(),
        ],
        sizes=_largest,
    ),
    Workload(
        "fsync",
        "append in batches of 1,000 under each fsync policy",
        lambda: [
            ev.fsync_policy("never"),
            ev.fsync_policy("interval"),
            ev.fsync_policy("always", reference=True),
            sqlite_table.fsync_full(),
        ],
    ),
    Workload(
        "txn_batch",
        "send_batch of 1,000 records, each call in a transaction, vs without",
        lambda: [txn.batch_plain(), txn.batch_transactional()],
    ),
    Workload(
        "txn_one",
        "transactions of one record (commits/s), fsync never and always, vs SQLite",
        lambda: [
            txn.one_eventlog("never", reference=True),
            txn.one_eventlog("always"),
            txn.one_sqlite(),
        ],
        sizes=lambda settings: (2_000,) if settings.quick else (10_000,),
    ),
    Workload(
        "txn_read",
        "poll a log with 10% aborted transactions: read_committed vs read_uncommitted",
        custom=txn.run_txn_read,
    ),
    Workload(
        "scaling",
        "append and random-read cost at 10^4..10^7 records",
        custom=scaling.run_scaling,
    ),
    Workload(
        "rss_read",
        "peak RSS growth of a fresh process reading the whole log",
        lambda: [ev.rss_read(), sqlite_table.rss_read()],
        sizes=_largest,
    ),
    Workload(
        "group_join",
        "three consumers of one group reaching their first assignment",
        lambda: [ev.group_join(), confluent_mock.group_join()],
        sizes=lambda settings: (3,),
        full_only=True,
    ),
)


def shutdown_peers() -> None:
    """Tear down what outlives a case (the confluent-kafka mock cluster)."""
    confluent_mock.shutdown()
