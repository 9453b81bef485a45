"""confluent-kafka Consumer's offsets: storing, committing (with ``on_commit`` served at
a later poll), auto-commit on the log's clock, committed/position lookups, watermarks
and ``offsets_for_times``. A mixin of ``Consumer``, which owns the state it uses."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ... import errors as el_errors
from ...clock import Clock
from ...consumer import Consumer as _ElConsumer
from ...group import OffsetAndMetadata
from ...records import TopicPartition as _TP
from ._common import kafka_error_for, translated
from ._types import (
    OFFSET_END,
    OFFSET_INVALID,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
    error,
)


def _eltp(tp: Any) -> _TP:
    if not isinstance(tp, TopicPartition):
        raise TypeError(f"expected a confluent_kafka.TopicPartition, got {tp!r}")
    return _TP(tp.topic, tp.partition)


def _tp_list(partitions: Any, what: str) -> list[TopicPartition]:
    if not isinstance(partitions, (list, tuple)):
        raise TypeError(f"{what} expects a list of TopicPartition, got {partitions!r}")
    for tp in partitions:
        _eltp(tp)
    return list(partitions)


class OffsetsMixin:
    """The offset calls of ``Consumer``: the attributes below are set by its __init__."""

    _c: _ElConsumer
    _auto_store: bool
    _auto_commit: bool
    _group_id: str | None
    _stored: dict[_TP, tuple[int, str | None]]
    _committed_sent: dict[_TP, int]
    _app_offsets: dict[_TP, int]
    _pending_commit_cbs: list[tuple[KafkaError | None, list[TopicPartition]]]
    _on_commit: Callable | None
    _clock: Clock
    _next_commit_ms: float
    _commit_interval_ms: int
    _check: Callable[[], None]  # RuntimeError once the consumer is closed
    _auto_commit_on: bool
    _due: float  # poll() takes its fast path while the clock is before this (Consumer)

    def _pend(self, report: tuple[KafkaError | None, list[TopicPartition]]) -> None:
        """Queue an ``on_commit(err, partitions)`` report for the next poll to serve."""
        self._pending_commit_cbs.append(report)
        self._due = -math.inf

    def _refresh_due(self) -> None:
        self._due = (-math.inf if self._pending_commit_cbs else
                     self._next_commit_ms if self._auto_commit_on else math.inf)

    def store_offsets(self, message: Message | None = None,
                      offsets: list[TopicPartition] | None = None) -> None:
        """Store ``message.offset() + 1`` (or the ``offsets``) for the next commit. Needs
        ``enable.auto.offset.store=false``; KafkaException(_STATE) for an unassigned
        partition."""
        self._check()
        if (message is None) == (offsets is None):
            raise TypeError("store_offsets() takes exactly one of message= and offsets=")
        if self._auto_store:
            raise KafkaException(error(KafkaError._INVALID_ARG,  # type: ignore[attr-defined]
                                       'store_offsets() requires "enable.auto.offset.store" '
                                       "to be false"))
        if message is not None:
            items = [(_TP(message.topic(), message.partition()), message.offset() + 1, None)]
        else:
            items = [(_eltp(tp), tp.offset, tp.metadata)
                     for tp in _tp_list(offsets, "store_offsets()")]
        assigned = self._c.assignment()
        for tp, _, _ in items:
            if tp not in assigned:
                raise KafkaException(error(KafkaError._STATE,  # type: ignore[attr-defined]
                                           f"store_offsets(): {tp.topic} [{tp.partition}] is "
                                           "not assigned"))
        for tp, off, meta in items:
            if off >= 0:
                self._stored[tp] = (off, meta)

    def commit(self, message: Message | None = None,
               offsets: list[TopicPartition] | None = None,
               asynchronous: bool = True) -> list[TopicPartition] | None:
        """Commit ``message.offset() + 1``, the ``offsets``, or else the stored offsets.

        Returns None when asynchronous (``on_commit`` is called at a later poll), else the
        committed list of TopicPartition. KafkaException(_NO_OFFSET) when there is nothing
        to commit, and the group's error codes otherwise.
        """
        self._check()
        if message is not None and offsets is not None:
            raise TypeError("commit() takes message= or offsets=, not both")
        if message is not None:
            if not isinstance(message, Message) or message.error() is not None:
                raise KafkaException(error(KafkaError._INVALID_ARG,  # type: ignore[attr-defined]
                                           "commit(message=) needs a message without error"))
            wanted = {_TP(message.topic(), message.partition()):
                      OffsetAndMetadata(message.offset() + 1)}
        elif offsets is not None:
            wanted = {_eltp(tp): OffsetAndMetadata(tp.offset, tp.metadata or "")
                      for tp in _tp_list(offsets, "commit()") if tp.offset >= 0}
        else:
            wanted = self._uncommitted(None)
        return self._commit(wanted, asynchronous)

    def _uncommitted(self, only: set[_TP] | None) -> dict[_TP, OffsetAndMetadata]:
        return {tp: OffsetAndMetadata(off, meta or "") for tp, (off, meta) in self._stored.items()
                if (only is None or tp in only) and self._committed_sent.get(tp) != off}

    def _commit(self, wanted: dict[_TP, OffsetAndMetadata], asynchronous: bool
                ) -> list[TopicPartition] | None:
        if self._group_id is None:
            raise KafkaException(error(KafkaError._INVALID_ARG,  # type: ignore[attr-defined]
                                       'commit() requires "group.id" to be configured'))
        if not wanted:
            err = error(KafkaError._NO_OFFSET)  # type: ignore[attr-defined]
            if asynchronous:
                self._pend((err, []))
                return None
            raise KafkaException(err)
        result = []
        for tp, om in sorted(wanted.items()):
            ctp = TopicPartition(tp.topic, tp.partition, om.offset, om.metadata or None)
            result.append(ctp)
        try:
            self._c.commit(wanted)
        except el_errors.EventLogError as exc:
            err = kafka_error_for(exc)
            if asynchronous:
                self._pend((err, result))
                return None
            raise KafkaException(err) from exc
        for tp, om in wanted.items():
            self._committed_sent[tp] = om.offset
        if asynchronous:
            self._pend((None, result))
            return None
        return result

    def _commit_stored(self, only: set[_TP] | None, *, quietly: bool) -> None:
        wanted = self._uncommitted(only)
        if not wanted:
            return
        try:
            self._c.commit(wanted)
        except el_errors.EventLogError as exc:
            if not quietly:
                raise KafkaException(kafka_error_for(exc)) from exc
            self._pend((kafka_error_for(exc), []))
            return
        for tp, om in wanted.items():
            self._committed_sent[tp] = om.offset
        self._pend((None, [
            TopicPartition(tp.topic, tp.partition, om.offset) for tp, om in sorted(wanted.items())
        ]))

    def _maybe_auto_commit(self) -> None:
        if not self._auto_commit or self._group_id is None:
            return
        now = self._clock.monotonic_ms()
        if now < self._next_commit_ms:
            return
        self._next_commit_ms = now + self._commit_interval_ms
        self._commit_stored(None, quietly=True)
        self._refresh_due()

    def _serve_commit_callbacks(self) -> None:
        pending, self._pending_commit_cbs = self._pending_commit_cbs, []
        self._refresh_due()
        if self._on_commit is None:
            return
        for err, partitions in pending:
            self._on_commit(err, partitions)

    def committed(self, partitions: list[TopicPartition], timeout: float | None = None
                  ) -> list[TopicPartition]:
        """The group's committed offsets (OFFSET_INVALID where none)."""
        self._check()
        out = []
        for tp in _tp_list(partitions, "committed()"):
            with translated():
                found = self._c.committed(_eltp(tp), metadata=True)
            ctp = TopicPartition(tp.topic, tp.partition,
                                 OFFSET_INVALID if found is None else found.offset,
                                 None if found is None else (found.metadata or None))
            out.append(ctp)
        return out

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The offset after the last message returned (OFFSET_INVALID before the first)."""
        self._check()
        return [TopicPartition(tp.topic, tp.partition,
                               self._app_offsets.get(_eltp(tp), OFFSET_INVALID))
                for tp in _tp_list(partitions, "position()")]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float | None = None,
                              cached: bool = False) -> tuple[int, int]:
        """(low, high): the log start offset and the log end offset."""
        self._check()
        tp = _eltp(partition)
        with translated():
            return (self._c.beginning_offsets([tp])[tp], self._c.end_offsets([tp])[tp])

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float | None = None
                          ) -> list[TopicPartition]:
        """Each partition's ``offset`` is a time in ms; returns the earliest offset at or after
        it (OFFSET_END, -1, where no message is that recent)."""
        self._check()
        tps = _tp_list(partitions, "offsets_for_times()")
        with translated():
            found = self._c.offsets_for_times({_eltp(tp): tp.offset for tp in tps})
        return [TopicPartition(tp.topic, tp.partition,
                               OFFSET_END if found[_eltp(tp)] is None else found[_eltp(tp)].offset)
                for tp in tps]
