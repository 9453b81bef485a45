"""The producer's refusals: the errors ``send()`` and ``send_batch()`` raise for bad input."""

from __future__ import annotations

from typing import Any

from ..broker.partition import normalise_headers
from ..errors import ClosedError, UnknownPartitionError

__all__ = [
    "closed_error", "explicit_partition", "not_bytes", "not_bytes_key_or_value",
    "validated_headers",
]


def explicit_partition(topic: str, num_partitions: int, partition: object) -> int:
    """``partition`` if the topic has it; UnknownPartitionError naming the count if not."""
    if type(partition) is not int or not 0 <= partition < num_partitions:
        raise UnknownPartitionError(
            f"topic {topic!r} has {num_partitions} partition(s) (0..{num_partitions - 1}); "
            f"there is no partition {partition!r}"
        )
    return partition


def closed_error() -> ClosedError:
    return ClosedError("this producer is closed; create a new one")


def not_bytes(what: str, obj: Any) -> TypeError:
    return TypeError(
        f"{what} must be bytes or None, got {type(obj).__name__}; pass bytes or "
        f"configure {what}_serializer (e.g. 'str', 'json', 'msgpack' or a callable)"
    )


def not_bytes_key_or_value(key: Any, value: Any) -> TypeError:
    """The error for a key (checked first) or value that is neither bytes nor None."""
    if type(key) is not bytes and key is not None:
        return not_bytes("key", key)
    return not_bytes("value", value)


def validated_headers(headers: Any) -> tuple:
    """Headers as a tuple of (str, bytes | None) pairs; InvalidRecordError otherwise."""
    normalised = normalise_headers([headers])
    return normalised[0] if normalised else ()
