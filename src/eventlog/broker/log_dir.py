"""The data directory: its lock, the clean-shutdown marker, topics.msgpack and leftovers.

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import msgpack

from ..config import TopicConfig
from ..errors import CorruptLogError, InvalidConfigError, LogDirLockedError, StorageError
from ..storage.files import Files, atomic_write, fsync_dir, os_files, storage_error, with_errno
from .topic import validate_topic_name

__all__ = ["LogDir", "check_partition_count", "clean_shutdown_file", "lock_file", "topics_file"]

_log = logging.getLogger("eventlog.broker")

lock_file = "LOCK"
clean_shutdown_file = ".clean-shutdown"
topics_file = "topics.msgpack"
metadata_format = 1
partitions_max = 10_000  # per topic; a directory each


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
            check_partition_count(count)
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


def check_partition_count(count: object) -> None:
    """InvalidConfigError unless ``count`` is an int in [1, partitions_max]."""
    if type(count) is not int or not 1 <= count <= partitions_max:
        raise InvalidConfigError(
            f"partitions must be an int in [1, {partitions_max}], got {count!r}"
        )


TopicCounts = Mapping[str, tuple[int, TopicConfig]]  # name -> partition count, config


class LogDir:
    """One data directory while an EventLog holds it: its lock, the clean-shutdown
    marker, ``topics.msgpack`` and the partition directories being deleted.

    Not thread-safe: the broker calls it under its own lock.
    """

    def __init__(self, path: str, files: Files = os_files) -> None:
        self.path = path
        self.files = files
        self._lock_fds: tuple[int, ...] = ()  # the directory's and LOCK's, both flock()ed
        self.deleting: list[str] = []  # partition directories being deleted (module doc)

    # ------------------------------------------------------------------ lock and marker

    def lock(self) -> bool:
        """Make and lock the directory; returns whether its files need no recovery scan
        (the marker is there, or no topic was ever made). LogDirLockedError if another
        EventLog holds it, StorageError if it cannot be used."""
        try:
            os.makedirs(self.path, exist_ok=True)
            _refuse_symlinks(self.path, (lock_file, clean_shutdown_file, topics_file))
            self._lock_fds = _lock_directory(self.path)
        except OSError as exc:
            if isinstance(exc, StorageError):
                raise
            raise with_errno(exc, f"cannot open the log directory {self.path}: {exc}") from exc
        if os.path.exists(os.path.join(self.path, clean_shutdown_file)):
            return True  # removed once the open succeeded (remove_clean_shutdown_marker)
        # No marker: a crash, unless the directory never held a topic (nothing to recover).
        return not os.path.exists(os.path.join(self.path, topics_file))

    def remove_clean_shutdown_marker(self) -> None:
        """Remove the marker (once an open succeeded: a failed one must leave it)."""
        try:
            self.files.unlink(os.path.join(self.path, clean_shutdown_file))
        except FileNotFoundError:
            return
        fsync_dir(self.path, files=self.files)

    def write_clean_shutdown_marker(self) -> None:
        """Write the marker: the next open needs no recovery scan. OSError if it fails."""
        atomic_write(os.path.join(self.path, clean_shutdown_file), b"", files=self.files)

    def release(self) -> None:
        """Unlock the directory (idempotent)."""
        if self._lock_fds:
            _unlock_directory(self._lock_fds)
            self._lock_fds = ()

    # ------------------------------------------------------------------ topics.msgpack

    def read_metadata(self) -> _Metadata:
        """``topics.msgpack`` decoded and validated; empty if there is none."""
        path = os.path.join(self.path, topics_file)
        try:
            data = self.files.read_file(path)
        except FileNotFoundError:
            return _Metadata([], ())
        except OSError as exc:
            raise storage_error(exc, f"read {path}", path, files=self.files) from exc
        return _decode_metadata(data, path)

    def write_metadata(self, topics: TopicCounts) -> None:
        """Replace ``topics.msgpack`` with ``topics`` and the partition directories
        still being deleted (which become ``deleting``). OSError if the write fails."""
        entries = [
            {"name": name, "partitions": count, "config": config.to_dict()}
            for name, (count, config) in topics.items()
        ]
        meta: dict[str, Any] = {"format": metadata_format, "topics": entries}
        deleting = self.pending_deletions(topics)
        if deleting:
            meta["deleting"] = deleting
        atomic_write(os.path.join(self.path, topics_file), msgpack.packb(meta), files=self.files)
        self.deleting = deleting

    def pending_deletions(self, topics: TopicCounts) -> list[str]:
        """The directories of deleted partitions not removed yet (still on disk, and not
        the directory of a partition that ``topics`` names)."""
        named = named_dirs(topics)
        return sorted(
            name for name in set(self.deleting)
            if name not in named and os.path.lexists(os.path.join(self.path, name))
        )

    def refuse_symlinks(self, names: Iterable[str]) -> None:
        """StorageError if one of ``names`` in the directory is a symbolic link."""
        _refuse_symlinks(self.path, names)

    # ------------------------------------------------------------------ partition directories

    def partition_dir(self, topic: str, index: int) -> str:
        return os.path.join(self.path, f"{topic}-{index}")

    def remove_leftovers(self, topics: TopicCounts) -> None:
        """Remove what a crash left behind, and only what is provably ours and orphaned:
        directories renamed to ``~deleting-*`` (no topic can have a ``~``), directories
        that ``topics.msgpack`` lists as being deleted (and names as no partition), old
        ``TOPIC-N.deleted`` directories of earlier versions, and the two temp files of
        atomic_write. Anything else not named by ``topics.msgpack`` is left alone."""
        named = named_dirs(topics)
        deleting = set(self.deleting)
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
        if deleting and self.pending_deletions(topics) != sorted(deleting):
            try:
                self.write_metadata(topics)  # forget what is gone; not needed for correctness
            except OSError as exc:
                _log.warning("cannot update %s after removing leftovers: %s",
                             os.path.join(self.path, topics_file), exc)

    def clear_leftovers(self, name: str, start: int, stop: int) -> None:
        """Remove what is in the way of partitions ``start..stop-1`` of topic ``name``:
        directories of a topic of that name that was deleted (or left by a crash of
        an earlier version), never named by ``topics.msgpack`` since."""
        for i in range(start, stop):
            directory = self.partition_dir(name, i)
            if os.path.lexists(directory):
                try:
                    _remove_entry(directory, self.files)
                except OSError as exc:
                    raise with_errno(
                        exc, f"cannot create partition {name}-{i}: {directory} is a leftover of a "
                        f"deleted topic of that name and cannot be removed: {exc}"
                    ) from exc

    def discard(self, name: str) -> None:
        """Remove the directory of a deleted partition: renamed first to a name no topic
        can have (so it is never taken for a partition), then removed. A failure is
        logged, not raised: the deletion is already recorded, and open() finishes it."""
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

    def fsync(self) -> None:
        """fsync the directory (new partition directories in it)."""
        fsync_dir(self.path, files=self.files)


def named_dirs(topics: TopicCounts) -> set[str]:
    """The partition directories of ``topics``."""
    return {f"{name}-{i}" for name, (count, _) in topics.items() for i in range(count)}
