"""Committer: sends a consumer's offset commits to its group and keeps the auto-commit timer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..broker import Broker
from ..errors import (
    CommitFailedError,
    IllegalGenerationError,
    InvalidConfigError,
    ReadOnlyLogError,
    UnknownMemberError,
)
from ..group.coordinator import GroupCoordinator
from ..group.offsets import OffsetAndMetadata
from ..records import TopicPartition
from .config import ConsumerConfig
from .stats import ConsumerStats

__all__ = ["Committer"]


class Committer:
    """Commits offsets for one consumer (``commit_offsets`` on its coordinator).

    ``auto``: auto-commit applies (enabled, with a group, on a writable log).
    Used by the thread holding the consumer's lock.
    """

    __slots__ = ("_clock", "_config", "_coordinator", "_group_id", "_read_only", "_stats",
                 "auto", "next_auto_commit_ms")

    def __init__(self, log: Broker, config: ConsumerConfig, coordinator: GroupCoordinator | None,
                 stats: ConsumerStats) -> None:
        self._clock = log.clock
        self._config = config
        self._coordinator = coordinator
        self._group_id = config.group_id
        self._read_only = bool(log.read_only)
        self._stats = stats
        self.auto = config.enable_auto_commit and coordinator is not None and not self._read_only
        self.next_auto_commit_ms = self._clock.monotonic_ms() + config.auto_commit_interval_ms

    def restart_timer(self, now_ms: float) -> None:
        """The next auto-commit is due ``auto_commit_interval_ms`` from now."""
        self.next_auto_commit_ms = now_ms + self._config.auto_commit_interval_ms

    def due(self, now_ms: float) -> bool:
        """True (and the timer restarted) if an auto-commit is due at ``now_ms``."""
        if now_ms < self.next_auto_commit_ms:
            return False
        self.restart_timer(now_ms)
        return True

    def require_group(self, what: str) -> None:
        """InvalidConfigError if the consumer has no group (offsets belong to one)."""
        if self._group_id is None:
            raise InvalidConfigError(
                f"{what} needs a group_id: committed offsets belong to a consumer group; "
                "create the consumer with group_id=..."
            )

    def refuse_read_only(self, what: str) -> None:
        """ReadOnlyLogError if the log is read-only (only its writer commits)."""
        if self._read_only:
            raise ReadOnlyLogError(
                f"{what}: this consumer reads a log opened read-only; its group "
                f"{self._group_id!r} is a view of the offsets the writing process "
                "committed, and only that process can commit: nothing was committed"
            )

    def committed(self, tp: Any, metadata: bool) -> int | OffsetAndMetadata | None:
        """The group's committed offset of ``tp`` (with its metadata if asked), or None."""
        assert self._coordinator is not None and self._group_id is not None
        key = TopicPartition(*tp)
        found = self._coordinator.committed(self._group_id, [key])[key]
        if found is None:
            return None
        return OffsetAndMetadata(found.offset, found.metadata) if metadata else found.offset

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata],
               member_id: str, generation: int) -> None:
        """Commit ``offsets`` as ``member_id`` of ``generation`` ("" and -1: standalone).

        Raises CommitFailedError if the group no longer knows the member or moved to
        another generation; the coordinator's other errors as they are."""
        coordinator = self._coordinator
        assert coordinator is not None and self._group_id is not None
        clock = self._clock
        started_ms = clock.monotonic_ms()
        try:
            coordinator.commit_offsets(self._group_id, member_id, generation,
                                       self._config.group_instance_id, offsets)
            self._stats.committed(started_ms, clock.monotonic_ms())
        except (UnknownMemberError, IllegalGenerationError) as exc:
            raise CommitFailedError(
                "commit cannot be completed: the group has rebalanced and may have given "
                "the partitions to another member (this one was evicted after "
                "max_poll_interval_ms without a poll, or missed a generation); poll() to "
                f"rejoin, then process and commit again ({exc})"
            ) from exc
