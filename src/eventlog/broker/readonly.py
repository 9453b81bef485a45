"""The read-only broker: a view of an event log that another process holds open for writing.

``eventlog.open(path, read_only=True)`` returns a ReadOnlyEventLog (eventlog/log.py),
this broker with the consumer conveniences: no
lock is taken, no file is created, written or removed. Its topics come from
``topics.msgpack`` (read again when the file is replaced), its partitions are
:class:`ReadOnlyPartition`s over storage's ``FollowedLog``, which follows the end
offset each partition's writer publishes (storage/reader_view.py). Every write
raises ReadOnlyLogError.

New records are noticed when a reader asks: ``data_version`` (read by every
consumer poll) refreshes every partition (three loads from a map each when
nothing changed), and ``wait_for_data`` polls every ``poll_interval_ms`` (0.5 ms)
until something changed, as there is no notification across processes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..clock import Clock, SystemClock
from ..config import TopicConfig
from ..errors import InvalidConfigError, ReadOnlyLogError, StorageError
from ..storage.files import os_files
from ..storage.follower import FollowedLog
from ..storage.key_index import KeyIndex
from .core import Broker, recovery_report
from .log_dir import LogDir, topics_file
from .options import LogOptions
from .partition import Partition
from .topic import Topic

__all__ = ["ReadOnlyBroker", "ReadOnlyPartition", "check_read_only_options", "refused"]

poll_interval_ms = 0.5  # wait_for_data's sleep between two looks: bounds the added latency
metadata_interval_ms = 100  # topics.msgpack is stat()ed at most this often by polls


def refused(what: str, path: str | None) -> ReadOnlyLogError:
    """The ReadOnlyLogError of a write to a read-only log."""
    return ReadOnlyLogError(
        f"cannot {what}: {path} was opened read-only (eventlog.open(..., read_only=True)); "
        "write through the process that holds it, or open it without read_only once "
        "that process has closed it"
    )


class ReadOnlyPartition(Partition):
    """A partition as another process writes it: every read of Partition works, every
    write raises ReadOnlyLogError (nothing changed). ``end_offset`` is the writer's
    last published end, as of the log's last refresh."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise refused(f"write to {self.topic}-{self.index}", self._log.directory)

    append = append_batch = append_columns = append_record = append_internal = _refuse
    append_kafka_records = _refuse
    truncate_to = delete_before = roll = apply_retention = compact = flush = _refuse

    def refresh(self) -> bool:
        """Catch up with the writer (see FollowedLog.refresh). Thread-safe."""
        log = self._log
        assert isinstance(log, FollowedLog)
        return log.refresh()

    def _built_key_index(self) -> KeyIndex:
        """The key index, caught up with what the writer appended since it was built;
        rebuilt if records left the log (the start offset moved)."""
        with self._lock:
            self._ensure_open()
            index = self._key_index
            start = self._log.start_offset
            if index is None or getattr(self, "_key_index_start", None) != start:
                index = KeyIndex(start)
                self._key_index_start = start
            self._index_log(index, self._log.end_offset)
            self._key_index = index
            return index

    def wait_for(self, offset: int, timeout: float | None = None) -> bool:
        """Block until a record at ``offset`` can be read (polling the writer's end)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._log.end_offset <= offset and not self._closed:
            self.refresh()
            if self._log.end_offset > offset:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll_interval_ms / 1000)
        return self._log.end_offset > offset


class ReadOnlyBroker(Broker):
    """A Broker over a directory that another process writes (or none does).

    Thread-safe. Reads work; every write raises ReadOnlyLogError. ``close()`` only
    unmaps. No maintenance thread: nothing is written here.
    """

    read_only = True

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        started = time.perf_counter()
        self.clock = clock if clock is not None else SystemClock()
        self.path = os.path.abspath(os.fspath(path))
        if not os.path.isdir(self.path):
            raise StorageError(f"cannot open {self.path} read-only: no such directory")
        self._topic_defaults = TopicConfig()
        self._options = LogOptions("never", 1000, None, 300_000, False, 1)
        self.files = os_files  # unused: a reader's few calls go to the OS directly
        self._dir = LogDir(self.path)  # read from, never locked or written
        self._init_registry()
        self._refresh_lock = threading.RLock()  # a client hook may ask for a topic
        self._woken = threading.Event()
        self._meta_stamp: tuple[int, int, int] | None = None
        self._meta_checked = 0.0
        self._dirs: dict[str, tuple[int, ...]] = {}  # topic -> inodes of its directories
        try:
            self._refresh_metadata(force=True)
        except BaseException:
            self._close_partitions()
            raise
        details = {p.topic_partition: p.recovery for p in self.partitions()}
        self.recovery = recovery_report(True, details, started)

    # ------------------------------------------------------------------ following

    def _refresh_metadata(self, *, force: bool = False) -> bool:
        """Read ``topics.msgpack`` again if it was replaced. Returns whether topics changed."""
        now = time.monotonic()
        if not force and (now - self._meta_checked) * 1000 < metadata_interval_ms:
            return False
        self._meta_checked = now
        try:
            st = os.stat(os.path.join(self.path, topics_file))
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp == self._meta_stamp:
            return False
        assert self.path is not None
        self._dir.refuse_symlinks([topics_file])
        meta = self._dir.read_metadata()
        self._dir.refuse_symlinks([f"{name}-{i}" for name, count, _ in meta.topics
                                   for i in range(count)])
        changed = self._apply_metadata(meta.topics)
        self._meta_stamp = stamp if self._complete(meta.topics) else None
        if changed:
            self._announce_topics_changed()
        return changed

    def _complete(self, topics: list[tuple[str, int, TopicConfig]]) -> bool:
        return all(name in self._topics and self._topics[name].num_partitions == count
                   for name, count, _config in topics)

    def _apply_metadata(self, topics: list[tuple[str, int, TopicConfig]]) -> bool:
        changed = False
        wanted = {name for name, _count, _config in topics}
        with self._lock:
            for name in [n for n in self._topics if n not in wanted]:
                self._drop_topic(name)
                changed = True
            for name, count, config in topics:
                topic = self._topics.get(name)
                inodes = self._inodes(name, count)
                if topic is not None and (topic.config != config
                                          or self._dirs[name] != inodes[:topic.num_partitions]):
                    self._drop_topic(name)  # deleted and created again meanwhile
                    topic = None
                if topic is not None and topic.num_partitions >= count:
                    continue
                opened = self._open_partitions(name, config, start=0 if topic is None
                                               else topic.num_partitions, stop=count)
                if not opened:
                    continue
                if topic is None:
                    self._topics[name] = Topic(name, config, opened)
                else:
                    topic.add_partitions(opened)
                self._dirs[name] = inodes[: self._topics[name].num_partitions]
                changed = True
        return changed

    def _inodes(self, name: str, count: int) -> tuple[int, ...]:
        assert self.path is not None
        out = []
        for i in range(count):
            try:
                out.append(os.stat(os.path.join(self.path, f"{name}-{i}")).st_ino)
            except FileNotFoundError:
                break
        return tuple(out)

    def _open_partitions(self, name: str, config: TopicConfig, *, start: int,
                         stop: int) -> list[Partition]:
        """The partitions [start, stop) whose directories exist (a topic being created
        may not have them all yet: the rest come at a later refresh)."""
        assert self.path is not None
        opened: list[Partition] = []
        for i in range(start, stop):
            directory = os.path.join(self.path, f"{name}-{i}")
            if not os.path.isdir(directory):
                break
            log = FollowedLog(directory, config, now_ms=self.clock.time_ms())
            opened.append(ReadOnlyPartition(name, i, log, clock=self.clock, signal=self._data))
        return opened

    def _drop_topic(self, name: str) -> None:
        topic = self._topics.pop(name)
        self._dirs.pop(name, None)
        for p in topic.partitions:
            p.close()

    def refresh(self) -> bool:
        """Catch up with the writer now: new records, segments and topics. Returns
        whether anything changed. Thread-safe (one refresh at a time)."""
        self._ensure_open()
        with self._refresh_lock:
            changed = self._refresh_metadata()
            for p in self.partitions():
                if not p.closed and p.refresh():  # type: ignore[attr-defined]
                    changed = True
            if changed:
                self._data.bump()
        return changed

    # ------------------------------------------------------------------ reading

    def topic(self, name: str) -> Topic:
        """The topic ``name``; topics.msgpack is read again first if it names none."""
        if name not in self._topics and not self._closed:
            with self._refresh_lock:
                self._refresh_metadata(force=True)
        return super().topic(name)

    def topic_for_produce(self, name: str) -> Topic:
        raise refused(f"produce to {name!r}", self.path)

    def topics(self, *, include_internal: bool = False) -> list[str]:
        self._ensure_open()
        with self._refresh_lock:
            self._refresh_metadata(force=True)
        return super().topics(include_internal=include_internal)

    @property
    def data_version(self) -> int:
        """Refreshes every partition first (see the module docstring)."""
        if not self._closed:
            self.refresh()
        return self._data.version

    def wait_for_data(self, version: int, timeout_ms: float | None) -> bool:
        """Poll the writers every ``poll_interval_ms`` until something changed after
        ``version`` was read, ``timeout_ms`` passed (on the log's clock), or close."""
        deadline = None if timeout_ms is None else self.clock.monotonic_ms() + timeout_ms
        while not self._closed:
            if self.refresh() or self._data.version != version:
                return True
            if deadline is not None and self.clock.monotonic_ms() >= deadline:
                return False
            if self._woken.wait(poll_interval_ms / 1000):
                self._woken.clear()
        return self._data.version != version

    def wake_waiters(self) -> None:
        """Wake every thread polling in ``wait_for_data``."""
        self._data.bump()
        self._woken.set()

    def register_maintenance(self, task: Any) -> None:
        """Nothing: a read-only view runs no maintenance (its writer does)."""

    # ------------------------------------------------------------------ refused

    def create_topic(self, name: str, *args: Any, **kwargs: Any) -> Topic:
        raise refused(f"create topic {name!r}", self.path)

    def create_internal_topic(self, name: str, partitions: int, **config: Any) -> Topic:
        raise refused(f"create topic {name!r}", self.path)

    def delete_topic(self, name: str) -> None:
        raise refused(f"delete topic {name!r}", self.path)

    def create_partitions(self, name: str, total: int) -> Topic:
        raise refused(f"add partitions to {name!r}", self.path)

    def run_retention(self, now_ms: int | None = None) -> int:
        raise refused("run retention", self.path)

    def run_compaction(self, now_ms: int | None = None) -> int:
        raise refused("run compaction", self.path)

    def flush(self) -> None:
        raise refused("flush", self.path)

    # ------------------------------------------------------------------ lifecycle

    def _close_partitions(self) -> None:
        for p in self.partitions():
            p.close()

    def close(self) -> None:
        """Close the consumers on this view, then unmap every file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            for client in list(self._clients):
                client.close()
            self._closed = True
        self.wake_waiters()
        with self._refresh_lock:
            self._close_partitions()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"topics={len(self._topics)}"
        return f"ReadOnlyEventLog({self.path}, {state})"



def check_read_only_options(path: Any, options: Mapping[str, Any]) -> None:
    """What ``eventlog.open(path, read_only=True, ...)`` refuses: no path, or any writer
    option (``options``: name -> whether it was given); only ``clock`` applies."""
    if path is None:
        raise StorageError("read_only=True needs a data directory: an in-memory log "
                           "has no other process to read it from")
    given = sorted(k for k, v in options.items() if v)
    if given:
        raise InvalidConfigError(
            f"{', '.join(given)} cannot be set on a read-only log (they configure the "
            "writer); open it without them"
        )


