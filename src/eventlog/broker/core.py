"""EventLog: the in-process broker over one data directory (or over memory).

Files in the data directory::

    LOCK              flock()ed while an EventLog is open, after the directory itself
                      (which holds even if LOCK is deleted): a second one fails at once
    .clean-shutdown   written by close(), removed once an open succeeded: its presence
                      means the files need no recovery scan
    topics.msgpack    topic names, partition counts and configs, and the partition
                      directories still being deleted (replaced atomically)
    TOPIC-N/          one directory per partition (see storage/partition_log.py)
    ~deleting-HEX/    a deleted partition's directory, renamed on its way out ('~'
                      is in no topic name)

Order of writes, so a crash at any point leaves a directory that opens with
either the old or the new set of topics and nothing orphaned: creating a topic
(or partitions) records it in ``topics.msgpack`` first and then makes the
directories (a crash in between leaves partitions that open empty); deleting
one records its absence, with its directories listed under ``deleting``, then
renames each directory to ``~deleting-HEX`` and removes it. Opening removes
``~deleting-*`` directories and the listed ones that no topic names, and
nothing else: a directory named by no topic and not listed is left alone (it
is replaced if a topic of that name is created).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn

import msgpack

from ..clock import Clock, SystemClock
from ..config import FSYNC_POLICIES, TopicConfig
from ..errors import (
    ClosedError,
    CorruptLogError,
    InvalidConfigError,
    InvalidTopicError,
    LogDirLockedError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)
from ..metrics.counters import MaintenanceCounters
from ..records import TopicPartition
from ..storage.files import (
    Files,
    atomic_write,
    fsync_dir,
    os_files,
    storage_error,
    with_errno,
)
from ..storage.partition_log import DamagedRange, PartitionLog, RecoveryReport
from .partition import DataSignal, InternalPartition, Partition
from .topic import Topic, internal_topics, validate_topic_name

__all__ = ["EventLog", "LogRecoveryReport", "open"]

_log = logging.getLogger("eventlog.broker")

lock_file = "LOCK"
clean_shutdown_file = ".clean-shutdown"
topics_file = "topics.msgpack"
metadata_format = 1
partitions_max = 10_000  # per topic; a directory each
flush_interval_ms_default = 1000
maintenance_interval_ms_max = 1000


deleting_prefix = "~deleting-"  # '~' is outside [a-zA-Z0-9._-]: no topic has this name
# A partition directory: a legal topic name, '-', the index (no leading zeros).
_partition_dir = re.compile(r"[a-zA-Z0-9._-]{1,249}-(?:0|[1-9][0-9]{0,4})")
# What versions before 0.x named a partition directory being deleted.
_old_deleted_dir = re.compile(r"[a-zA-Z0-9._-]{1,249}-(?:0|[1-9][0-9]{0,4})\.deleted")
_temp_files = (topics_file + ".tmp", clean_shutdown_file + ".tmp")  # atomic_write's
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_directory(path: str) -> tuple[int, ...]:
        """Lock ``path/LOCK`` (Windows cannot lock a directory); LogDirLockedError if held."""
        fd = os.open(os.path.join(path, lock_file), os.O_RDWR | os.O_CREAT)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            os.close(fd)
            raise _locked_error(path) from exc
        return (fd,)

    def _unlock_directory(fds: tuple[int, ...]) -> None:
        for fd in fds:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            os.close(fd)

else:
    import fcntl

    def _lock_directory(path: str) -> tuple[int, ...]:
        """flock() the directory itself and then ``path/LOCK``, without waiting.

        The directory's lock is what excludes a second EventLog: it holds even if
        ``LOCK`` is deleted or replaced while the log is open. ``LOCK`` is still
        locked, second, for versions that lock only that file.
        Raises LogDirLockedError if another holder has either.
        """
        fds: list[int] = []
        try:
            fds.append(os.open(path, os.O_RDONLY | _O_DIRECTORY))
            fds.append(os.open(os.path.join(path, lock_file),
                               os.O_RDWR | os.O_CREAT | _O_NOFOLLOW, 0o644))
            for fd in fds:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError as exc:
                    raise _locked_error(path) from exc
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return tuple(fds)

    def _unlock_directory(fds: tuple[int, ...]) -> None:
        for fd in reversed(fds):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _locked_error(path: str) -> LogDirLockedError:
    return LogDirLockedError(
        f"the log directory {path} is already open in another EventLog (in this "
        "process or another); close that one first, or open a different directory"
    )


def _refuse_symlinks(directory: str, names: Iterable[str]) -> None:
    """StorageError if an entry of the data directory that eventlog reads or writes is
    a symbolic link: following it would read or write files outside the directory."""
    for name in names:
        path = os.path.join(directory, name)
        if os.path.islink(path):
            raise StorageError(
                errno.ELOOP,
                f"{path} is a symbolic link (to {os.readlink(path)!r}); eventlog does not "
                "follow links inside its data directory: replace it with the file or "
                "directory itself, or move it away"
            )


def _remove_entry(path: str, files: Files = os_files) -> None:
    """Remove a file, a symbolic link (never what it points to) or a directory tree."""
    if os.path.isdir(path) and not os.path.islink(path):
        files.rmtree(path)
    else:
        files.unlink(path)


def _rename(source: str, target: str, files: Files = os_files) -> None:
    files.rename(source, target)


class _Metadata(NamedTuple):
    """``topics.msgpack`` decoded and validated."""

    topics: list[tuple[str, int, TopicConfig]]  # name, partition count, config
    deleting: Sequence[str]  # partition directories being deleted


def _decode_metadata(data: bytes, path: str) -> _Metadata:
    """Decode ``topics.msgpack`` and validate every entry as ``create_topic`` validates
    its arguments. CorruptLogError naming the file and the entry if anything is off:
    the names become paths, so a bad one could reach outside the data directory."""
    def corrupt(what: str, cause: BaseException | None = None) -> CorruptLogError:
        error = CorruptLogError(
            f"{path} is damaged: {what}. Restore it from a backup, or fix the entry; "
            "nothing was opened"
        )
        error.__cause__ = cause
        return error

    try:
        meta = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # ExtraData, FormatError, StackError, UnicodeDecodeError, ...
        raise corrupt(f"not msgpack ({exc})", exc) from exc
    if not isinstance(meta, dict):
        raise corrupt(f"a {type(meta).__name__}, not a map")
    fmt = meta.get("format")
    if type(fmt) is not int or fmt != metadata_format:
        raise corrupt(f"unknown format {fmt!r:.40} (this version reads {metadata_format})")
    entries = meta.get("topics")
    if not isinstance(entries, list):
        raise corrupt(f"'topics' is {type(entries).__name__}, not an array")
    topics: list[tuple[str, int, TopicConfig]] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        label = f"topic entry {i}"
        if not isinstance(entry, dict) or set(entry) != {"name", "partitions", "config"}:
            raise corrupt(f"{label} is not a map of name, partitions and config: {entry!r:.80}")
        name, count, config = entry["name"], entry["partitions"], entry["config"]
        if isinstance(name, str):
            label = f"{label} ({name!r:.260})"
        try:
            validate_topic_name(name)
            _check_partition_count(count)
            if not isinstance(config, dict):
                raise InvalidConfigError(f"config is {type(config).__name__}, not a map")
            topic_config = TopicConfig.from_mapping(config)
        except InvalidConfigError as exc:
            raise corrupt(f"{label}: {exc}", exc) from exc
        if name in seen:
            raise corrupt(f"{label}: the topic is listed twice")
        seen.add(name)
        topics.append((name, count, topic_config))
    deleting = meta.get("deleting", [])
    if not isinstance(deleting, list) or not all(
        isinstance(d, str) and _partition_dir.fullmatch(d) for d in deleting
    ):
        raise corrupt(f"'deleting' is not an array of partition directories: {deleting!r:.80}")
    return _Metadata(topics, tuple(deleting))


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

    Raises LogDirLockedError if another EventLog has the directory open,
    InvalidConfigError for bad or unknown options, CorruptLogError if
    ``topics.msgpack`` is damaged, StorageError if the directory cannot be used
    (or an entry of it is a symbolic link). After a crash the log is recovered
    (never raises for a torn tail); see ``EventLog.recovery``.
    """
    if read_only is not False:
        if read_only is not True:
            raise InvalidConfigError(f"read_only must be True or False, got {read_only!r}")
        from .readonly import open_read_only  # the read-only view sits above the broker

        _check_option_names(unknown)
        return open_read_only(path, clock=clock, options={
            "fsync": fsync != "never",
            "flush_interval_ms": flush_interval_ms != flush_interval_ms_default,
            "flush_interval_messages": flush_interval_messages is not None,
            "retention_check_interval_ms": retention_check_interval_ms != 300_000,
            "auto_create_topics": auto_create_topics,
            "num_partitions": num_partitions != 1,
            "topic_config": topic_config is not None,
            "files": files is not None,
        })
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


