"""Idempotent-producer state of one partition: each producer's epoch, last sequence and
last five batches, and Kafka's checks of a new batch against them (KAFKA_SEMANTICS 9)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import InvalidProducerEpochError, OutOfOrderSequenceError

__all__ = ["AppendResult", "ProducerEntry", "ProducerStates", "sequence_max", "sequence_modulus"]

producer_batches_retained = 5  # Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN
sequence_max = 2**31 - 1
sequence_modulus = sequence_max + 1  # sequences wrap after Integer.MAX_VALUE


class AppendResult(NamedTuple):
    """Where a batch landed: what the producer's futures resolve from."""

    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 for CreateTime topics
    duplicate: bool = False
    # The batch's bytes in the log, and before compression (equal when uncompressed);
    # 0 for a duplicate, which appended nothing. What producer metrics average.
    size_bytes: int = 0
    uncompressed_bytes: int = 0


@dataclass
class ProducerEntry:
    """One producer's state: its epoch, last sequence and last batches
    ``(epoch, first sequence, last sequence, first offset, last offset)``."""

    epoch: int
    last_sequence: int
    batches: deque = field(default_factory=lambda: deque(maxlen=producer_batches_retained))


class ProducerStates(dict[int, ProducerEntry]):
    """{producer id: ProducerEntry} of one partition. Not thread-safe: the partition
    calls it under its lock. A dict, so the append path's lookup is one ``get``."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label  # "topic-index", for the errors

    def check(self, producer_id: int, epoch: int, base_sequence: int,
              count: int) -> AppendResult | None:
        """Kafka's ProducerAppendInfo checks of a batch of ``count`` records. Returns
        the original result for a duplicate (one of the last 5 batches), None for a
        batch to append. Raises InvalidProducerEpochError (an older epoch: fenced),
        OutOfOrderSequenceError (a gap or a reuse). O(5)."""
        entry = self.get(producer_id)
        if entry is None:
            return None  # unknown producer: any sequence is accepted
        if epoch == entry.epoch and base_sequence == (entry.last_sequence + 1) % sequence_modulus:
            return None  # the common case: the next batch (no retained batch starts there)
        if epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"producer {producer_id} epoch {epoch} is older than {entry.epoch} on "
                f"{self.label}; this producer was fenced"
            )
        last_sequence = (base_sequence + count - 1) % sequence_modulus
        if epoch == entry.epoch:
            for b_epoch, b_first, b_last, first_offset, last_offset in entry.batches:
                if (b_epoch, b_first, b_last) == (epoch, base_sequence, last_sequence):
                    return AppendResult(first_offset, last_offset, -1, True, 0, 0)
            expected = (entry.last_sequence + 1) % sequence_modulus
            if base_sequence != expected:
                raise OutOfOrderSequenceError(
                    f"producer {producer_id} sent sequence {base_sequence} to "
                    f"{self.label}, expected {expected}: a batch was lost or reordered"
                )
        elif base_sequence != 0:
            raise OutOfOrderSequenceError(
                f"producer {producer_id} with new epoch {epoch} must start at sequence 0, "
                f"got {base_sequence}"
            )
        return None

    def record(self, producer_id: int, epoch: int, base_sequence: int, count: int,
               base_offset: int, last_offset: int) -> None:
        """Remember a batch that landed at ``[base_offset, last_offset]``. O(1)."""
        entry = self.get(producer_id)
        if entry is None or entry.epoch != epoch:
            entry = self[producer_id] = ProducerEntry(epoch, -1)
        last = (base_sequence + count - 1) % sequence_modulus
        entry.last_sequence = last
        entry.batches.append((epoch, base_sequence, last, base_offset, last_offset))

    def check_marker(self, producer_id: int, epoch: int) -> None:
        """InvalidProducerEpochError if a transaction marker of ``epoch`` is older than
        the producer's epoch here. O(1)."""
        entry = self.get(producer_id)
        if entry is not None and epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"marker of producer {producer_id} epoch {epoch} is older than "
                f"epoch {entry.epoch} on {self.label}"
            )

    def marker_written(self, producer_id: int, epoch: int) -> None:
        """A marker of ``epoch`` landed: it is the producer's epoch now (a fencing marker
        bumps it), so a later batch of an older epoch is refused. O(1)."""
        entry = self.get(producer_id)
        if entry is None or entry.epoch != epoch:
            self[producer_id] = ProducerEntry(epoch, -1)
