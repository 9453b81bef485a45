"""EventLog and open(): the public log, a Broker with the client, group and server conveniences.

The broker package (eventlog/broker/) imports no client: this module sits above
the producer, consumer, group, transaction and server layers, so ``log.producer()``,
``log.consumer()``, ``log.list_groups()``, ``log.describe_group()`` and
``log.serve()`` need no upward import, and opening a log completes or aborts the
transactions a crash left open (group/txn_coordinator.py) before anyone reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .broker.core import Broker, LogRecoveryReport
from .broker.options import check_option_names, flush_interval_ms_default
from .broker.readonly import ReadOnlyBroker, check_read_only_options, refused
from .clock import Clock
from .consumer import Consumer
from .errors import InvalidConfigError
from .group.coordinator import GroupDescription, GroupListing, describe_group, list_groups
from .group.txn_coordinator import recover_if_needed
from .producer import Producer
from .server import serve
from .storage.files import Files

if TYPE_CHECKING:
    from .server.server import Server

__all__ = ["EventLog", "LogRecoveryReport", "ReadOnlyEventLog", "open"]


class EventLog(Broker):
    """The in-process broker: topics, their partitions, and the data directory, with
    the conveniences that make clients on it. Use ``eventlog.open()``.

    Thread-safe. A context manager: ``close()`` on exit.
    """

    def _after_open(self) -> None:
        # Complete or abort the transactions a crash left open, before anyone reads:
        # no transaction is ever left half-visible.
        recover_if_needed(self)

    def producer(self, **config: Any) -> Producer:
        """A new ``eventlog.Producer`` on this log (see Producer for the configs; with
        ``transactional_id``, a TransactionalProducer).

        Cost: O(1); no thread until a record lingers.
        Thread safety: any thread.
        Raises: InvalidConfigError for a bad config, ClosedError.
        """
        return Producer(self, **config)

    def consumer(self, *topics: str, **config: Any) -> Consumer:
        """A new ``eventlog.Consumer`` on this log, subscribed to ``topics`` if any
        (see Consumer for the configs).

        Cost: O(1) (joining a group happens at the first poll).
        Thread safety: any thread.
        Raises: InvalidConfigError for a bad config, ClosedError.
        """
        return Consumer(self, *topics, **config)

    def list_groups(self) -> list[GroupListing]:
        """Every consumer group with members or committed offsets (GroupListing).

        Cost: O(groups); the first group operation on a log loads the committed offsets.
        Thread safety: thread-safe.
        Raises: ClosedError.
        """
        self._ensure_open()
        return list_groups(self)

    def describe_group(self, group_id: str) -> GroupDescription:
        """State, generation, protocol, members and per-partition lag of one group (an
        unknown group is described as Dead with no members, as Kafka does).

        Cost: O(partitions the group committed).
        Thread safety: thread-safe.
        Raises: ClosedError.
        """
        self._ensure_open()
        return describe_group(self, group_id)

    def serve(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Server:
        """Serve this log to Kafka clients: ``eventlog.serve(self, host, port, ...)``
        (see there; needs the ``server`` extra).

        Cost: starts the server's thread and binds the socket.
        Thread safety: any thread.
        Raises: ImportError without the server extra, OSError if the address cannot be
        bound, InvalidConfigError for bad options, ClosedError.
        """
        self._ensure_open()
        return serve(self, host, port, **options)


class ReadOnlyEventLog(ReadOnlyBroker, EventLog):
    """An EventLog over a directory that another process writes (or none does).

    Thread-safe. Reads, consumers (``assign``, and ``subscribe`` with a read-only
    group view: see docs/consumers.md), ``list_groups`` and ``describe_group``
    work; every write raises ReadOnlyLogError. ``close()`` only unmaps.
    """

    def producer(self, **config: Any) -> Producer:
        """Refused: nothing is written through a read-only view.

        Cost: O(1).
        Thread safety: any thread.
        Raises: ReadOnlyLogError, always.
        """
        raise refused("create a producer", self.path)


def open(
    path: str | os.PathLike[str] | None = None,
    *,
    clock: Clock | None = None,
    fsync: str = "never",
    flush_interval_ms: int = flush_interval_ms_default,
    flush_interval_messages: int | None = None,
    retention_check_interval_ms: int = 300_000,
    auto_create_topics: bool = False,
    num_partitions: int = 1,
    topic_config: Mapping[str, Any] | None = None,
    files: Files | None = None,
    read_only: bool = False,
    **unknown: Any,
) -> EventLog:
    """Open (creating if needed) the event log in ``path``; ``None`` keeps it in memory.

    ``read_only=True``: read a directory that another process may hold open for
    writing (no lock is taken, nothing is written): records up to each partition's
    last published end offset, followed as the writer appends; every write raises
    ReadOnlyLogError. Only ``clock`` may be given with it. See docs/operations.md.

    ``fsync``: ``"never"`` (appends survive a killed process: the page cache has
    them), ``"interval"`` (fsync every ``flush_interval_ms`` and, if set, every
    ``flush_interval_messages`` per partition), or ``"always"`` (fsync before
    an append returns). See docs/storage.md for what each survives.
    ``auto_create_topics``: producing to an unknown topic creates it with
    ``num_partitions``. ``topic_config``: defaults for every topic created.
    ``files``: the file-system calls of the storage layer (a ``Files``); tests
    pass ``eventlog.testing.FaultyFiles()`` to inject disk faults.
    After a crash the log is recovered (never raises for a torn tail); see
    ``EventLog.recovery``.

    Cost: a recovery scan of the partitions' tails after a crash, O(partitions) after
    a clean shutdown.
    Thread safety: any thread; one EventLog per directory (the directory is locked).
    Raises: LogDirLockedError if another EventLog has the directory open,
    InvalidConfigError for bad or unknown options, CorruptLogError if
    ``topics.msgpack`` is damaged, StorageError if the directory cannot be used
    (or an entry of it is a symbolic link).
    """
    if read_only is not False:
        if read_only is not True:
            raise InvalidConfigError(f"read_only must be True or False, got {read_only!r}")
        check_option_names(unknown)
        check_read_only_options(path, {
            "fsync": fsync != "never",
            "flush_interval_ms": flush_interval_ms != flush_interval_ms_default,
            "flush_interval_messages": flush_interval_messages is not None,
            "retention_check_interval_ms": retention_check_interval_ms != 300_000,
            "auto_create_topics": auto_create_topics,
            "num_partitions": num_partitions != 1,
            "topic_config": topic_config is not None,
            "files": files is not None,
        })
        assert path is not None
        return ReadOnlyEventLog(path, clock=clock)
    return EventLog(
        path,
        clock=clock,
        fsync=fsync,
        flush_interval_ms=flush_interval_ms,
        flush_interval_messages=flush_interval_messages,
        retention_check_interval_ms=retention_check_interval_ms,
        auto_create_topics=auto_create_topics,
        num_partitions=num_partitions,
        topic_config=topic_config,
        files=files,
        **unknown,
    )
