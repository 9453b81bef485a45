"""confluent-kafka's Consumer over an EventLog.

Offsets follow librdkafka: each message ``poll()`` returns moves the partition's
*position* (the offset after it); with ``enable.auto.offset.store`` (default)
that offset is also *stored*; auto-commit and ``commit()`` without arguments
commit the stored offsets. eventlog's own auto-commit stays off: this module
commits, every ``auto.commit.interval.ms`` (on the log's clock) at a poll, after
a revoke, and on ``close()``.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ... import errors as el_errors
from ...consumer import Consumer as _ElConsumer
from ...records import TimestampType
from ...records import TopicPartition as _TP
from ._common import (
    Options,
    cluster_metadata,
    kafka_error_for,
    log_from,
    timeout_ms,
    translated,
)
from ._offsets import OffsetsMixin, _eltp, _tp_list
from ._types import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    ClusterMetadata,
    ConfigError,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
    error,
    messages_from_columns,
)

__all__ = ["Consumer"]

_RESETS = {"smallest": "earliest", "earliest": "earliest", "beginning": "earliest",
           "largest": "latest", "latest": "latest", "end": "latest", "error": "none"}
_STRATEGIES = {"range": "range", "roundrobin": "roundrobin",
               "cooperative-sticky": "cooperative-sticky"}
_TUNING = ("fetch.min.bytes", "fetch.wait.max.ms", "fetch.max.bytes",
           "fetch.message.max.bytes", "max.partition.fetch.bytes", "queued.min.messages",
           "queued.max.messages.kbytes", "isolation.level", "auto.commit.enable",
           "group.protocol.type", "offset.store.method", "consume.callback.max.messages")
_REFUSED_CONSUMER = {
    "key.deserializer": "Consumer returns bytes; use DeserializingConsumer for deserializers",
    "value.deserializer": "Consumer returns bytes; use DeserializingConsumer for deserializers",
    "group.remote.assignor": "the KIP-848 consumer protocol is not implemented",
}
_new_tp = functools.partial(tuple.__new__, _TP)
_LOG_APPEND = TimestampType.LOG_APPEND_TIME
_wait_step_ms = 1000.0  # one wait of a poll without a timeout
num_messages_max = 1_000_000


def _messages(tp: _TP, timestamp_type: TimestampType, offsets: Any, timestamps: Any,
              keys: Any, values: Any, headers: Any) -> list[Message]:
    """The fetcher's RecordBuilder: a batch's Messages straight from its columns."""
    return messages_from_columns(
        tp.topic, tp.partition,
        TIMESTAMP_LOG_APPEND_TIME if timestamp_type is _LOG_APPEND else TIMESTAMP_CREATE_TIME,
        offsets, timestamps, keys, values, headers)


def _ctp(tp: Any, offset: int = OFFSET_INVALID) -> TopicPartition:
    return TopicPartition(tp[0], tp[1], offset)


class _Listener:
    """eventlog's rebalance listener, forwarding to confluent-style callbacks."""

    def __init__(self, owner: Consumer) -> None:
        self._owner = owner

    def on_partitions_assigned(self, partitions: list[_TP]) -> None:
        self._owner._assigned(partitions)

    def on_partitions_revoked(self, partitions: list[_TP]) -> None:
        self._owner._revoked(partitions, lost=False)

    def on_partitions_lost(self, partitions: list[_TP]) -> None:
        self._owner._revoked(partitions, lost=True)


