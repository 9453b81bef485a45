"""Positions: the assigned partitions and where the consumer reads each (seek, reset, pause)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..broker import Broker
from ..broker.partition import Partition
from ..errors import (
    IllegalStateError,
    InvalidConfigError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RecordDeserializationError,
    UnknownTopicError,
)
from ..group.coordinator import GroupCoordinator
from ..group.offsets import OffsetAndMetadata
from ..records import TopicPartition
from ..storage.batch import BatchHeader, Columns
from .config import ConsumerConfig, is_int

__all__ = ["PartitionState", "Positions"]


class PartitionState:
    """An assigned partition: position, pause flag, pending reset, decoded batches."""

    __slots__ = ("buffer", "partition", "paused", "pending_error", "position", "reset", "tp")

    def __init__(self, tp: TopicPartition, partition: Partition | None) -> None:
        self.tp = tp
        self.partition = partition
        self.position: int | None = None  # None: resolve (committed, else reset policy)
        self.paused = False
        self.reset: str | None = None  # "earliest"/"latest": a lazy seek_to_*
        self.buffer: list[tuple[BatchHeader, Columns]] = []
        self.pending_error: RecordDeserializationError | None = None  # raised at next fetch


class Positions:
    """The consumer's assigned partitions by TopicPartition, each with its position.

    ``fetch_error`` is an error a fetch met after it had records to return: raised by
    the next fetch, forgotten when the assignment or a position changes.
    Used by the thread holding the consumer's lock.
    """

    __slots__ = ("_config", "_coordinator", "_group_id", "_log", "_read_committed",
                 "assigned", "fetch_error")

    def __init__(self, log: Broker, config: ConsumerConfig,
                 coordinator: GroupCoordinator | None) -> None:
        self._log = log
        self._config = config
        self._coordinator = coordinator
        self._group_id = config.group_id
        self._read_committed = config.isolation_level == "read_committed"
        self.assigned: dict[TopicPartition, PartitionState] = {}
        self.fetch_error: BaseException | None = None

    # ------------------------------------------------------------------ the assignment

    def state_for(self, tp: Any) -> PartitionState:
        """The state of an assigned partition; IllegalStateError if ``tp`` is not one."""
        state = self.assigned.get(tp)
        if state is None:
            raise IllegalStateError(
                f"partition {tp!r} is not assigned to this consumer; assigned: "
                f"{sorted(self.assigned) or 'none'}"
            )
        return state

    def partition(self, tp: Any) -> Partition:
        """The log's partition ``tp``; UnknownTopicError/UnknownPartitionError if absent."""
        if not (isinstance(tp, tuple) and len(tp) == 2):
            raise InvalidConfigError(f"expected a TopicPartition(topic, partition), got {tp!r}")
        partition: Partition = self._log.topic(tp[0]).partition(tp[1])
        return partition

    def add(self, tp: TopicPartition) -> None:
        """Assign ``tp`` (fetched once its topic exists), position unknown."""
        try:
            part: Partition | None = self._log.topic(tp.topic).partition(tp.partition)
        except (UnknownTopicError, KeyError):
            part = None
        self.assigned[tp] = PartitionState(tp, part)

    def replace(self, wanted: dict[TopicPartition, Partition]) -> None:
        """Assign exactly ``wanted``, keeping the positions of partitions kept."""
        kept = {tp: st for tp, st in self.assigned.items() if tp in wanted}
        for tp, part in wanted.items():
            kept.setdefault(tp, PartitionState(tp, part))
        self.assigned = kept
        self.fetch_error = None

    def drop(self, partitions: list[TopicPartition]) -> None:
        """Unassign ``partitions`` (each must be assigned)."""
        for tp in partitions:
            del self.assigned[tp]
        if partitions:
            self.fetch_error = None

    def clear(self) -> None:
        self.assigned = {}
        self.fetch_error = None

    def consumed(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Every known position, as the offsets to commit."""
        return {tp: OffsetAndMetadata(st.position) for tp, st in self.assigned.items()
                if st.position is not None}

    def start_offsets(self, partitions: list[Any]) -> dict[TopicPartition, int]:
        return {TopicPartition(*tp): self.partition(tp).start_offset for tp in partitions}

    def end_offsets(self, partitions: list[Any]) -> dict[TopicPartition, int]:
        return {TopicPartition(*tp): self.end_of(self.partition(tp)) for tp in partitions}

    def offsets_for_times(
        self, timestamps: Mapping[Any, int]
    ) -> dict[TopicPartition, tuple[int, int] | None]:
        """(offset, timestamp) of the first record at or after each time, None if none;
        checks every argument before looking anything up."""
        for tp, ts in timestamps.items():
            if not is_int(ts) or ts < 0:
                raise InvalidConfigError(
                    f"the target time for {tp!r} must be an int >= 0 (ms), got {ts!r}"
                )
        parts = {TopicPartition(*tp): (self.partition(tp), ts) for tp, ts in timestamps.items()}
        out: dict[TopicPartition, tuple[int, int] | None] = {}
        for tp, (part, ts) in parts.items():
            found = part.offset_and_timestamp_for_time(ts)
            if found is not None and found[0] >= self.end_of(part):
                found = None  # at or past the LSO under read_committed (Kafka's rule)
            out[tp] = found
        return out

    # ------------------------------------------------------------------ positions

    def end_of(self, part: Partition) -> int:
        """Where this consumer's reads end: the LSO under read_committed, else the HW.
        Records this log's producers hold (lingering) are appended first, as for read()."""
        if part.lingering:
            part.flush_lingering()
        return part.last_stable_offset if self._read_committed else part.end_offset

    def resolve(self, st: PartitionState) -> int:
        """Committed offset, else the reset policy (or a pending seek_to_*)."""
        policy = st.reset
        if policy is None and self._coordinator is not None:
            assert self._group_id is not None
            committed = self._coordinator.committed(self._group_id, [st.tp])[st.tp]
            if committed is not None:
                st.position = committed.offset
                return committed.offset
        if policy is None:
            policy = self._config.auto_offset_reset
            if policy == "none":
                raise NoOffsetForPartitionError(
                    f"no committed offset for {st.tp.topic}-{st.tp.partition} in group "
                    f"{self._group_id!r} and auto_offset_reset='none'; seek() to a position"
                )
        part = st.partition
        if part is None:
            raise UnknownTopicError(f"topic {st.tp.topic!r} no longer exists")
        position = part.start_offset if policy == "earliest" else self.end_of(part)
        st.position, st.reset = position, None
        return position

    def reset_out_of_range(self, st: PartitionState, position: int) -> int:
        """Apply ``auto_offset_reset`` to a position outside the log; the new position."""
        part = st.partition
        assert part is not None
        policy = self._config.auto_offset_reset
        if policy == "none":
            raise OffsetOutOfRangeError(
                f"position {position} of {st.tp.topic}-{st.tp.partition} is outside "
                f"[{part.start_offset}, {part.end_offset}] and auto_offset_reset='none'; "
                "seek() to a valid offset"
            )
        st.position = part.start_offset if policy == "earliest" else self.end_of(part)
        return st.position

    def seek(self, tp: Any, offset: int) -> None:
        """Move ``tp`` to ``offset``, which must be in the log; see ``Consumer.seek``."""
        st = self.state_for(tp)
        if not is_int(offset) or offset < 0:
            raise InvalidConfigError(f"offset must be an int >= 0, got {offset!r}")
        part = st.partition
        if part is None:
            raise UnknownTopicError(f"topic {st.tp.topic!r} no longer exists")
        start, end = part.start_offset, part.end_offset
        if not start <= offset <= end:
            raise OffsetOutOfRangeError(
                f"cannot seek {st.tp.topic}-{st.tp.partition} to {offset}: its log holds "
                f"offsets [{start}, {end}] (end = the next offset to be written)"
            )
        st.position, st.reset = offset, None
        self.fetch_error = None

    def seek_to(self, partitions: list[Any], policy: str) -> None:
        """A lazy seek of ``partitions`` (all assigned if empty) to "earliest" or "latest"."""
        states = ([self.state_for(tp) for tp in partitions] if partitions
                  else list(self.assigned.values()))
        for st in states:
            st.position, st.reset = None, policy
        self.fetch_error = None

    def set_paused(self, partitions: list[Any], paused: bool) -> None:
        states = [self.state_for(tp) for tp in partitions]
        for st in states:
            st.paused = paused

    def lags(self) -> list[int]:
        """Log end offset minus position of each assigned partition with a position.

        Safe from any thread: reads a snapshot of the assignment."""
        return [st.partition.end_offset - st.position
                for st in list(self.assigned.values())
                if st.position is not None and st.partition is not None
                and not st.partition.closed]

    def check(self) -> None:
        """Assert each partition's state is consistent."""
        for tp, st in self.assigned.items():
            assert st.tp == tp
            assert st.position is None or st.position >= 0, (tp, st.position)
            assert st.reset in (None, "earliest", "latest")
