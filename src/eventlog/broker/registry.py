"""TopicRegistry: the topics of one log and their partitions: create, grow, delete, look up.

The registry records every change in the data directory first (log_dir.py: a crash
at any point leaves a directory that opens with the old or the new set of topics)
and opens each partition's storage log. Broker (core.py) adds opening, closing,
clients and maintenance.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from ..clock import Clock
from ..config import TopicConfig
from ..errors import (
    ClosedError,
    InvalidConfigError,
    InvalidTopicError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)
from ..storage.files import Files, with_errno
from ..storage.partition_log import PartitionLog
from .log_dir import LogDir, TopicCounts, check_partition_count, topics_file
from .options import LogOptions
from .partition import InternalPartition, Partition
from .signal import DataSignal
from .topic import Topic, internal_topics, validate_topic_name

__all__ = ["TopicRegistry"]

_log = logging.getLogger("eventlog.broker")


class TopicRegistry:
    """The topics of one log, by name, and their partitions. Thread-safe (the log's
    lock). The base of Broker, which sets the attributes below when it opens."""

    path: str | None
    clock: Clock
    files: Files
    _dir: LogDir | None
    _options: LogOptions
    _topic_defaults: TopicConfig
    _topics: dict[str, Topic]
    _lock: threading.RLock
    _data: DataSignal
    _closed: bool

    def __init__(self) -> None:
        raise TypeError("TopicRegistry is the base of Broker: use eventlog.open()")

    def _announce_topics_changed(self) -> None:
        """A topic was deleted or grew (Broker tells its clients)."""

    def _counts(self, changes: TopicCounts | None = None) -> dict[str, tuple[int, TopicConfig]]:
        """name -> (partition count, config) of the topics, with ``changes`` applied."""
        counts = {name: (t.num_partitions, t.config) for name, t in self._topics.items()}
        counts.update(changes or {})
        return counts

    def _write_metadata(self, changes: TopicCounts | None = None) -> None:
        """Replace ``topics.msgpack`` with the topics, ``changes`` applied."""
        if self._dir is not None:
            self._dir.write_metadata(self._counts(changes))


    def _open_partition(
        self, topic: str, index: int, config: TopicConfig, *, clean: bool
    ) -> Partition:
        log = PartitionLog(
            None if self._dir is None else self._dir.partition_dir(topic, index),
            config,
            now_ms=self.clock.time_ms(),
            clean_shutdown=clean,
            fsync=self._options.fsync,
            files=self.files,
        )
        cls = InternalPartition if topic in internal_topics else Partition
        return cls(
            topic,
            index,
            log,
            clock=self.clock,
            signal=self._data,
            flush_interval_messages=self._options.flush_interval_messages,
        )

    # ------------------------------------------------------------------ state

    def ensure_open(self) -> None:
        """Raise ClosedError if the log is closed.

        Cost: O(1).
        Thread safety: any thread.
        Raises: ClosedError once ``close()`` began closing the partitions.
        """
        if self._closed:
            where = self.path or "in memory"
            raise ClosedError(f"this EventLog ({where}) is closed; open it again")

    _ensure_open = ensure_open

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def fsync(self) -> str:
        return self._options.fsync

    @property
    def auto_create_topics(self) -> bool:
        return self._options.auto_create_topics

    # ------------------------------------------------------------------ topics

    def create_topic(
        self, name: str, partitions: int = 1, *, exist_ok: bool = False, **config: Any
    ) -> Topic:
        """Create a topic with ``partitions`` partitions and Kafka topic configs.

        Configs not given take the log's ``topic_config`` defaults, then Kafka's.
        ``exist_ok=True`` (as ``os.makedirs``): if the topic exists with this many
        partitions and the configs given, return it instead of raising, so setup
        code can run on every start.

        Cost: one write of ``topics.msgpack`` and a directory per partition.
        Thread safety: thread-safe (the log's lock).
        Raises: TopicExistsError (it exists, and ``exist_ok`` is false or it differs
        from what was asked, naming the difference), InvalidConfigError (bad name,
        count or config), InvalidTopicError (the name of an internal topic, e.g.
        ``__consumer_offsets``), StorageError: nothing is created or changed then.
        """
        validate_topic_name(name)
        if name in internal_topics:
            raise InvalidTopicError(
                f"cannot create internal topic {name!r}: eventlog creates it when it needs "
                "it (__consumer_offsets at the first group operation); pick another name"
            )
        return self._create_topic(name, partitions, config, exist_ok=exist_ok)

    def create_internal_topic(self, name: str, partitions: int, **config: Any) -> Topic:
        """Create internal topic ``name`` (one of ``topic.internal_topics``), for
        eventlog's own layers (``group/offsets.py``).

        Cost: as ``create_topic``.
        Thread safety: thread-safe.
        Raises: InvalidTopicError for another name; otherwise as ``create_topic``.
        """
        if name not in internal_topics:
            raise InvalidTopicError(f"{name!r} is not an internal topic; use create_topic()")
        return self._create_topic(name, partitions, config)

    def _create_topic(
        self, name: str, partitions: int, config: dict[str, Any], *, exist_ok: bool = False
    ) -> Topic:
        check_partition_count(partitions)
        if not isinstance(exist_ok, bool):
            raise InvalidConfigError(f"exist_ok must be a bool, got {exist_ok!r}")
        topic_config = self._topic_defaults.replace(**config)
        with self._lock:
            self._ensure_open()
            existing = self._topics.get(name)
            if existing is not None:
                if exist_ok:
                    return _same_topic(existing, partitions, topic_config, config)
                raise TopicExistsError(
                    f"topic {name!r} already exists; pass exist_ok=True to use it as it is"
                )
            parts = self._add_partitions(name, topic_config, 0, partitions)
            topic = Topic(name, topic_config, parts)
            self._topics[name] = topic
            return topic

    def _add_partitions(
        self, name: str, config: TopicConfig, start: int, stop: int
    ) -> list[Partition]:
        """Make partitions ``start..stop-1`` of topic ``name``: the metadata first (naming
        ``stop`` partitions), then the directories. A crash in between leaves a topic
        whose missing partitions open empty; a failure is undone (what was made is
        listed as being deleted and removed), so the call changes nothing."""
        if self._dir is not None:
            self._dir.clear_leftovers(name, start, stop)
        self._write_metadata_or_restore({name: (stop, config)})
        try:
            return self._create_partitions(name, config, start, stop)
        except BaseException:
            if self._dir is not None:
                made = [f"{name}-{i}" for i in range(start, stop)]
                self._dir.deleting.extend(made)
                try:
                    self._write_metadata()
                except OSError as exc:
                    _log.error("cannot undo the metadata of the failed creation of %s-%d..%d;"
                               " the log will open with them, empty: %s",
                               name, start, stop - 1, exc)
                else:
                    for directory in made:
                        self._dir.discard(directory)
            raise

    def _write_metadata_or_restore(self, changes: TopicCounts | None = None) -> None:
        """Write the metadata; if that fails, try to put back what it was (a failure
        after the rename would leave the new file), and raise StorageError."""
        try:
            self._write_metadata(changes)
        except OSError as exc:
            self._metadata_failed(exc)

    def _metadata_failed(self, exc: OSError) -> NoReturn:
        """Put back the metadata the in-memory state describes (best effort: a write
        that failed after its rename left the new file), then raise StorageError."""
        try:
            self._write_metadata()
        except OSError:
            pass
        if isinstance(exc, StorageError):
            raise exc
        raise with_errno(exc, f"cannot write {os.path.join(str(self.path), topics_file)}: "
                         f"{exc}; nothing was changed") from exc

    def _create_partitions(
        self, name: str, config: TopicConfig, start: int, stop: int
    ) -> list[Partition]:
        parts: list[Partition] = []
        try:
            for i in range(start, stop):
                parts.append(self._open_partition(name, i, config, clean=False))
            if self._dir is not None and self._options.fsync != "never":
                self._dir.fsync()
        except BaseException as exc:
            for p in parts:
                try:
                    p.close()
                except OSError:
                    pass
            if isinstance(exc, OSError) and not isinstance(exc, StorageError):
                raise with_errno(
                    exc, f"cannot create the partitions of topic {name!r}: {exc}; nothing was "
                    "created"
                ) from exc
            raise
        return parts

    def topic(self, name: str) -> Topic:
        """The topic called ``name``.

        Cost: one dict lookup.
        Thread safety: any thread.
        Raises: UnknownTopicError if there is none, ClosedError.
        """
        self._ensure_open()
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopicError(
                f"unknown topic {name!r}; create it with create_topic({name!r}) "
                "or open the log with auto_create_topics=True"
            ) from None

    def topic_for_produce(self, name: str) -> Topic:
        """The topic, created with the default partition count if auto-creation is on.

        Cost: one dict lookup (a ``create_topic`` the first time, with auto-creation).
        Thread safety: thread-safe.
        Raises: InvalidTopicError for an internal topic (clients cannot produce to
        it), UnknownTopicError without auto-creation, ClosedError.
        """
        topic = self._topics.get(name)
        if topic is not None and not self._closed and not topic.internal:
            return topic
        self._ensure_open()
        if name in internal_topics:
            raise InvalidTopicError(
                f"Cannot append to internal topic {name!r}: it is written only by eventlog "
                "itself (commit offsets through a Consumer instead)"
            )
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
        """Names of the topics, sorted; internal ones (``__*``) only if asked for.

        Cost: O(topics log topics).
        Thread safety: any thread.
        Raises: ClosedError.
        """
        self._ensure_open()
        return sorted(n for n in self._topics if include_internal or not n.startswith("__"))

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its data.

        The deletion is recorded in ``topics.msgpack`` first, then the partitions are
        closed and their directories removed; a directory that cannot be removed now
        is removed at the next open. Producers routing to it are told.

        Cost: one write of ``topics.msgpack``, a directory removal per partition.
        Thread safety: thread-safe.
        Raises: UnknownTopicError if there is none, InvalidTopicError for an internal
        topic (it holds every group's offsets), StorageError if the metadata cannot be
        written (nothing changed then).
        """
        with self._lock:
            topic = self.topic(name)
            if topic.internal:
                raise InvalidTopicError(
                    f"cannot delete internal topic {name!r}: it holds eventlog's own state "
                    "(the committed offsets of every consumer group); delete a group's "
                    "offsets with eventlog.group.coordinator.delete_group()"
                )
            dirs = [f"{name}-{p.index}" for p in topic.partitions]
            topics_before = dict(self._topics)
            deleting_before = None if self._dir is None else list(self._dir.deleting)
            del self._topics[name]
            if self._dir is not None:
                self._dir.deleting.extend(dirs)
            try:
                self._write_metadata()
            except OSError as exc:
                self._topics.clear()  # in place: topic_map hands out this dict
                self._topics.update(topics_before)
                if self._dir is not None and deleting_before is not None:
                    self._dir.deleting = deleting_before
                self._metadata_failed(exc)
            self._announce_topics_changed()
            for p in topic.partitions:
                try:
                    p.close()
                except OSError as exc:
                    _log.warning("closing %s-%d of the deleted topic: %s", name, p.index, exc)
            if self._dir is not None:
                for directory in dirs:
                    self._dir.discard(directory)

    def create_partitions(self, name: str, total: int) -> Topic:
        """Grow topic ``name`` to ``total`` partitions (Kafka only grows; never shrinks).

        Cost: one write of ``topics.msgpack``, a directory per new partition.
        Thread safety: thread-safe.
        Raises: InvalidConfigError if ``total`` is not larger than the current count,
        UnknownTopicError, StorageError if the disk fails (nothing changed then).
        """
        check_partition_count(total)
        with self._lock:
            topic = self.topic(name)
            if total <= topic.num_partitions:
                raise InvalidConfigError(
                    f"topic {name!r} has {topic.num_partitions} partitions; create_partitions "
                    f"can only increase the count (got {total}); partitions are never removed"
                )
            topic.add_partitions(
                self._add_partitions(name, topic.config, topic.num_partitions, total))
            self._announce_topics_changed()
            return topic

    def partition(self, topic: str, index: int) -> Partition:
        """Shortcut for ``topic(topic).partition(index)``.

        Cost: two lookups.
        Thread safety: any thread.
        Raises: UnknownTopicError, UnknownPartitionError, ClosedError.
        """
        return self.topic(topic).partition(index)

    def partitions(self) -> list[Partition]:
        """Every partition of every topic, internal ones included.

        Cost: O(partitions).
        Thread safety: any thread.
        Raises: nothing.
        """
        return [p for t in list(self._topics.values()) for p in t.partitions]


def _same_topic(topic: Topic, partitions: int, config: TopicConfig, given: dict[str, Any]
                ) -> Topic:
    """``topic`` if it has ``partitions`` and the values of the ``given`` configs;
    TopicExistsError naming each difference if not."""
    differences = [
        f"{field}={getattr(topic.config, field)!r} (asked {getattr(config, field)!r})"
        for field in sorted(given)
        if getattr(topic.config, field) != getattr(config, field)
    ]
    if topic.num_partitions != partitions:
        differences.insert(0, f"{topic.num_partitions} partition(s) (asked {partitions})")
    if differences:
        raise TopicExistsError(
            f"topic {topic.name!r} already exists with {', '.join(differences)}; "
            "exist_ok=True only returns a topic that matches"
        )
    return topic
