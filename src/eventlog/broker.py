"""EventLog: the in-process broker over one data directory (or over memory).

Files in the data directory::

    LOCK              held (flock) while an EventLog is open: a second one fails at once
    .clean-shutdown   written by close(), removed once an open succeeded: its presence
                      means the files need no recovery scan
    topics.msgpack    topic names, partition counts and configs (replaced atomically)
    TOPIC-N/          one directory per partition (see storage/partition_log.py)

Order of writes, so a crash at any point leaves a directory that opens:
creating a topic makes the partition directories first and then records the
topic; deleting one records its absence first and then removes the
directories. Directories not named in ``topics.msgpack`` are leftovers and are
replaced when a topic of that name is created.
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import msgpack

from .clock import Clock, SystemClock
from .config import FSYNC_POLICIES, TopicConfig
from .errors import (
    ClosedError,
    CorruptLogError,
    InvalidConfigError,
    LogDirLockedError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)
from .partition import DataSignal, Partition
from .records import TopicPartition
from .storage.files import atomic_write, fsync_dir
from .storage.partition_log import DamagedRange, PartitionLog, RecoveryReport
from .topic import Topic, validate_topic_name

__all__ = ["EventLog", "LogRecoveryReport", "open"]

_log = logging.getLogger("eventlog.broker")

lock_file = "LOCK"
clean_shutdown_file = ".clean-shutdown"
topics_file = "topics.msgpack"
metadata_format = 1
partitions_max = 10_000  # per topic; a directory each
flush_interval_ms_default = 1000
maintenance_interval_ms_max = 1000


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_exclusive(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_exclusive(fd: int) -> None:
        """Take the directory lock without waiting (OSError if another holder has it)."""
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


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


@dataclass(frozen=True)
class _Options:
    fsync: str
    flush_interval_ms: int
    flush_interval_messages: int | None
    retention_check_interval_ms: int
    auto_create_topics: bool
    num_partitions: int


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
) -> EventLog:
    """Open (creating if needed) the event log in ``path``; ``None`` keeps it in memory.

    ``fsync``: ``"never"`` (appends survive a killed process: the page cache has
    them), ``"interval"`` (fsync every ``flush_interval_ms`` and, if set, every
    ``flush_interval_messages`` per partition), or ``"always"`` (fsync before
    an append returns). See docs/storage.md for what each survives.
    ``auto_create_topics``: producing to an unknown topic creates it with
    ``num_partitions``. ``topic_config``: defaults for every topic created.

    Raises LogDirLockedError if another EventLog has the directory open,
    InvalidConfigError for bad options. After a crash the log is recovered
    (never raises for a torn tail); see ``EventLog.recovery``.
    """
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
    )


def _validate_options(
    fsync: str,
    flush_interval_ms: int,
    flush_interval_messages: int | None,
    retention_check_interval_ms: int,
    num_partitions: int,
) -> None:
    if fsync not in FSYNC_POLICIES:
        raise InvalidConfigError(
            f"fsync must be one of {', '.join(map(repr, FSYNC_POLICIES))}, got {fsync!r}"
        )
    for name, value in (
        ("flush_interval_ms", flush_interval_ms),
        ("retention_check_interval_ms", retention_check_interval_ms),
        ("num_partitions", num_partitions),
    ):
        if type(value) is not int or value < 1:
            raise InvalidConfigError(f"{name} must be an int >= 1, got {value!r}")
    if flush_interval_messages is not None and (
        type(flush_interval_messages) is not int or flush_interval_messages < 1
    ):
        raise InvalidConfigError(
            f"flush_interval_messages must be None or an int >= 1, got {flush_interval_messages!r}"
        )


class EventLog:
    """The in-process broker: topics, their partitions, and the data directory.

    Use ``eventlog.open()``. Thread-safe. A context manager: ``close()`` on exit.
    """

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
    ) -> None:
        started = time.perf_counter()
        _validate_options(
            fsync, flush_interval_ms, flush_interval_messages,
            retention_check_interval_ms, num_partitions,
        )
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._topic_defaults = TopicConfig.from_mapping(dict(topic_config or {}))
        self._options = _Options(
            fsync, flush_interval_ms, flush_interval_messages if fsync == "interval" else None,
            retention_check_interval_ms, bool(auto_create_topics), num_partitions,
        )
        self.path = None if path is None else os.path.abspath(os.fspath(path))
        self._lock = threading.RLock()
        self._topics: dict[str, Topic] = {}
        self._closed = False
        self._lock_fd = -1
        self._data = DataSignal()  # bumped by every append; consumers wait on it
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self.extensions: dict[str, Any] = {}  # state of the layers above (group coordinator)
        clean = True
        if self.path is not None:
            clean = self._open_directory()
        try:
            details = self._load_topics(clean)
            if self.path is not None:
                # Only now: a failed open must leave the marker for the next attempt.
                self._remove_clean_shutdown_marker()
        except BaseException:
            self._abandon_open()
            raise
        self.recovery = self._report(clean, details, started)
        self._stop = threading.Event()
        self._maintenance = threading.Thread(
            target=self._maintain, name=f"eventlog-maintenance:{self.path or 'memory'}",
            daemon=True,
        )
        self._maintenance.start()

    # ------------------------------------------------------------------ opening

    def _open_directory(self) -> bool:
        assert self.path is not None
        try:
            os.makedirs(self.path, exist_ok=True)
            self._lock_fd = os.open(os.path.join(self.path, lock_file), os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise StorageError(f"cannot open the log directory {self.path}: {exc}") from exc
        try:
            _lock_exclusive(self._lock_fd)
        except OSError as exc:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise LogDirLockedError(
                f"the log directory {self.path} is already open in another EventLog (in this "
                "process or another); close that one first, or open a different directory"
            ) from exc
        if os.path.exists(os.path.join(self.path, clean_shutdown_file)):
            return True  # removed once the open succeeded
        # No marker: a crash, unless the directory never held a topic (nothing to recover).
        return not os.path.exists(os.path.join(self.path, topics_file))

    def _remove_clean_shutdown_marker(self) -> None:
        assert self.path is not None
        try:
            os.unlink(os.path.join(self.path, clean_shutdown_file))
        except FileNotFoundError:
            return
        fsync_dir(self.path)

    def _abandon_open(self) -> None:
        """Undo a failed open: close the partitions opened so far and release the lock,
        so that the directory can be opened again (by this process too)."""
        for topic in self._topics.values():
            _close_quietly(topic.partitions)
        self._topics.clear()
        if self._lock_fd >= 0:
            _unlock(self._lock_fd)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _read_metadata(self) -> list[dict[str, Any]]:
        if self.path is None:
            return []
        try:
            with builtins.open(os.path.join(self.path, topics_file), "rb") as f:
                meta = msgpack.unpackb(f.read())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise StorageError(
                f"cannot read {os.path.join(self.path, topics_file)}: {exc}"
            ) from exc
        if meta.get("format") != metadata_format:
            raise StorageError(f"{topics_file} has unknown format {meta.get('format')!r}")
        return list(meta["topics"])

    def _write_metadata(self) -> None:
        if self.path is None:
            return
        topics = [
            {"name": t.name, "partitions": t.num_partitions, "config": t.config.to_dict()}
            for t in self._topics.values()
        ]
        data = msgpack.packb({"format": metadata_format, "topics": topics})
        atomic_write(os.path.join(self.path, topics_file), data)

    def _load_topics(self, clean: bool) -> dict[TopicPartition, RecoveryReport]:
        details: dict[TopicPartition, RecoveryReport] = {}
        for entry in self._read_metadata():
            config = TopicConfig(**entry["config"])
            partitions: list[Partition] = []
            try:
                for i in range(entry["partitions"]):
                    partitions.append(self._open_partition(entry["name"], i, config, clean=clean))
            except BaseException:
                _close_quietly(partitions)  # the open failed: release what it opened
                raise
            for p in partitions:
                details[p.topic_partition] = p.recovery
            self._topics[entry["name"]] = Topic(entry["name"], config, partitions)
        if self.path is not None:
            self._remove_leftovers()
        return details

    def _remove_leftovers(self) -> None:
        assert self.path is not None
        for name in os.listdir(self.path):
            if ".deleted" in name or name.endswith(".tmp"):
                full = os.path.join(self.path, name)
                if os.path.isdir(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.unlink(full)

    def _partition_dir(self, topic: str, index: int) -> str | None:
        return None if self.path is None else os.path.join(self.path, f"{topic}-{index}")

    def _open_partition(
        self, topic: str, index: int, config: TopicConfig, *, clean: bool
    ) -> Partition:
        log = PartitionLog(
            self._partition_dir(topic, index),
            config,
            now_ms=self.clock.time_ms(),
            clean_shutdown=clean,
            fsync=self._options.fsync,
        )
        return Partition(
            topic,
            index,
            log,
            clock=self.clock,
            signal=self._data,
            flush_interval_messages=self._options.flush_interval_messages,
        )

    def _report(
        self, clean: bool, details: dict[TopicPartition, RecoveryReport], started: float
    ) -> LogRecoveryReport:
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

    # ------------------------------------------------------------------ topics

    def _ensure_open(self) -> None:
        if self._closed:
            where = self.path or "in memory"
            raise ClosedError(f"this EventLog ({where}) is closed; open it again")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def fsync(self) -> str:
        return self._options.fsync

    @property
    def auto_create_topics(self) -> bool:
        return self._options.auto_create_topics

    def create_topic(self, name: str, partitions: int = 1, **config: Any) -> Topic:
        """Create a topic with ``partitions`` partitions and Kafka topic configs.

        Configs not given take the log's ``topic_config`` defaults, then Kafka's.
        Raises TopicExistsError, InvalidConfigError (bad name, count or config):
        nothing is created.
        """
        validate_topic_name(name)
        _check_partition_count(partitions)
        topic_config = self._topic_defaults.replace(**config)
        with self._lock:
            self._ensure_open()
            if name in self._topics:
                raise TopicExistsError(f"topic {name!r} already exists")
            parts = self._create_partitions(name, topic_config, 0, partitions)
            topic = Topic(name, topic_config, parts)
            self._topics[name] = topic
            try:
                self._write_metadata()
            except BaseException:
                del self._topics[name]
                for p in parts:
                    p.close()
                raise
            return topic

    def _create_partitions(
        self, name: str, config: TopicConfig, start: int, stop: int
    ) -> list[Partition]:
        parts = []
        for i in range(start, stop):
            directory = self._partition_dir(name, i)
            if directory is not None and os.path.exists(directory):
                shutil.rmtree(directory)  # a leftover of a crashed create or delete
            parts.append(self._open_partition(name, i, config, clean=False))
        if self.path is not None and self._options.fsync != "never":
            fsync_dir(self.path)
        return parts

    def topic(self, name: str) -> Topic:
        """The topic called ``name``; UnknownTopicError if there is none."""
        self._ensure_open()
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopicError(
                f"unknown topic {name!r}; create it with create_topic({name!r}) "
                "or open the log with auto_create_topics=True"
            ) from None

    def topic_for_produce(self, name: str) -> Topic:
        """The topic, created with the default partition count if auto-creation is on."""
        topic = self._topics.get(name)
        if topic is not None and not self._closed:
            return topic
        self._ensure_open()
        if self._options.auto_create_topics:
            with self._lock:
                if name not in self._topics:
                    return self.create_topic(name, self._options.num_partitions)
                return self._topics[name]
        return self.topic(name)

    @property
    def topic_map(self) -> Mapping[str, Topic]:
        """The live name -> Topic map (read-only by contract; for the client layer's
        per-record lookups, where a method call per record shows)."""
        return self._topics

    def topics(self, *, include_internal: bool = False) -> list[str]:
        """Names of the topics, sorted; internal ones (``__*``) only if asked for."""
        self._ensure_open()
        return sorted(n for n in self._topics if include_internal or not n.startswith("__"))

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its data. UnknownTopicError if there is none."""
        with self._lock:
            topic = self.topic(name)
            del self._topics[name]
            self._announce_topics_changed()
            self._write_metadata()
            for p in topic.partitions:
                p.close()
                directory = self._partition_dir(name, p.index)
                if directory is not None:
                    doomed = f"{directory}.deleted"
                    os.replace(directory, doomed)
                    shutil.rmtree(doomed, ignore_errors=True)

    def create_partitions(self, name: str, total: int) -> Topic:
        """Grow topic ``name`` to ``total`` partitions (Kafka only grows; never shrinks).

        Raises InvalidConfigError if ``total`` is not larger than the current count.
        """
        _check_partition_count(total)
        with self._lock:
            topic = self.topic(name)
            if total <= topic.num_partitions:
                raise InvalidConfigError(
                    f"topic {name!r} has {topic.num_partitions} partitions; create_partitions "
                    f"can only increase the count (got {total}); partitions are never removed"
                )
            topic._extend(self._create_partitions(name, topic.config, topic.num_partitions, total))
            self._announce_topics_changed()
            self._write_metadata()
            return topic

    def partition(self, topic: str, index: int) -> Partition:
        """Shortcut for ``topic(topic).partition(index)``."""
        return self.topic(topic).partition(index)

    def partitions(self) -> list[Partition]:
        """Every partition of every topic, internal ones included."""
        return [p for t in list(self._topics.values()) for p in t.partitions]

    # ------------------------------------------------------------------ data notifications

    @property
    def data_version(self) -> int:
        """A counter that grows with every append (compare before and after a wait)."""
        return self._data.version

    def wait_for_data(self, version: int, timeout_ms: float | None) -> bool:
        """Block until some partition gets an append after ``version`` was read, or
        ``timeout_ms`` passes (on the log's clock). Returns whether data arrived.
        """
        deadline = None if timeout_ms is None else self.clock.monotonic_ms() + timeout_ms
        data = self._data
        with data.cond:
            data.waiters += 1
            try:
                while data.version == version and not self._closed:
                    remaining = None if deadline is None else deadline - self.clock.monotonic_ms()
                    if remaining is not None and remaining <= 0:
                        return False
                    self.clock.wait(data.cond, remaining)
                return data.version != version
            finally:
                data.waiters -= 1

    def wake_waiters(self) -> None:
        """Wake every thread blocked in ``wait_for_data`` (e.g. after a group change)."""
        with self._data.cond:
            self._data.version += 1
            self._data.cond.notify_all()

    # ------------------------------------------------------------------ clients

    def register_client(self, client: Any) -> None:
        """Remember a producer or consumer so ``close()`` closes it first, and tell it
        (its ``_topics_changed()``, if it has one) when a topic is deleted or grows."""
        self._clients.add(client)

    def _announce_topics_changed(self) -> None:
        for client in list(self._clients):
            hook = getattr(client, "_topics_changed", None)
            if hook is not None:
                hook()

    def producer(self, **config: Any) -> Any:
        """A new ``eventlog.Producer`` on this log (see Producer for the configs)."""
        from .producer import Producer  # the client layer sits above

        return Producer(self, **config)

    def consumer(self, *topics: str, **config: Any) -> Any:
        """A new ``eventlog.Consumer`` on this log (see Consumer for the configs)."""
        from .consumer import Consumer  # the client layer sits above

        return Consumer(self, *topics, **config)

    def list_groups(self) -> list[Any]:
        """Every consumer group with members or committed offsets (GroupListing)."""
        from .group.coordinator import list_groups  # the group layer sits above

        self._ensure_open()
        return list_groups(self)

    def describe_group(self, group_id: str) -> Any:
        """State, generation, protocol, members and per-partition lag of one group."""
        from .group.coordinator import describe_group  # the group layer sits above

        self._ensure_open()
        return describe_group(self, group_id)

    # ------------------------------------------------------------------ maintenance

    def run_retention(self, now_ms: int | None = None) -> int:
        """Apply every topic's retention now (Kafka runs it every 5 minutes).

        Returns the number of segments deleted. ``now_ms`` defaults to the clock.
        """
        self._ensure_open()
        now = self.clock.time_ms() if now_ms is None else now_ms
        deleted = 0
        for p in self.partitions():
            if "delete" in p.config.cleanup_policy:
                deleted += p.apply_retention(now)
        return deleted

    def run_compaction(self, now_ms: int | None = None) -> int:
        """Run the log cleaner on every compacted topic's partitions now, where it is due
        (``min_cleanable_dirty_ratio``, ``max_compaction_lag_ms`` or a delete horizon;
        see docs/storage.md). Kafka's cleaner threads check every 15 s; the background
        thread here runs it with retention, every ``retention_check_interval_ms``.

        Returns the number of records removed. ``now_ms`` defaults to the clock.
        Raises CorruptLogError if a segment to clean fails its checksum (that
        partition is left as it was; the others are cleaned first), StorageError if
        the disk fails (a swap it interrupted is completed when the log is reopened).
        """
        return self._compact_all(now_ms, background=False)

    def _compact_all(self, now_ms: int | None, *, background: bool) -> int:
        """Clean every compacted partition. In the ``background`` the storage errors of
        one partition (a corrupt segment, a full disk) are logged and the others go on:
        the partition is tried again at the next interval."""
        self._ensure_open()
        now = self.clock.time_ms() if now_ms is None else now_ms
        removed = 0
        corrupt: CorruptLogError | None = None
        for p in self.partitions():
            if not p.config.compacted:
                continue
            try:
                removed += p.compact(now).records_removed
            except ClosedError:
                if not p.closed:
                    raise  # the partition is open: not a deleted topic
            except StorageError as exc:
                if background:
                    _log.warning("compacting %s-%d failed: %s", p.topic, p.index, exc)
                elif isinstance(exc, CorruptLogError):
                    corrupt = corrupt or exc
                else:
                    raise
        if corrupt is not None:
            raise corrupt
        return removed

    def flush(self) -> None:
        """fsync every partition, whatever the fsync policy."""
        self._ensure_open()
        for p in self.partitions():
            p.flush()

    def _maintain(self) -> None:
        """Background: interval fsyncs, periodic retention and compaction, until close()."""
        opts = self._options
        last_retention = time.monotonic()
        period_ms = min(opts.flush_interval_ms, maintenance_interval_ms_max)
        while not self._stop.wait(period_ms / 1000.0):
            try:
                if opts.fsync == "interval":
                    for p in self.partitions():
                        p.flush()
                if (time.monotonic() - last_retention) * 1000 >= opts.retention_check_interval_ms:
                    last_retention = time.monotonic()
                    self.run_retention()
                    # A partition that cannot be cleaned must not stop the fsyncs and
                    # retention of every other partition.
                    self._compact_all(None, background=True)
            except (ClosedError, StorageError):
                if self._closed:
                    return
                raise

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Close clients (producers flush), then every partition; mark a clean shutdown.

        Idempotent. Every method but ``close`` raises ClosedError afterwards.
        """
        with self._lock:
            if self._closed:
                return
            for client in list(self._clients):
                client.close()
            self._closed = True
        self._stop.set()
        if threading.current_thread() is not self._maintenance:
            self._maintenance.join()
        self.wake_waiters()
        errors = []
        for p in self.partitions():
            try:
                p.close()
            except OSError as exc:
                errors.append(exc)
        if self.path is not None:
            if not errors:
                atomic_write(os.path.join(self.path, clean_shutdown_file), b"")
            _unlock(self._lock_fd)
            os.close(self._lock_fd)
            self._lock_fd = -1
        if errors:
            raise StorageError(f"closing {self.path}: {errors[0]}") from errors[0]

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> None:
        """Assert every partition's invariants."""
        for p in self.partitions():
            p.check()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"topics={len(self._topics)}"
        return f"EventLog({self.path or '<memory>'}, {state})"


def _close_quietly(partitions: Sequence[Partition]) -> None:
    """Close partitions after a failed open: the error that failed it is the one to report."""
    for p in partitions:
        try:
            p.close()
        except OSError:
            pass


def _check_partition_count(count: object) -> None:
    if type(count) is not int or not 1 <= count <= partitions_max:
        raise InvalidConfigError(
            f"partitions must be an int in [1, {partitions_max}], got {count!r}"
        )