class Consumer(OffsetsMixin):
    """``confluent_kafka.Consumer(conf)`` on the EventLog that ``bootstrap.servers`` selects."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        opts = Options(conf, kwargs, "Consumer")
        self._log, self._host = log_from(opts)
        group_id = opts.take("group.id")
        if group_id is not None and (not isinstance(group_id, str) or not group_id):
            raise ConfigError(f'configuration property "group.id" must be a non-empty str, '
                              f"got {group_id!r}")
        reset = opts.take("auto.offset.reset", default="largest")
        if reset not in _RESETS:
            raise ConfigError(
                f'configuration property "auto.offset.reset" must be one of '
                f"{', '.join(_RESETS)}, got {reset!r}"
            )
        self._auto_commit = opts.take_bool("enable.auto.commit", True)
        self._commit_interval_ms = opts.take_int("auto.commit.interval.ms", 5000)
        self._auto_store = opts.take_bool("enable.auto.offset.store", True)
        self._eof = opts.take_bool("enable.partition.eof", False)
        session = opts.take_int("session.timeout.ms", 45000, 1)
        heartbeat = opts.take_int("heartbeat.interval.ms", 3000, 1)
        max_poll = opts.take_int("max.poll.interval.ms", 300000, 1)
        strategy = opts.take("partition.assignment.strategy", default="range,roundrobin")
        names = [s.strip() for s in str(strategy).split(",") if s.strip()]
        for name in names:
            if name not in _STRATEGIES:
                raise ConfigError(
                    f'configuration property "partition.assignment.strategy": unknown '
                    f"assignor {name!r}; supported: {', '.join(_STRATEGIES)}"
                )
        protocol = opts.take("group.protocol", default="classic")
        if protocol != "classic":
            raise ConfigError(
                f'configuration property "group.protocol"={protocol!r} is not supported in '
                "process: only the classic protocol is implemented"
            )
        self._on_commit = opts.take_callable("on_commit")
        instance_id = opts.take("group.instance.id")
        client_id = opts.take("client.id", default="rdkafka")
        opts.take(*_TUNING)
        opts.finish(_REFUSED_CONSUMER)
        with translated():
            self._c = _ElConsumer(
                self._log, group_id=group_id, client_id=str(client_id),
                group_instance_id=instance_id, auto_offset_reset=_RESETS[reset],
                enable_auto_commit=False, session_timeout_ms=session,
                heartbeat_interval_ms=heartbeat, max_poll_interval_ms=max_poll,
                partition_assignment_strategy=[_STRATEGIES[n] for n in names],
            )
        self._group_id = group_id
        self._reset = _RESETS[reset]
        self._closed = False
        self._stored: dict[_TP, tuple[int, str | None]] = {}
        self._committed_sent: dict[_TP, int] = {}
        self._app_offsets: dict[_TP, int] = {}
        self._eof_sent: set[_TP] = set()
        self._pending_commit_cbs: list[tuple[KafkaError | None, list[TopicPartition]]] = []
        self._callbacks: tuple[Callable | None, Callable | None, Callable | None] = (
            None, None, None)
        self._in_callback = False
        self._init_runs()
        self._clock = self._log.clock
        self._next_commit_ms = self._clock.monotonic_ms() + self._commit_interval_ms
        self._auto_commit_on = self._auto_commit and group_id is not None
        # poll()'s fast path runs while self._now() < self._due: the next auto-commit,
        # -inf while on_commit reports wait to be served (OffsetsMixin._refresh_due)
        self._now = self._clock.monotonic_ms if self._auto_commit_on else float  # float(): 0
        self._due = math.inf
        self._refresh_due()

    def _init_runs(self) -> None:
        # Messages eventlog's poll returned that poll()/consume() did not hand out yet,
        # one partition's run at a time: poll() hands out the next of self._it, the
        # iterator of self._run; self._runs are the runs after it. eventlog's positions
        # are past them. The offsets of what was handed out (self._app_offsets, and
        # self._stored with enable.auto.offset.store) are written by _settle(), not by
        # each poll(); every other method settles first (_check()).
        self._runs: collections.deque[tuple[_TP, list[Message]]] = collections.deque()
        self._run: list[Message] = []
        self._it: Iterator[Message] = iter(self._run)
        self._run_tp = _new_tp(("", -1))
        self._settled = 0  # how many of self._run's messages _settle() accounted for

    # ------------------------------------------------------------------ guards

    def _check(self) -> None:
        """RuntimeError once closed; else write the offsets of what poll() handed out."""
        if self._closed:
            raise RuntimeError("Consumer closed")
        self._settle()

    def _settle(self) -> None:
        """Move the handed-out offsets of the current run's partition past its last
        message handed out (poll() leaves that to here: once per run, not per message)."""
        i = len(self._run) - operator.length_hint(self._it)  # handed out
        if i <= self._settled:
            return
        self._settled = i
        tp = self._run_tp
        nxt = self._run[i - 1]._r[2] + 1
        self._app_offsets[tp] = nxt
        if self._eof_sent:
            self._eof_sent.discard(tp)
        if self._auto_store:
            self._stored[tp] = (nxt, None)

    def _buffered(self) -> bool:
        return operator.length_hint(self._it) > 0 or bool(self._runs)

    # ------------------------------------------------------------------ subscription

    def subscribe(self, topics: list[str], on_assign: Callable | None = None,
                  on_revoke: Callable | None = None, on_lost: Callable | None = None) -> None:
        """Subscribe to ``topics`` (names; one starting with ``^`` is a regex), replacing an
        earlier subscription. The callbacks get ``(consumer, [TopicPartition])``."""
        self._check()
        if not isinstance(topics, (list, tuple)) or not all(isinstance(t, str) for t in topics):
            raise TypeError(f"subscribe() expects a list of topic names, got {topics!r}")
        for cb in (on_assign, on_revoke, on_lost):
            if cb is not None and not callable(cb):
                raise TypeError(f"rebalance callbacks must be callable, got {cb!r}")
        if self._group_id is None:
            raise KafkaException(error(KafkaError._INVALID_ARG,  # type: ignore[attr-defined]
                                       'subscribe() requires "group.id" to be configured'))
        regexes = [t for t in topics if t.startswith("^")]
        with translated():
            self._c.unsubscribe()
            if regexes:
                parts = [f"(?:{r}).*" for r in regexes]
                parts += [re.escape(t) for t in topics if not t.startswith("^")]
                self._c.subscribe(pattern="|".join(parts), listener=_Listener(self))
            else:
                self._c.subscribe(list(topics), listener=_Listener(self))
        self._callbacks = (on_assign, on_revoke, on_lost)

    def unsubscribe(self) -> None:
        self._check()
        with translated():
            self._c.unsubscribe()

    def _call(self, cb: Callable | None, partitions: list[_TP]) -> bool:
        if cb is None:
            return False
        self._in_callback = True
        try:
            cb(self, [_ctp(tp) for tp in partitions])
        finally:
            self._in_callback = False
        return True

    def _assigned(self, partitions: list[_TP]) -> None:
        for tp in partitions:
            self._eof_sent.discard(tp)
            self._app_offsets.pop(tp, None)
        self._call(self._callbacks[0], partitions)

    def _revoked(self, partitions: list[_TP], *, lost: bool) -> None:
        if not partitions:
            return  # librdkafka calls no revoke for an empty assignment
        _, on_revoke, on_lost = self._callbacks
        if lost:
            self._call(on_lost if on_lost is not None else on_revoke, partitions)
        else:
            self._call(on_revoke, partitions)
            if self._auto_commit:
                self._commit_stored(set(partitions), quietly=True)
        self._drop(set(partitions), rewind=False)
        for tp in partitions:
            self._stored.pop(tp, None)
            self._app_offsets.pop(tp, None)
            self._eof_sent.discard(tp)

    def _drop(self, tps: set[_TP] | None, *, rewind: bool) -> None:
        """Forget buffered messages of ``tps`` (None: all); with ``rewind``, move eventlog's
        position back to the first of them, so they are fetched again."""
        self._settle()
        first: dict[_TP, int] = {}
        if operator.length_hint(self._it) and (tps is None or self._run_tp in tps):
            first[self._run_tp] = self._run[self._settled]._r[2]
            self._run = self._run[:self._settled]  # what was handed out, for _settle()
            self._it = iter(())
        if self._runs:
            kept: collections.deque[tuple[_TP, list[Message]]] = collections.deque()
            for tp, messages in self._runs:
                if tps is None or tp in tps:
                    first.setdefault(tp, messages[0]._r[2])
                else:
                    kept.append((tp, messages))
            self._runs = kept
        if rewind:
            for tp, offset in first.items():
                try:
                    self._c.seek(tp, offset)
                except el_errors.EventLogError:
                    pass  # the records are gone (retention): the next fetch resets

    # ------------------------------------------------------------------ assignment

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Consume exactly ``partitions`` from their offsets (OFFSET_BEGINNING/END/STORED or
        an offset). Inside an on_assign callback: set the offsets of the assignment."""
        self._check()
        tps = _tp_list(partitions, "assign()")
        if self._in_callback:
            self._seek_all(tps)
            return
        with translated():
            self._drop(None, rewind=False)
            self._c.assign([])
            self._stored.clear()
            self._app_offsets.clear()
            self._eof_sent.clear()
            if tps:
                self._c.assign([_eltp(tp) for tp in tps])
                self._seek_all(tps)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self._check()
        tps = _tp_list(partitions, "incremental_assign()")
        if self._in_callback:
            self._seek_all(tps)
            return
        with translated():
            current = self._c.assignment()
            new = [tp for tp in tps if _eltp(tp) not in current]
            self._c.assign(sorted(current | {_eltp(tp) for tp in tps}))
            self._seek_all(new)

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self._check()
        tps = {_eltp(tp) for tp in _tp_list(partitions, "incremental_unassign()")}
        if self._in_callback:
            return
        with translated():
            self._drop(tps, rewind=False)
            self._c.assign(sorted(self._c.assignment() - tps))
        for tp in tps:
            self._stored.pop(tp, None)
            self._app_offsets.pop(tp, None)
            self._eof_sent.discard(tp)

    def unassign(self) -> None:
        self._check()
        if self._in_callback:
            return
        with translated():
            if self._c.subscription():
                return  # the group owns the assignment; revoke happens at rebalance
            self._drop(None, rewind=False)
            self._c.assign([])
        self._stored.clear()
        self._app_offsets.clear()

    def assignment(self) -> list[TopicPartition]:
        self._check()
        with translated():
            return [_ctp(tp) for tp in sorted(self._c.assignment())]

    def _seek_all(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            if tp.offset not in (OFFSET_STORED, OFFSET_INVALID):
                self._seek(tp)

    def _seek(self, tp: TopicPartition) -> None:
        el = _eltp(tp)
        self._drop({el}, rewind=False)
        with translated():
            if tp.offset == OFFSET_BEGINNING:
                self._c.seek_to_beginning(el)
            elif tp.offset == OFFSET_END:
                self._c.seek_to_end(el)
            elif tp.offset >= 0:
                try:
                    self._c.seek(el, tp.offset)
                except el_errors.OffsetOutOfRangeError:
                    # librdkafka accepts it and resets at the fetch: auto.offset.reset
                    if self._reset == "earliest":
                        self._c.seek_to_beginning(el)
                    elif self._reset == "latest":
                        self._c.seek_to_end(el)
                    else:
                        raise
            else:
                raise KafkaException(error(KafkaError._INVALID_ARG,  # type: ignore[attr-defined]
                                           f"invalid offset {tp.offset} for {tp}"))
        self._eof_sent.discard(el)
        if tp.offset >= 0:
            self._app_offsets[el] = tp.offset
        else:
            self._app_offsets.pop(el, None)

    def seek(self, partition: TopicPartition) -> None:
        """Fetch ``partition`` from ``partition.offset`` next. KafkaException(_STATE) if it is
        not assigned."""
        self._check()
        if not isinstance(partition, TopicPartition):
            raise TypeError(f"seek() expects a TopicPartition, got {partition!r}")
        if _eltp(partition) not in self._c.assignment():
            raise KafkaException(error(KafkaError._STATE,  # type: ignore[attr-defined]
                                       f"seek(): {partition} is not assigned"))
        self._seek(partition)

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._check()
        tps = [_eltp(tp) for tp in _tp_list(partitions, "pause()")]
        with translated():
            self._drop(set(tps), rewind=True)
            self._c.pause(*tps)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._check()
        with translated():
            self._c.resume(*[_eltp(tp) for tp in _tp_list(partitions, "resume()")])

    # ------------------------------------------------------------------ consuming

    def poll(self, timeout: float | None = None) -> Message | None:
        """The next message (or error/EOF event), or None once ``timeout`` seconds passed
        (None or -1: wait for one)."""
        if self._now() < self._due:  # the common case: the next buffered message
            for message in self._it:  # (close() empties it)
                return message
        if self._closed:
            raise RuntimeError("Consumer closed")
        found = self._consume(1, timeout_ms(timeout))
        return found[0] if found else None

    def consume(self, num_messages: int = 1, timeout: float | None = -1) -> list[Message]:
        """Up to ``num_messages`` messages; fewer (maybe none) once ``timeout`` passed."""
        self._check()
        if isinstance(num_messages, bool) or not isinstance(num_messages, int) \
                or not 0 <= num_messages <= num_messages_max:
            raise ValueError(f"num_messages must be between 0 and {num_messages_max} (1M)")
        if num_messages == 0:
            return []
        return self._consume(num_messages, timeout_ms(timeout))

    def _consume(self, n: int, wait_ms: float | None) -> list[Message]:
        self._serve_commit_callbacks()
        out = self._take(n, 0)
        if out or wait_ms == 0:
            return out
        start = self._clock.monotonic_ms()
        while True:
            if wait_ms is None:
                step = _wait_step_ms
            else:
                step = wait_ms - (self._clock.monotonic_ms() - start)
                if step <= 0:
                    return out
            out = self._take(n, step)
            if out or self._closed:
                return out

    def _take(self, n: int, wait_ms: float) -> list[Message]:
        self._settle()
        self._maybe_auto_commit()
        if not self._buffered():  # fetch a poll's worth; hand them out one poll() at a time
            try:
                runs = self._c.poll_partitions(0, build=_messages)
                if not runs and self._eof:
                    eofs = self._eof_events(n)
                    if eofs:
                        return eofs
                if not runs and wait_ms > 0:
                    runs = self._c.poll_partitions(wait_ms, build=_messages)
            except el_errors.NoOffsetForPartitionError as exc:
                return [Message(error=kafka_error_for(exc))]
            except el_errors.EventLogError as exc:
                raise KafkaException(kafka_error_for(exc)) from exc
            self._runs.extend(run for run in runs if run[1])
        out: list[Message] = []
        while len(out) < n:
            left = operator.length_hint(self._it)
            if not left:
                if not self._runs:
                    break
                self._settle()
                self._run_tp, self._run = self._runs.popleft()
                self._it = iter(self._run)
                self._settled = 0
                left = len(self._run)
            out.extend(itertools.islice(self._it, min(left, n - len(out))))
        if len(out) < n and self._eof and not self._buffered():
            self._settle()
            out.extend(self._eof_events(n - len(out)))
        return out

    def _eof_events(self, n: int) -> list[Message]:
        out: list[Message] = []
        paused = self._c.paused()
        for tp in sorted(self._c.assignment()):
            if len(out) >= n:
                break
            if tp in self._eof_sent or tp in paused:
                continue
            position = self._c.position(tp)
            end = self._c.end_offsets([tp])[tp]
            if position >= end:
                self._eof_sent.add(tp)
                out.append(Message(tp.topic, tp.partition, end, error=error(
                    KafkaError._PARTITION_EOF,  # type: ignore[attr-defined]
                    f"Fetch from broker 0 reached end of partition at offset {end} "
                    f"(HighwaterMark {end})")))
        return out

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        self._check()
        return cluster_metadata(self._log, self._host, topic)

    def memberid(self) -> str | None:
        self._check()
        return self._c.member_id or None

    def close(self) -> None:
        """Commit the stored offsets (with auto-commit), leave the group, close. Idempotent."""
        if self._closed:
            return
        try:
            self._drop(None, rewind=False)
            if self._auto_commit and self._group_id is not None:
                self._commit_stored(None, quietly=True)
            with translated():
                self._c.close()
        finally:
            self._closed = True

    def __repr__(self) -> str:
        return f"<eventlog confluent_kafka.Consumer group.id={self._group_id!r}>"