_option_names = (
    "path", "clock", "fsync", "flush_interval_ms", "flush_interval_messages",
    "retention_check_interval_ms", "auto_create_topics", "num_partitions", "topic_config",
    "files", "read_only",
)


def _check_option_names(unknown: Mapping[str, Any]) -> None:
    """An unknown keyword of open() is an InvalidConfigError naming it (not Python's
    TypeError), with a hint when it is a topic config given at the wrong level."""
    if not unknown:
        return
    names = sorted(unknown)
    hint = ""
    if set(names) <= set(TopicConfig.__dataclass_fields__):
        args = ", ".join(f"{n!r}: {unknown[n]!r}" for n in names)
        what = "is a topic config" if len(names) == 1 else "are topic configs"
        hint = (f"; {', '.join(names)} {what}: pass topic_config={{{args}}} for every "
                "topic, or give it to create_topic()")
    raise InvalidConfigError(
        f"unknown option {', '.join(names)} of eventlog.open(){hint}; "
        f"known options: {', '.join(_option_names)}"
    )


def _validate_options(
    path: object,
    clock: object,
    fsync: str,
    flush_interval_ms: int,
    flush_interval_messages: int | None,
    retention_check_interval_ms: int,
    auto_create_topics: object,
    num_partitions: int,
    topic_config: object,
    files: object = None,
) -> None:
    if files is not None and not isinstance(files, Files):
        raise InvalidConfigError(
            f"files must be an eventlog Files object (e.g. eventlog.testing.FaultyFiles()) "
            f"or None, got {type(files).__name__}"
        )
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise InvalidConfigError(
            f"path must be a str or os.PathLike (or None: in memory), got "
            f"{type(path).__name__} {path!r}"
        )
    if clock is not None and not isinstance(clock, Clock):
        raise InvalidConfigError(
            f"clock must be a Clock (time_ms, monotonic_ms, wait), e.g. "
            f"eventlog.testing.ManualClock(), got {type(clock).__name__}"
        )
    if type(auto_create_topics) is not bool:
        raise InvalidConfigError(
            f"auto_create_topics must be True or False, got {auto_create_topics!r}"
        )
    if topic_config is not None and not isinstance(topic_config, Mapping):
        raise InvalidConfigError(
            "topic_config must be a mapping of topic config names to values, got "
            f"{type(topic_config).__name__} {topic_config!r}"
        )
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

    read_only = False  # True for the view of another process's log (eventlog.readonly)

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
        _check_option_names(unknown)
        _validate_options(
            path, clock, fsync, flush_interval_ms, flush_interval_messages,
            retention_check_interval_ms, auto_create_topics, num_partitions, topic_config,
            files,
        )
        self.files: Files = files if files is not None else os_files
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._topic_defaults = TopicConfig.from_mapping(dict(topic_config or {}))
        self._options = _Options(
            fsync, flush_interval_ms, flush_interval_messages if fsync == "interval" else None,
            retention_check_interval_ms, auto_create_topics, num_partitions,
        )
        self.path = None if path is None else os.path.abspath(os.fspath(path))
        self._lock = threading.RLock()
        self._topics: dict[str, Topic] = {}
        self._closed = False
        self._closer: threading.Thread | None = None  # the thread inside close()
        self._close_done = threading.Event()  # set when that close() returns
        self._lock_fds: tuple[int, ...] = ()  # the directory's and LOCK's, both flock()ed
        self._deleting: list[str] = []  # partition directories being deleted (see module doc)
        self._data = DataSignal()  # bumped by every append; consumers wait on it
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self.extensions: dict[str, Any] = {}  # state of the layers above (group coordinator)
        self.maintenance_counters = MaintenanceCounters()  # for metrics()
        clean = True
        try:
            if self.path is not None:
                clean = self._open_directory()
            details = self._load_topics(clean)
            if self.path is not None:
                # Only now: a failed open must leave the marker for the next attempt.
                self._remove_clean_shutdown_marker()
        except OSError as exc:
            self._abandon_open()
            if isinstance(exc, StorageError):
                raise
            raise with_errno(exc, f"cannot open the log in {self.path}: {exc}") from exc
        except BaseException:
            self._abandon_open()
            raise
        self.recovery = self._report(clean, details, started)
        try:
            # Complete or abort the transactions a crash left open (group/txn_coordinator.py),
            # before anyone reads: no transaction is ever left half-visible.
            from ..group.txn_coordinator import recover_if_needed
            recover_if_needed(self)
        except BaseException:
            for p in self.partitions():
                try:
                    p.close()
                except OSError:
                    pass
            self._abandon_open()
            raise
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
            _refuse_symlinks(self.path, (lock_file, clean_shutdown_file, topics_file))
            self._lock_fds = _lock_directory(self.path)
        except OSError as exc:
            if isinstance(exc, StorageError):
                raise
            raise with_errno(exc, f"cannot open the log directory {self.path}: {exc}") from exc
        if os.path.exists(os.path.join(self.path, clean_shutdown_file)):
            return True  # removed once the open succeeded (_remove_clean_shutdown_marker)
        # No marker: a crash, unless the directory never held a topic (nothing to recover).
        return not os.path.exists(os.path.join(self.path, topics_file))

    def _remove_clean_shutdown_marker(self) -> None:
        assert self.path is not None
        try:
            self.files.unlink(os.path.join(self.path, clean_shutdown_file))
        except FileNotFoundError:
            return
        fsync_dir(self.path, files=self.files)

    def _release_directory(self) -> None:
        if self._lock_fds:
            _unlock_directory(self._lock_fds)
            self._lock_fds = ()

    def _abandon_open(self) -> None:
        """Undo a failed open (``_load_topics`` closed what it opened): release the lock."""
        self._topics.clear()
        if self.path is not None:
            self._release_directory()

    def _read_metadata(self) -> _Metadata:
        if self.path is None:
            return _Metadata([], ())
        path = os.path.join(self.path, topics_file)
        try:
            data = self.files.read_file(path)
        except FileNotFoundError:
            return _Metadata([], ())
        except OSError as exc:
            raise storage_error(exc, f"read {path}", path, files=self.files) from exc
        return _decode_metadata(data, path)

    def _write_metadata(
        self, changes: Mapping[str, tuple[int, TopicConfig]] | None = None
    ) -> None:
        """Replace ``topics.msgpack`` with the topics, where ``changes`` (name ->
        partition count, config) overrides or adds entries, and the partition
        directories still being deleted."""
        if self.path is None:
            return
        entries = {name: (t.num_partitions, t.config) for name, t in self._topics.items()}
        entries.update(changes or {})
        topics = [
            {"name": name, "partitions": count, "config": config.to_dict()}
            for name, (count, config) in entries.items()
        ]
        meta: dict[str, Any] = {"format": metadata_format, "topics": topics}
        deleting = self._pending_deletions(changes)
        if deleting:
            meta["deleting"] = deleting
        atomic_write(os.path.join(self.path, topics_file), msgpack.packb(meta), files=self.files)
        self._deleting = deleting

    def _pending_deletions(
        self, changes: Mapping[str, tuple[int, TopicConfig]] | None = None
    ) -> list[str]:
        """The directories of deleted partitions not removed yet (still on disk, and not
        the directory of a partition that exists again)."""
        assert self.path is not None
        named = self._named_dirs(changes)
        return sorted(
            name for name in set(self._deleting)
            if name not in named and os.path.lexists(os.path.join(self.path, name))
        )

    def _named_dirs(
        self, changes: Mapping[str, tuple[int, TopicConfig]] | None = None
    ) -> set[str]:
        counts = {name: t.num_partitions for name, t in self._topics.items()}
        counts.update({name: count for name, (count, _) in (changes or {}).items()})
        return {f"{name}-{i}" for name, count in counts.items() for i in range(count)}

    def _load_topics(self, clean: bool) -> dict[TopicPartition, RecoveryReport]:
        details: dict[TopicPartition, RecoveryReport] = {}
        meta = self._read_metadata()
        self._deleting = list(meta.deleting)
        if self.path is not None:
            _refuse_symlinks(self.path, [
                f"{name}-{i}" for name, count, _ in meta.topics for i in range(count)
            ])
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
        if self.path is not None:
            self._remove_leftovers()
        return details

    def _remove_leftovers(self) -> None:
        """Remove what a crash left behind, and only what is provably ours and orphaned:
        directories renamed to ``~deleting-*`` (no topic can have a ``~``), directories
        that ``topics.msgpack`` lists as being deleted (and names as no partition), old
        ``TOPIC-N.deleted`` directories of earlier versions, and the two temp files of
        atomic_write. Anything else not named by ``topics.msgpack`` is left alone."""
        assert self.path is not None
        named = self._named_dirs()
        deleting = set(self._deleting)
        leftovers = [
            name for name in os.listdir(self.path)
            if name not in named and (
                name.startswith(deleting_prefix)
                or name in deleting
                or _old_deleted_dir.fullmatch(name) is not None
                or name in _temp_files
            )
        ]
        for name in sorted(
            n for n in os.listdir(self.path)
            if n not in named and n not in leftovers and _partition_dir.fullmatch(n)
        ):
            _log.warning("%s looks like a partition directory, but topics.msgpack names no "
                         "such partition and does not list it as deleted: left alone (an "
                         "earlier version's crash may have left it; remove it if you do not "
                         "need it)", os.path.join(self.path, name))
        for name in sorted(leftovers):
            try:
                _remove_entry(os.path.join(self.path, name), self.files)
            except OSError as exc:
                _log.warning("cannot remove the leftover %s: %s", os.path.join(self.path, name),
                             exc)
        if deleting and self._pending_deletions() != sorted(deleting):
            try:
                self._write_metadata()  # forget what is gone; not needed for correctness
            except OSError as exc:
                _log.warning("cannot update %s after removing leftovers: %s",
                             os.path.join(self.path, topics_file), exc)

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

    def create_topic(
        self, name: str, partitions: int = 1, *, exist_ok: bool = False, **config: Any
    ) -> Topic:
        """Create a topic with ``partitions`` partitions and Kafka topic configs.

        Configs not given take the log's ``topic_config`` defaults, then Kafka's.
        ``exist_ok=True`` (as ``os.makedirs``): if the topic exists with this many
        partitions and the configs given, return it instead of raising, so setup
        code can run on every start.
        Raises TopicExistsError (it exists, and ``exist_ok`` is false or it differs
        from what was asked, naming the difference), InvalidConfigError (bad name,
        count or config), InvalidTopicError (the name of an internal topic, e.g.
        ``__consumer_offsets``): nothing is created or changed.
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
        eventlog's own layers (``group/offsets.py``); raises as ``create_topic``."""
        if name not in internal_topics:
            raise InvalidTopicError(f"{name!r} is not an internal topic; use create_topic()")
        return self._create_topic(name, partitions, config)

    def _create_topic(
        self, name: str, partitions: int, config: dict[str, Any], *, exist_ok: bool = False
    ) -> Topic:
        _check_partition_count(partitions)
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
        self._clear_leftovers(name, start, stop)
        self._write_metadata_or_restore({name: (stop, config)})
        try:
            return self._create_partitions(name, config, start, stop)
        except BaseException:
            if self.path is not None:
                made = [f"{name}-{i}" for i in range(start, stop)]
                self._deleting.extend(made)
                try:
                    self._write_metadata()
                except OSError as exc:
                    _log.error("cannot undo the metadata of the failed creation of %s-%d..%d;"
                               " the log will open with them, empty: %s",
                               name, start, stop - 1, exc)
                else:
                    for directory in made:
                        self._discard_dir(directory)
            raise

    def _clear_leftovers(self, name: str, start: int, stop: int) -> None:
        """Remove what is in the way of partitions ``start..stop-1`` of topic ``name``:
        directories of a topic of that name that was deleted (or left by a crash of
        an earlier version), never named by ``topics.msgpack`` since."""
        if self.path is None:
            return
        for i in range(start, stop):
            directory = os.path.join(self.path, f"{name}-{i}")
            if os.path.lexists(directory):
                try:
                    _remove_entry(directory, self.files)
                except OSError as exc:
                    raise with_errno(
                        exc, f"cannot create partition {name}-{i}: {directory} is a leftover of a "
                        f"deleted topic of that name and cannot be removed: {exc}"
                    ) from exc

    def _write_metadata_or_restore(
        self, changes: Mapping[str, tuple[int, TopicConfig]] | None = None
    ) -> None:
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
            if self.path is not None and self._options.fsync != "never":
                fsync_dir(self.path, files=self.files)
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

    def _discard_dir(self, name: str) -> None:
        """Remove the directory of a deleted partition: renamed first to a name no topic
        can have (so it is never taken for a partition), then removed. A failure is
        logged, not raised: the deletion is already recorded, and open() finishes it."""
        assert self.path is not None
        directory = os.path.join(self.path, name)
        doomed = os.path.join(self.path, deleting_prefix + secrets.token_hex(8))
        try:
            _rename(directory, doomed, self.files)
        except FileNotFoundError:
            return
        except OSError as exc:
            _log.warning("cannot remove %s of a deleted topic (it is removed when the log is "
                         "opened next): %s", directory, exc)
            return
        try:
            _remove_entry(doomed, self.files)
        except OSError as exc:
            _log.warning("cannot remove %s, a partition of a deleted topic (it is removed "
                         "when the log is opened next): %s", doomed, exc)

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
        """The topic, created with the default partition count if auto-creation is on.

        Raises InvalidTopicError for an internal topic: clients cannot produce to it.
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
        """Names of the topics, sorted; internal ones (``__*``) only if asked for."""
        self._ensure_open()
        return sorted(n for n in self._topics if include_internal or not n.startswith("__"))

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its data. UnknownTopicError if there is none,
        InvalidTopicError for an internal topic (it holds every group's offsets).

        The deletion is recorded in ``topics.msgpack`` first (StorageError if that
        fails: nothing changed), then the partitions are closed and their directories
        removed; a directory that cannot be removed now is removed at the next open.
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
            topics_before, deleting_before = dict(self._topics), list(self._deleting)
            del self._topics[name]
            if self.path is not None:
                self._deleting.extend(dirs)
            try:
                self._write_metadata()
            except OSError as exc:
                self._topics.clear()  # in place: topic_map hands out this dict
                self._topics.update(topics_before)
                self._deleting = deleting_before
                self._metadata_failed(exc)
            self._announce_topics_changed()
            for p in topic.partitions:
                try:
                    p.close()
                except OSError as exc:
                    _log.warning("closing %s-%d of the deleted topic: %s", name, p.index, exc)
            if self.path is not None:
                for directory in dirs:
                    self._discard_dir(directory)

    def create_partitions(self, name: str, total: int) -> Topic:
        """Grow topic ``name`` to ``total`` partitions (Kafka only grows; never shrinks).

        Raises InvalidConfigError if ``total`` is not larger than the current count,
        StorageError if the disk fails (nothing changed then).
        """
        _check_partition_count(total)
        with self._lock:
            topic = self.topic(name)
            if total <= topic.num_partitions:
                raise InvalidConfigError(
                    f"topic {name!r} has {topic.num_partitions} partitions; create_partitions "
                    f"can only increase the count (got {total}); partitions are never removed"
                )
            topic._extend(self._add_partitions(name, topic.config, topic.num_partitions, total))
            self._announce_topics_changed()
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
        from ..producer import Producer  # the client layer sits above

        return Producer(self, **config)

    def consumer(self, *topics: str, **config: Any) -> Any:
        """A new ``eventlog.Consumer`` on this log (see Consumer for the configs)."""
        from ..consumer import Consumer  # the client layer sits above

        return Consumer(self, *topics, **config)

    def list_groups(self) -> list[Any]:
        """Every consumer group with members or committed offsets (GroupListing)."""
        from ..group.coordinator import list_groups  # the group layer sits above

        self._ensure_open()
        return list_groups(self)

    def describe_group(self, group_id: str) -> Any:
        """State, generation, protocol, members and per-partition lag of one group."""
        from ..group.coordinator import describe_group  # the group layer sits above

        self._ensure_open()
        return describe_group(self, group_id)

    def serve(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Any:
        """Serve this log to Kafka clients: ``eventlog.serve(self, host, port, ...)``
        (see there; needs the ``server`` extra)."""
        from ..server import serve  # the server sits above every layer

        self._ensure_open()
        return serve(self, host, port, **options)

    # ------------------------------------------------------------------ maintenance

    def run_retention(self, now_ms: int | None = None) -> int:
        """Apply every topic's retention now (Kafka runs it every 5 minutes).

        Returns the number of segments deleted. ``now_ms`` defaults to the clock.
        """
        self._ensure_open()
        now = self.clock.time_ms() if now_ms is None else now_ms
        deleted = 0
        try:
            for p in self.partitions():
                if "delete" in p.config.cleanup_policy:
                    deleted += p.apply_retention(now)
        finally:
            self.maintenance_counters.retention_ran(deleted)
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
        stats: list[Any] = []
        started_ms = self.clock.monotonic_ms()
        try:
            return self._compact_each(now, background, stats)
        finally:
            self.maintenance_counters.cleaner_ran(stats, self.clock.monotonic_ms() - started_ms)

    def _compact_each(self, now: int, background: bool, stats: list) -> int:
        """_compact_all's loop; appends each partition's CleanerStats to ``stats``."""
        removed = 0
        corrupt: CorruptLogError | None = None
        for p in self.partitions():
            if not p.config.compacted:
                continue
            try:
                stats.append(p.compact(now))
                removed += stats[-1].records_removed
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

    def metrics(self) -> dict[str, Any]:
        """The log's metrics by Kafka's names: sizes, segments, start and end offsets in
        total and per partition, retention and cleaner runs, and what recovery found
        (eventlog.metrics.log; docs/operations.md lists them). Thread-safe.
        Cost: O(partitions)."""
        from ..metrics.log import log_metrics

        self._ensure_open()
        return log_metrics(self)

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
                transactions = self.extensions.get("transactions")
                if transactions is not None:  # abort transactions past their timeout
                    transactions.expire()
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

        Idempotent. Every method but ``close`` raises ClosedError afterwards. A close()
        in another thread meanwhile returns once this one is done; one from a client's
        close (the same thread) returns at once. If a client's close raises, the log
        stays open and close() may be called again.
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
            if closer is me or me is self._maintenance:
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
            try:
                if not errors:
                    atomic_write(os.path.join(self.path, clean_shutdown_file), b"",
                                 files=self.files)
            except OSError as exc:
                errors.append(exc)  # no marker: the next open recovers, as after a crash
            finally:
                self._release_directory()
        if errors:
            raise with_errno(errors[0], f"closing {self.path}: {errors[0]}") from errors[0]

    def _close_clients(self) -> None:
        """Close every registered client, then mark the log closed.

        Not under the lock: a client's close may wait for another thread that needs it
        (the protocol server finishes the request it is serving, a CreateTopics, say,
        before it stops), so the log works until every client is closed. A client
        registered meanwhile is closed in the next round."""
        done: dict[int, Any] = {}  # id -> client (the reference keeps the id unique)
        while True:
            with self._lock:
                pending = [c for c in list(self._clients) if id(c) not in done]
                if not pending:
                    self._closed = True
                    return
            for client in pending:
                done[id(client)] = client
                client.close()

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


def _check_partition_count(count: object) -> None:
    if type(count) is not int or not 1 <= count <= partitions_max:
        raise InvalidConfigError(
            f"partitions must be an int in [1, {partitions_max}], got {count!r}"
        )


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
