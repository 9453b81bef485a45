"""PartitionPolls: the Consumer's poll by partition, whose records an adapter may build itself.

An adapter presenting another library's record type (``eventlog.compat``) would otherwise
build one ConsumerRecord per record and then its own object from it: twice the objects.
``poll_partitions(build=...)`` hands it each batch's decoded columns instead, so it makes
its objects in one C-level ``map`` per batch, as ``poll()`` makes ConsumerRecords.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidConfigError
from ..records import TopicPartition
from .config import ConsumerConfig, is_int
from .fetcher import RecordBuilder
from .guard import ThreadGuard
from .poller import Poller

__all__ = ["PartitionPolls", "poll_limit"]


class PartitionPolls:
    """The Consumer's ``poll_partitions`` (the Consumer sets the attributes declared here)."""

    config: ConsumerConfig
    _guard: ThreadGuard
    _poller: Poller

    def poll_partitions(self, timeout_ms: float = 0, max_records: int | None = None, *,
                        build: RecordBuilder | None = None
                        ) -> list[tuple[TopicPartition, list[Any]]]:
        """What ``poll()`` returns, as ``(partition, its records)`` pairs, one per partition
        with records. With ``build``, each batch's records are what ``build(tp,
        timestamp_type, offsets, timestamps, keys, values, headers)`` returns (an iterable
        of one object per record, in order; ``headers`` None when no record has any),
        not ConsumerRecords; positions move as in ``poll()``.

        Cost: as poll(), plus one ``build`` call per batch read.
        Thread safety: as poll().
        Raises: as poll(); RecordDeserializationError at the record where ``build``'s
            iterable raised (the records before it are returned first).
        """
        limit = poll_limit(timeout_ms, max_records, self.config.max_poll_records)
        with self._guard.hold():
            chunks = self._poller.poll_chunks(timeout_ms, limit, apply=True, build=build)
        return [(chunk.state.tp, chunk.records) for chunk in chunks]


def poll_limit(timeout_ms: Any, max_records: Any, default: int) -> int:
    """poll()'s arguments checked; the number of records to return at most."""
    if not isinstance(timeout_ms, (int, float)) or isinstance(timeout_ms, bool) \
            or timeout_ms < 0:
        raise InvalidConfigError(f"timeout_ms must be a number >= 0, got {timeout_ms!r}")
    limit = default if max_records is None else max_records
    if not is_int(limit) or limit < 1:
        raise InvalidConfigError(f"max_records must be an int >= 1, got {max_records!r}")
    return int(limit)
