"""kafka-python's KafkaConsumer over an EventLog (eventlog's Consumer follows the same model:
positions, auto-commit of positions, iteration ending at ``consumer_timeout_ms``)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

from ... import errors as el_errors
from ...consumer import Consumer as _ElConsumer
from ...group import OffsetAndMetadata as _ElOffset
from ...records import ConsumerRecord as _ElRecord
from ...records import TimestampType
from ...records import TopicPartition as _TP
from . import errors as Errors
from ._common import refuse_unknown, take_log, translated
from .structs import ConsumerRecord, OffsetAndMetadata, OffsetAndTimestamp, TopicPartition

_new_record = functools.partial(tuple.__new__, ConsumerRecord)
_LOG_APPEND = TimestampType.LOG_APPEND_TIME
_empty: list = []
_fresh_list = list.copy  # map()-ed: a new list per record, as kafka-python's


def _sizes(data: Sequence[Any]) -> Iterable[int]:
    """Serialized sizes, -1 for None: C-level unless some are None (or empty)."""
    if all(data):
        return map(len, data)
    return [-1 if d is None else len(d) for d in data]


def _header_size(headers: tuple) -> int:
    return sum(len(k.encode()) + len(v or b"") for k, v in headers) if headers else -1


def _records(tp: _TP, timestamp_type: TimestampType, offsets: Sequence[int],
             timestamps: Sequence[int], keys: Sequence[Any], values: Sequence[Any],
             headers: Sequence[tuple] | None) -> Iterable[ConsumerRecord]:
    """The fetcher's RecordBuilder: kafka-python's ConsumerRecords from a batch's columns,
    at C speed (Python code per record only for headers and None keys or values)."""
    n = len(offsets)
    return map(_new_record, zip(
        repeat(tp.topic), repeat(tp.partition), repeat(-1), offsets, timestamps,
        repeat(1 if timestamp_type is _LOG_APPEND else 0), keys, values,
        map(_fresh_list, repeat(_empty, n)) if headers is None else map(list, headers),
        repeat(None),
        _sizes(keys), _sizes(values),
        repeat(-1) if headers is None else map(_header_size, headers),
    ))

__all__ = ["ConsumerRebalanceListener", "KafkaConsumer"]

_RESETS = {"earliest": "earliest", "smallest": "earliest", "latest": "latest",
           "largest": "latest", "none": "none"}


class ConsumerRebalanceListener:
    """kafka-python's listener: override ``on_partitions_revoked(revoked)`` and
    ``on_partitions_assigned(assigned)`` (sets of TopicPartition); ``on_partitions_lost``
    defaults to ``on_partitions_revoked``."""

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        raise NotImplementedError

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        raise NotImplementedError

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.on_partitions_revoked(lost)


class _Listener:
    def __init__(self, user: Any, eager: bool) -> None:
        self._user = user
        self._eager = eager
        self._revoked_before_join = False

    @staticmethod
    def _set(partitions: list[_TP]) -> set[TopicPartition]:
        return {TopicPartition(tp.topic, tp.partition) for tp in partitions}

    def on_partitions_revoked(self, partitions: list[_TP]) -> None:
        self._revoked_before_join = True
        self._user.on_partitions_revoked(self._set(partitions))

    def on_partitions_assigned(self, partitions: list[_TP]) -> None:
        if self._eager and not self._revoked_before_join:
            # kafka-python (eager) revokes before every join, the first one too (empty)
            self._user.on_partitions_revoked(set())
        self._revoked_before_join = False
        self._user.on_partitions_assigned(self._set(partitions))

    def on_partitions_lost(self, partitions: list[_TP]) -> None:
        lost = getattr(self._user, "on_partitions_lost", None)
        if not partitions:
            return
        if lost is not None:
            lost(self._set(partitions))
        else:
            self._user.on_partitions_revoked(self._set(partitions))


def _deserializer(spec: Any, what: str) -> Callable[[str, list, Any], Any] | None:
    if spec is None:
        return None
    method = getattr(spec, "deserialize", None)
    if callable(method):
        return method
    if callable(spec):
        return lambda topic, headers, data: spec(data)
    raise Errors.ConfigError(f"{what} must be callable or have deserialize(), got {spec!r}")


def _strategy(spec: Any) -> list[str]:
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    names = []
    for item in items:
        name = item if isinstance(item, str) else getattr(item, "name", None)
        if not isinstance(name, str):
            raise Errors.ConfigError(f"partition_assignment_strategy: unknown assignor {item!r}")
        names.append(name)
    return names


class KafkaConsumer:
    """``kafka.KafkaConsumer(*topics, **configs)`` on the EventLog ``bootstrap_servers``
    selects. An iterator of ConsumerRecord, ending after ``consumer_timeout_ms``."""

    def __init__(self, *topics: str, **configs: Any) -> None:
        configs = dict(configs)
        self._log, _ = take_log(configs)
        self._key_de = _deserializer(configs.pop("key_deserializer", None), "key_deserializer")
        self._value_de = _deserializer(configs.pop("value_deserializer", None),
                                       "value_deserializer")
        self._deserializing = self._key_de is not None or self._value_de is not None
        reset = configs.pop("auto_offset_reset", "latest")
        if reset not in _RESETS:
            raise Errors.ConfigError(
                f"auto_offset_reset must be one of {', '.join(_RESETS)}, got {reset!r}")
        timeout = configs.pop("consumer_timeout_ms", math.inf)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise Errors.ConfigError(f"consumer_timeout_ms must be a number, got {timeout!r}")
        el_config: dict[str, Any] = {
            "auto_offset_reset": _RESETS[reset],
            "consumer_timeout_ms": None if math.isinf(timeout) or timeout < 0 else timeout,
            "session_timeout_ms": configs.pop("session_timeout_ms", 45_000),
            "partition_assignment_strategy": _strategy(
                configs.pop("partition_assignment_strategy", ("range", "roundrobin"))),
        }
        for name in ("group_id", "group_instance_id", "enable_auto_commit",
                     "auto_commit_interval_ms", "max_poll_records", "max_poll_interval_ms",
                     "heartbeat_interval_ms", "exclude_internal_topics"):
            if name in configs:
                el_config[name] = configs.pop(name)
        client_id = configs.pop("client_id", None)
        if client_id is not None:
            el_config["client_id"] = client_id
        self._group_id = el_config.get("group_id")
        self._eager = any(n != "cooperative-sticky"
                          for n in el_config["partition_assignment_strategy"])
        refuse_unknown(configs, "KafkaConsumer")
        try:
            self._c = _ElConsumer(self._log, **el_config)
        except el_errors.InvalidConfigError as exc:
            raise Errors.ConfigError(str(exc)) from None
        self._closed = False
        if topics:
            self.subscribe(topics=list(topics))

    # ------------------------------------------------------------------ records

    def _record(self, r: _ElRecord) -> ConsumerRecord:
        """kafka-python's ConsumerRecord of one record: once per record, so the common
        case (no headers, no deserializers) is built in one step."""
        if r.headers or self._deserializing:
            return self._record_with_extras(r)
        key, value = r.key, r.value
        return _new_record((r.topic, r.partition, -1, r.offset, r.timestamp_ms,
                            1 if r.timestamp_type is _LOG_APPEND else 0, key, value, [], None,
                            -1 if key is None else len(key),  # type: ignore[arg-type]
                            -1 if value is None else len(value), -1))  # type: ignore[arg-type]

    def _deserialized(self, r: ConsumerRecord) -> ConsumerRecord:
        key, value = r.key, r.value
        if self._key_de is not None:
            key = self._key_de(r.topic, r.headers, key)
        if self._value_de is not None:
            value = self._value_de(r.topic, r.headers, value)
        return r._replace(key=key, value=value)

    def _record_with_extras(self, r: _ElRecord) -> ConsumerRecord:
        headers = list(r.headers)
        key, value = r.key, r.value
        if self._key_de is not None:
            key = self._key_de(r.topic, headers, key)
        if self._value_de is not None:
            value = self._value_de(r.topic, headers, value)
        ks = -1 if r.key is None else len(r.key)  # type: ignore[arg-type]
        vs = -1 if r.value is None else len(r.value)  # type: ignore[arg-type]
        hs = sum(len(k.encode()) + len(v or b"") for k, v in headers) if headers else -1
        ts_type = 1 if r.timestamp_type == TimestampType.LOG_APPEND_TIME else 0
        return ConsumerRecord(r.topic, r.partition, -1, r.offset, r.timestamp_ms, ts_type,
                              key, value, headers, None, ks, vs, hs)

    def __iter__(self) -> KafkaConsumer:
        return self

    def __next__(self) -> ConsumerRecord:
        if self._closed:
            raise StopIteration
        with translated():
            r = next(self._c)
        return self._record(r)

    def poll(self, timeout_ms: float = 0, max_records: int | None = None,
             update_offsets: bool = True) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records by partition, waiting up to ``timeout_ms`` for some."""
        self._check()
        with translated():
            runs = self._c.poll_partitions(timeout_ms, max_records, build=_records)
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp, records in runs:
            if self._deserializing:
                records = [self._deserialized(r) for r in records]
            key = TopicPartition(tp.topic, tp.partition)
            bucket = out.get(key)
            if bucket is None:
                out[key] = records
            else:  # a partition read twice in one poll (waiting for fetch_min_bytes)
                bucket.extend(records)
        return out

    def _check(self) -> None:
        if self._closed:
            raise Errors.IllegalStateError("KafkaConsumer is closed")

    # ------------------------------------------------------------------ subscription

    def subscribe(self, topics: Iterable[str] = (), pattern: str | None = None,
                  listener: Any = None) -> None:
        self._check()
        topics = list(topics) if not isinstance(topics, str) else [topics]
        if topics and pattern:
            raise Errors.IllegalStateError("You must choose topics or pattern, but not both")
        if not topics and not pattern:
            raise Errors.IllegalStateError("You must choose topics or pattern")
        if listener is not None and not (hasattr(listener, "on_partitions_revoked")
                                         and hasattr(listener, "on_partitions_assigned")):
            raise TypeError("listener must be a ConsumerRebalanceListener")
        wrapped = None if listener is None else _Listener(listener, self._eager)
        with translated():
            if pattern:
                self._c.subscribe(pattern=pattern, listener=wrapped)
            else:
                self._c.subscribe(topics, listener=wrapped)

    def subscription(self) -> set[str] | None:
        self._check()
        with translated():
            found = self._c.subscription()
        return set(found) if found else None

    def unsubscribe(self) -> None:
        self._check()
        with translated():
            self._c.unsubscribe()

    def assign(self, partitions: Iterable[Any]) -> None:
        self._check()
        with translated():
            self._c.assign([_TP(*tp) for tp in partitions])

    def assignment(self) -> set[TopicPartition]:
        self._check()
        with translated():
            return {TopicPartition(*tp) for tp in self._c.assignment()}

    def topics(self) -> set[str]:
        self._check()
        return set(self._log.topics())

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        self._check()
        try:
            return set(range(self._log.topic(topic).num_partitions))
        except el_errors.UnknownTopicError:
            return None

    # ------------------------------------------------------------------ positions

    def position(self, partition: Any, timeout_ms: float | None = None) -> int:
        self._check()
        with translated():
            return self._c.position(_TP(*partition))

    def highwater(self, partition: Any) -> int | None:
        self._check()
        try:
            return self._log.topic(partition[0]).partition(partition[1]).end_offset
        except el_errors.EventLogError:
            return None

    def seek(self, partition: Any, offset: int) -> None:
        self._check()
        with translated():
            self._c.seek(_TP(*partition), offset)

    def seek_to_beginning(self, *partitions: Any) -> None:
        self._check()
        with translated():
            self._c.seek_to_beginning(*[_TP(*tp) for tp in partitions])

    def seek_to_end(self, *partitions: Any) -> None:
        self._check()
        with translated():
            self._c.seek_to_end(*[_TP(*tp) for tp in partitions])

    def pause(self, *partitions: Any) -> None:
        self._check()
        with translated():
            self._c.pause(*[_TP(*tp) for tp in partitions])

    def resume(self, *partitions: Any) -> None:
        self._check()
        with translated():
            self._c.resume(*[_TP(*tp) for tp in partitions])

    def paused(self) -> set[TopicPartition]:
        self._check()
        with translated():
            return {TopicPartition(*tp) for tp in self._c.paused()}

    def beginning_offsets(self, partitions: Iterable[Any], timeout_ms: float | None = None
                          ) -> dict[TopicPartition, int]:
        self._check()
        with translated():
            found = self._c.beginning_offsets([_TP(*tp) for tp in partitions])
        return {TopicPartition(*tp): off for tp, off in found.items()}

    def end_offsets(self, partitions: Iterable[Any], timeout_ms: float | None = None
                    ) -> dict[TopicPartition, int]:
        self._check()
        with translated():
            found = self._c.end_offsets([_TP(*tp) for tp in partitions])
        return {TopicPartition(*tp): off for tp, off in found.items()}

    def offsets_for_times(self, timestamps: Mapping[Any, int], timeout_ms: float | None = None
                          ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        self._check()
        with translated():
            found = self._c.offsets_for_times({_TP(*tp): ts for tp, ts in timestamps.items()})
        return {TopicPartition(*tp): None if v is None else OffsetAndTimestamp(v.offset,
                                                                               v.timestamp_ms)
                for tp, v in found.items()}

    # ------------------------------------------------------------------ commits

    def _offsets(self, offsets: Mapping[Any, Any] | None) -> dict[_TP, _ElOffset] | None:
        if offsets is None:
            return None
        out = {}
        for tp, om in offsets.items():
            if isinstance(om, tuple):
                out[_TP(*tp)] = _ElOffset(om[0], om[1] or "")
            else:
                out[_TP(*tp)] = _ElOffset(om)
        return out

    def commit(self, offsets: Mapping[Any, Any] | None = None,
               timeout_ms: float | None = None) -> None:
        """Commit ``offsets`` ({TopicPartition: OffsetAndMetadata}) or every position."""
        self._check()
        if self._group_id is None:
            raise Errors.IllegalStateError("Requires group_id")
        with translated():
            self._c.commit(self._offsets(offsets))

    def commit_async(self, offsets: Mapping[Any, Any] | None = None,
                     callback: Callable[[Any, Any], Any] | None = None) -> None:
        """Commit like ``commit()``; ``callback(offsets, response_or_exception)`` runs before
        this returns (in process the commit completes at once)."""
        self._check()
        if self._group_id is None:
            raise Errors.IllegalStateError("Requires group_id")
        result: list[Any] = []

        def done(committed: Any, error: BaseException | None) -> None:
            result.append((committed, error))

        with translated():
            self._c.commit_async(self._offsets(offsets), done)
        if callback is not None and result:
            committed, error = result[0]
            mapped = {TopicPartition(*tp): OffsetAndMetadata(om.offset, om.metadata, -1)
                      for tp, om in committed.items()}
            callback(mapped, None if error is None else Errors.CommitFailedError(str(error)))

    def committed(self, partition: Any, metadata: bool = False,
                  timeout_ms: float | None = None) -> int | OffsetAndMetadata | None:
        self._check()
        if self._group_id is None:
            raise Errors.IllegalStateError("Requires group_id")
        with translated():
            found = self._c.committed(_TP(*partition), metadata=True)
        if found is None:
            return None
        assert isinstance(found, _ElOffset)
        return OffsetAndMetadata(found.offset, found.metadata, -1) if metadata \
            else found.offset

    # ------------------------------------------------------------------ lifecycle

    def bootstrap_connected(self) -> bool:
        return not self._log.closed

    def metrics(self, raw: bool = False) -> dict:
        return {}

    def close(self, autocommit: bool = True, timeout_ms: float | None = None) -> None:
        """Commit (if ``enable_auto_commit`` and ``autocommit``), leave the group, close."""
        if self._closed:
            return
        self._closed = True
        with translated():
            if not autocommit and self._c.config.enable_auto_commit:
                # eventlog's close() auto-commits: leave first, which commits nothing
                self._c.unsubscribe()
            self._c.close()

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<eventlog kafka.KafkaConsumer group_id={self._group_id!r}>"
