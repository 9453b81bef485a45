"""Rebalance callbacks: ConsumerRebalanceListener, and calling one with Kafka's error rule."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidConfigError
from ..records import TopicPartition

__all__ = ["Callbacks", "ConsumerRebalanceListener", "check_listener"]


class ConsumerRebalanceListener:
    """Callbacks around rebalances; subclass and override (all default to doing nothing).

    They run inside ``poll()`` (and ``close()``/``unsubscribe()``) on the consumer's
    thread, and may call the consumer (``commit``, ``position``, ``seek``...).
    Partitions are given as a sorted list of TopicPartition. An exception a
    callback raises propagates out of the ``poll()`` that called it, after the
    rebalance step completed.
    """

    def on_partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        """The consumer stops fetching these; commit what was processed now.

        Cost: the default does nothing, O(1).
        Thread safety: called on the consumer's thread, inside its poll/close/unsubscribe.
        Raises: nothing (the default); an override's exception leaves ``poll()``.
        """

    def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        """The consumer will fetch these from their committed offsets (or the reset policy).

        Cost: the default does nothing, O(1).
        Thread safety: called on the consumer's thread, inside its poll.
        Raises: nothing (the default); an override's exception leaves ``poll()``.
        """

    def on_partitions_lost(self, partitions: list[TopicPartition]) -> None:
        """These were taken away without a revoke (the member was evicted or fenced):
        another member may already own them, so do not commit. Defaults to
        ``on_partitions_revoked`` (as Kafka's default does).

        Cost: that of ``on_partitions_revoked``.
        Thread safety: called on the consumer's thread, inside its poll/close/unsubscribe.
        Raises: what ``on_partitions_revoked`` raises.
        """
        self.on_partitions_revoked(partitions)


def check_listener(listener: Any) -> None:
    """InvalidConfigError unless ``listener`` is None or has the two required methods."""
    if listener is None:
        return
    for name in ("on_partitions_revoked", "on_partitions_assigned"):
        if not callable(getattr(listener, name, None)):
            raise InvalidConfigError(
                f"listener must have an {name}(partitions) method (see "
                "ConsumerRebalanceListener), got {listener!r}"
            )


class Callbacks:
    """The subscription's listener, and the first exception one of its callbacks raised.

    A callback's exception does not stop the step that called it (KAFKA_SEMANTICS
    4.13): it is kept and raised by :meth:`raise_error` once the step completed.
    """

    __slots__ = ("error", "listener")

    def __init__(self) -> None:
        self.listener: Any = None
        self.error: BaseException | None = None

    def call(self, name: str, partitions: list[TopicPartition]) -> None:
        """Call the listener's ``name`` callback, keeping (not raising) its exception."""
        listener = self.listener
        if listener is None:
            return
        method = getattr(listener, name, None)
        if method is None and name == "on_partitions_lost":
            method = listener.on_partitions_revoked
        try:
            method(partitions)
        except Exception as exc:  # propagated after the step completes (4.13)
            if self.error is None:
                self.error = exc

    def raise_error(self) -> None:
        """Raise (and forget) the kept callback exception, if any."""
        error = self.error
        if error is not None:
            self.error = None
            raise error
