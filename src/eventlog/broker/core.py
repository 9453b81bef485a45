"""Broker: the registry of one data directory's topics and partitions, below every client.

It opens and closes the partitions, creates, grows and deletes topics (recording
them in the data directory, see log_dir.py), runs retention and compaction (its
maintenance thread, see maintenance.py), and keeps the clients registered on it,
which it closes first. It imports nothing of the layers above: the public
``eventlog.EventLog`` (eventlog/log.py) adds the producer, consumer, group and
server conveniences, and the layers above keep their per-log state in
``layer_state`` slots they own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from ..clock import Clock, SystemClock
from ..config import TopicConfig
from ..errors import (
    StorageError,
)
from ..metrics.counters import MaintenanceCounters
from ..metrics.log import log_metrics
from ..records import TopicPartition
from ..storage.cleaner import CleanerStats
from ..storage.files import Files, os_files, with_errno
from ..storage.partition_log import DamagedRange, RecoveryReport
from .log_dir import LogDir
from .maintenance import Maintenance, compaction_pass, retention_pass
from .options import LogOptions, check_option_names, flush_interval_ms_default, validate_options
from .partition import Partition
from .registry import TopicRegistry
from .signal import DataSignal
from .topic import Topic

__all__ = ["Broker", "BrokerClient", "LayerState", "LogRecoveryReport"]

_log = logging.getLogger("eventlog.broker")

T = TypeVar("T")


class LogRecoveryReport(NamedTuple):
    """What opening the data directory found: clean or not, and what was cut."""

    clean: bool
    partitions: int
    segments_checked: int
    batches_checked: int
    bytes_truncated: int
    duration_ms: float
    partitions_detail: Mapping[TopicPartition, RecoveryReport]
    # Damage before the tail that opening found and did not repair, per partition:
    # reads that reach these offsets raise CorruptLogError (docs/storage.md).
    damaged: Mapping[TopicPartition, tuple[DamagedRange, ...]] = MappingProxyType({})
    # Bad bookkeeping files that were ignored, and the value used instead.
    warnings: tuple[str, ...] = ()


def recovery_report(clean: bool, details: Mapping[TopicPartition, RecoveryReport],
                    started: float) -> LogRecoveryReport:
    """The LogRecoveryReport of an open that began at ``started`` (perf_counter)."""
    return LogRecoveryReport(
        clean=clean,
        partitions=len(details),
        segments_checked=sum(r.segments_checked for r in details.values()),
        batches_checked=sum(r.batches_checked for r in details.values()),
        bytes_truncated=sum(r.bytes_truncated for r in details.values()),
        duration_ms=(time.perf_counter() - started) * 1000,
        partitions_detail=details,
        damaged=MappingProxyType({tp: r.damaged for tp, r in details.items() if r.damaged}),
        warnings=tuple(f"{tp.topic}-{tp.partition}: {w}"
                       for tp, r in details.items() for w in r.warnings),
    )


class BrokerClient(Protocol):
    """What the broker needs of a client registered on it (a producer, a consumer, a
    protocol server, the transaction coordinator): ``close()``, called by the log's
    ``close()`` before the partitions close."""

    def close(self) -> None: ...


class LayerState(Generic[T]):
    """A typed slot for the per-log state of a layer above the broker (the group
    coordinator, the transaction coordinator), owned by that layer: the broker keeps
    the value, made by ``factory(log)`` on first use, and knows nothing of its type.
    Compared by identity: one module-level instance per kind of state."""

    __slots__ = ("factory", "name")

    def __init__(self, name: str, factory: Callable[[Broker], T]) -> None:
        self.name = name
        self.factory = factory

    def __repr__(self) -> str:
        return f"LayerState({self.name!r})"


class Broker(TopicRegistry):
    """The in-process broker: topics, their partitions, and the data directory.

    The public class is ``eventlog.EventLog`` (a Broker with the client conveniences);
    use ``eventlog.open()``. Thread-safe. A context manager: ``close()`` on exit.
    """

    read_only = False  # True for the view of another process's log (readonly.py)

    def __init__(
        self,
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
        **unknown: Any,
    ) -> None:
        started = time.perf_counter()
        check_option_names(unknown)
        validate_options(
            path, clock, fsync, flush_interval_ms, flush_interval_messages,
            retention_check_interval_ms, auto_create_topics, num_partitions, topic_config,
            files,
        )
        self.files: Files = files if files is not None else os_files
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._topic_defaults = TopicConfig.from_mapping(dict(topic_config or {}))
        self._options = LogOptions(
            fsync, flush_interval_ms, flush_interval_messages if fsync == "interval" else None,
            retention_check_interval_ms, auto_create_topics, num_partitions,
        )
        self.path = None if path is None else os.path.abspath(os.fspath(path))
        self._dir = None if self.path is None else LogDir(self.path, self.files)
        self._init_registry()
        self._maintenance = Maintenance(
            self, name=f"eventlog-maintenance:{self.path or 'memory'}",
            flush_interval_ms=flush_interval_ms,
            retention_check_interval_ms=retention_check_interval_ms,
            interval_fsync=fsync == "interval",
        )
        self.recovery = self._open(started)
        self._maintenance.start()

    def _init_registry(self) -> None:
        """The state every broker has, the read-only view's too."""
        self._lock = threading.RLock()
        self._topics: dict[str, Topic] = {}
        self._closed = False
        self._closer: threading.Thread | None = None  # the thread inside close()
        self._close_done = threading.Event()  # set when that close() returns
        self._data = DataSignal()  # bumped by every append; consumers wait on it
        self._clients: weakref.WeakSet[BrokerClient] = weakref.WeakSet()
        self._topic_listeners: weakref.WeakKeyDictionary[
            BrokerClient, weakref.WeakMethod[Callable[[], None]]] = weakref.WeakKeyDictionary()
        self._layer_states: dict[LayerState[Any], Any] = {}
        self._layer_lock = threading.RLock()  # makes them (a factory may need another)
        self.maintenance_counters = MaintenanceCounters()  # for metrics()

    # ------------------------------------------------------------------ opening

    def _open(self, started: float) -> LogRecoveryReport:
        """Lock the directory, open every partition, then ``_after_open``; undo all
        of it if any step fails."""
        clean = True
        try:
            if self._dir is not None:
                clean = self._dir.lock()
            details = self._load_topics(clean)
            if self._dir is not None:
                # Only now: a failed open must leave the marker for the next attempt.
                self._dir.remove_clean_shutdown_marker()
        except OSError as exc:
            self._abandon_open()
            if isinstance(exc, StorageError):
                raise
            raise with_errno(exc, f"cannot open the log in {self.path}: {exc}") from exc
        except BaseException:
            self._abandon_open()
            raise
        report = recovery_report(clean, details, started)
        try:
            self._after_open()
        except BaseException:
            for p in self.partitions():
                try:
                    p.close()
                except OSError:
                    pass
            self._abandon_open()
            raise
        return report

    def _after_open(self) -> None:
        """Run once the partitions are open, before the maintenance thread starts and
        before anyone else can read (the public EventLog completes or aborts the
        transactions a crash left open here). Nothing to do at this layer."""

    def _abandon_open(self) -> None:
        """Undo a failed open (``_load_topics`` closed what it opened): release the lock."""
        self._topics.clear()
        if self._dir is not None:
            self._dir.release()

    def _load_topics(self, clean: bool) -> dict[TopicPartition, RecoveryReport]:
        details: dict[TopicPartition, RecoveryReport] = {}
        if self._dir is None:
            return details
        meta = self._dir.read_metadata()
        self._dir.deleting = list(meta.deleting)
        self._dir.refuse_symlinks(
            f"{name}-{i}" for name, count, _ in meta.topics for i in range(count)
        )
        opened: list[Partition] = []
        try:
            for name, count, config in meta.topics:
                partitions = []
                for i in range(count):
                    partitions.append(self._open_partition(name, i, config, clean=clean))
                    opened.append(partitions[-1])
                    details[partitions[-1].topic_partition] = partitions[-1].recovery
                self._topics[name] = Topic(name, config, partitions)
        except BaseException as exc:
            for p in opened:
                try:
                    p.close()
                except OSError:
                    pass
            if isinstance(exc, OSError) and not isinstance(exc, StorageError):
                raise with_errno(exc, f"cannot open the log directory {self.path}: {exc}") from exc
            raise
        self._dir.remove_leftovers(self._counts())
        return details

    # ------------------------------------------------------------------ data notifications

    @property
    def data_version(self) -> int:
        """A counter that grows with every append (compare before and after a wait)."""
        return self._data.version

    def wait_for_data(self, version: int, timeout_ms: float | None) -> bool:
        """Block until some partition gets an append after ``version`` was read, or
        ``timeout_ms`` passes (on the log's clock), or the log closes. Returns
        whether data arrived.

        Cost: blocks; O(1) per wake-up.
        Thread safety: any thread.
        Raises: nothing.
        """
        return self._data.wait(version, timeout_ms, self.clock, lambda: self._closed)

    def wake_waiters(self) -> None:
        """Wake every thread blocked in ``wait_for_data`` (e.g. after a group change).

        Cost: O(1).
        Thread safety: any thread.
        Raises: nothing.
        """
        self._data.bump()

    # ------------------------------------------------------------------ clients and layers

    def register_client(self, client: BrokerClient, *,
                        on_topics_changed: Callable[[], None] | None = None) -> None:
        """Remember ``client`` so ``close()`` closes it first (held weakly: a client
        dropped by its owner is forgotten). ``on_topics_changed``: a bound method of
        the client, called when a topic is deleted or grows (held weakly too).

        Cost: O(1).
        Thread safety: thread-safe.
        Raises: nothing.
        """
        with self._lock:
            self._clients.add(client)
            if on_topics_changed is not None:
                self._topic_listeners[client] = weakref.WeakMethod(on_topics_changed)  # type: ignore[arg-type]

    def _announce_topics_changed(self) -> None:
        for ref in list(self._topic_listeners.values()):
            hook = ref()
            if hook is not None:
                hook()

    def layer_state(self, slot: LayerState[T]) -> T:
        """The value of a layer's ``slot`` on this log, made by ``slot.factory(self)``
        on first use (once, even if threads race).

        Cost: one dict lookup after the first call.
        Thread safety: thread-safe.
        Raises: what the factory raises (then nothing is kept and the next call tries
        again).
        """
        found = self._layer_states.get(slot)
        if found is None:
            with self._layer_lock:
                found = self._layer_states.get(slot)
                if found is None:
                    found = self._layer_states[slot] = slot.factory(self)
        return found  # type: ignore[no-any-return]

    def existing_layer_state(self, slot: LayerState[T]) -> T | None:
        """The value of ``slot`` if it was made, else None (nothing is made).

        Cost: one dict lookup.
        Thread safety: any thread.
        Raises: nothing.
        """
        return self._layer_states.get(slot)  # type: ignore[no-any-return]

    def register_maintenance(self, task: Callable[[], None]) -> None:
        """Run ``task()`` at every tick of the maintenance thread (every
        ``min(flush_interval_ms, 1 s)``) until the log closes; e.g. the transaction
        coordinator's timeouts. A read-only view has no thread and ignores it.

        Cost: O(tasks).
        Thread safety: thread-safe.
        Raises: nothing.
        """
        self._maintenance.register(task)

    # ------------------------------------------------------------------ maintenance

    def run_retention(self, now_ms: int | None = None) -> int:
        """Apply every topic's retention now (Kafka runs it every 5 minutes).

        Returns the number of segments deleted. ``now_ms`` defaults to the clock.

        Cost: O(partitions + segments deleted).
        Thread safety: thread-safe (each partition's lock in turn).
        Raises: ClosedError, StorageError if a segment cannot be deleted.
        """
        self._ensure_open()
        now = self.clock.time_ms() if now_ms is None else now_ms
        deleted = 0
        try:
            deleted = retention_pass(self.partitions(), now)
        finally:
            self.maintenance_counters.retention_ran(deleted)
        return deleted

    def run_compaction(self, now_ms: int | None = None) -> int:
        """Run the log cleaner on every compacted topic's partitions now, where it is due
        (``min_cleanable_dirty_ratio``, ``max_compaction_lag_ms`` or a delete horizon;
        see docs/storage.md). Kafka's cleaner threads check every 15 s; the background
        thread here runs it with retention, every ``retention_check_interval_ms``.
        Returns the number of records removed. ``now_ms`` defaults to the clock.

        Cost: a read and a rewrite of each dirty segment of the partitions due.
        Thread safety: thread-safe; appends go on meanwhile.
        Raises: CorruptLogError if a segment to clean fails its checksum (that
        partition is left as it was; the others are cleaned first), StorageError if
        the disk fails (a swap it interrupted is completed when the log is reopened),
        ClosedError.
        """
        return self._compact_all(now_ms, background=False)

    def compact_in_background(self) -> int:
        """``run_compaction`` as the maintenance thread runs it: a partition's storage
        error is logged, and the other partitions are cleaned.

        Cost: as ``run_compaction``.
        Thread safety: thread-safe.
        Raises: ClosedError.
        """
        return self._compact_all(None, background=True)

    def _compact_all(self, now_ms: int | None, *, background: bool) -> int:
        self._ensure_open()
        now = self.clock.time_ms() if now_ms is None else now_ms
        stats: list[CleanerStats] = []
        started_ms = self.clock.monotonic_ms()
        try:
            return compaction_pass(self.partitions(), now, background=background, stats=stats)
        finally:
            self.maintenance_counters.cleaner_ran(stats, self.clock.monotonic_ms() - started_ms)

    def metrics(self) -> dict[str, Any]:
        """The log's metrics by Kafka's names: sizes, segments, start and end offsets in
        total and per partition, retention and cleaner runs, and what recovery found
        (eventlog.metrics.log; docs/operations.md lists them).

        Cost: O(partitions).
        Thread safety: thread-safe.
        Raises: ClosedError.
        """
        self._ensure_open()
        return log_metrics(self)

    def flush(self) -> None:
        """fsync every partition, whatever the fsync policy.

        Cost: one fsync per partition with unsynced appends.
        Thread safety: thread-safe.
        Raises: ClosedError, StorageError if an fsync fails.
        """
        self._ensure_open()
        for p in self.partitions():
            p.flush()

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Close clients (producers flush), then every partition; mark a clean shutdown.

        Idempotent. Every method but ``close`` raises ClosedError afterwards. A close()
        in another thread meanwhile returns once this one is done; one from a client's
        close (the same thread) returns at once. If a client's close raises, the log
        stays open and close() may be called again.

        Cost: the clients' closes, then one close (and fsync under a policy) per partition.
        Thread safety: thread-safe.
        Raises: what a client's close raises; StorageError if a partition cannot be
        closed or the marker written (the next open then recovers, as after a crash).
        """
        me = threading.current_thread()
        while True:
            with self._lock:
                closer, done = self._closer, self._close_done
                if closer is None:
                    if self._closed:
                        return
                    self._closer, self._close_done = me, threading.Event()
                    break
            if closer is me or me is self._maintenance.thread:
                # re-entered from a client's close(), or from the thread the closing one
                # joins: the outer close goes on
                return
            done.wait()  # then closed, or that close failed and this one tries
        try:
            self._close_clients()
            self._close_partitions()
        finally:
            with self._lock:
                self._closer = None
            self._close_done.set()

    def _close_partitions(self) -> None:
        self._maintenance.stop()
        self.wake_waiters()
        errors = []
        for p in self.partitions():
            try:
                p.close()
            except OSError as exc:
                errors.append(exc)
        if self._dir is not None:
            try:
                if not errors:
                    self._dir.write_clean_shutdown_marker()
            except OSError as exc:
                errors.append(exc)  # no marker: the next open recovers, as after a crash
            finally:
                self._dir.release()
        if errors:
            raise with_errno(errors[0], f"closing {self.path}: {errors[0]}") from errors[0]

    def _close_clients(self) -> None:
        """Close every registered client, then mark the log closed.

        Not under the lock: a client's close may wait for another thread that needs it
        (the protocol server finishes the request it is serving, a CreateTopics, say,
        before it stops), so the log works until every client is closed. A client
        registered meanwhile is closed in the next round."""
        done: dict[int, BrokerClient] = {}  # id -> client (the reference keeps the id unique)
        while True:
            with self._lock:
                pending = [c for c in list(self._clients) if id(c) not in done]
                if not pending:
                    self._closed = True
                    return
            for client in pending:
                done[id(client)] = client
                client.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> None:
        """Assert every partition's invariants (DESIGN invariant 1).

        Cost: O(size of the indexes) per partition.
        Thread safety: thread-safe.
        Raises: AssertionError naming the broken invariant.
        """
        for p in self.partitions():
            p.check()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"topics={len(self._topics)}"
        return f"EventLog({self.path or '<memory>'}, {state})"
