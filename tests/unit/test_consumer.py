"""Consumer semantics (KAFKA_SEMANTICS 4.1-4.13) and bad input, on a ManualClock.

Group members are all polled from the test's thread, with ``timeout_ms=0``: a group
must converge that way with no sleeping. ``check()`` runs after every state change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

import eventlog
from eventlog.consumer import (
    Consumer,
    ConsumerConfig,
    ConsumerRebalanceListener,
    OffsetAndMetadata,
    OffsetAndTimestamp,
)
from eventlog.errors import (
    ClosedError,
    CommitFailedError,
    FencedInstanceIdError,
    IllegalStateError,
    InvalidConfigError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RebalanceInProgressError,
    UnknownPartitionError,
    UnknownTopicError,
)
from eventlog.group.coordinator import coordinator_for, describe_group
from eventlog.group.state import GroupState
from eventlog.records import ConsumerRecord, TimestampType
from eventlog.records import TopicPartition as TP
from eventlog.testing import ManualClock

T0, T1, T2 = TP("t", 0), TP("t", 1), TP("t", 2)


@pytest.fixture
def log(clock: ManualClock) -> Iterator[eventlog.EventLog]:
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t", 3)
        yield log


def produce(log: eventlog.EventLog, tp: TP, n: int, *, ts: int | None = None) -> None:
    part = log.partition(tp.topic, tp.partition)
    start = part.end_offset
    part.append([(b"k%d" % i, b"v%d" % i) for i in range(start, start + n)], timestamp_ms=ts)


def offsets(records: list[ConsumerRecord], tp: TP | None = None) -> list[int]:
    return [r.offset for r in records if tp is None or (r.topic, r.partition) == tp]


class Recorder(ConsumerRebalanceListener):
    """Records every callback, into a list shared by several members if given."""

    def __init__(self, name: str = "", events: list | None = None) -> None:
        self.name = name
        self.events: list[tuple[str, str, list[TP]]] = [] if events is None else events

    def on_partitions_revoked(self, partitions: list[TP]) -> None:
        self.events.append((self.name, "revoked", partitions))

    def on_partitions_assigned(self, partitions: list[TP]) -> None:
        self.events.append((self.name, "assigned", partitions))

    def on_partitions_lost(self, partitions: list[TP]) -> None:
        self.events.append((self.name, "lost", partitions))

    def mine(self) -> list[tuple[str, list[TP]]]:
        return [(kind, tps) for name, kind, tps in self.events if name == self.name]


def settle(*consumers: Consumer, rounds: int = 8) -> list[ConsumerRecord]:
    """Poll each consumer in turn (timeout 0) until the group is stable for a whole round."""
    got: list[ConsumerRecord] = []
    log = consumers[0]._log
    for _ in range(rounds):
        generations = [c.generation for c in consumers]
        for c in consumers:
            got.extend(c.poll())
            c.check()
        coordinator_for(log).check()
        group = consumers[0].group_id
        state = describe_group(log, group).state if group else None
        if state in (None, GroupState.STABLE) and generations == [
            c.generation for c in consumers
        ] and all(c._membership.state == "stable" and not c._membership.rejoin_needed
                  for c in consumers):
            return got
    raise AssertionError(f"group did not settle: {consumers}")


# ---------------------------------------------------------------------------------------
# Configuration


def test_defaults_are_kafkas() -> None:
    cfg = ConsumerConfig()
    assert (cfg.auto_offset_reset, cfg.enable_auto_commit, cfg.auto_commit_interval_ms) == (
        "latest", True, 5000)
    assert (cfg.max_poll_records, cfg.max_poll_interval_ms, cfg.session_timeout_ms) == (
        500, 300_000, 45_000)
    assert (cfg.heartbeat_interval_ms, cfg.fetch_min_bytes, cfg.fetch_max_wait_ms) == (
        3000, 1, 500)
    assert tuple(cfg.partition_assignment_strategy) == ("range", "cooperative-sticky")
    assert cfg.group_instance_id is None
    assert cfg.consumer_timeout_ms is None


def test_unknown_config_lists_known_names(log: eventlog.EventLog) -> None:
    with pytest.raises(InvalidConfigError, match=r"unknown consumer config auto_reset.*"
                       r"auto_offset_reset"):
        Consumer(log, auto_reset="earliest")


@pytest.mark.parametrize("config", [
    {"auto_offset_reset": "smallest"},
    {"max_poll_records": 0},
    {"enable_auto_commit": "yes"},
    {"heartbeat_interval_ms": 45_000},
    {"group_instance_id": "i"},  # needs a group_id
    {"group_id": ""},
    {"partition_assignment_strategy": ["nope"]},
    {"value_deserializer": "yaml"},
    {"consumer_timeout_ms": -1},
])
def test_invalid_config_is_rejected(log: eventlog.EventLog, config: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfigError):
        Consumer(log, **config)


def test_session_timeout_must_fit_the_coordinator(log: eventlog.EventLog) -> None:
    with pytest.raises(InvalidConfigError, match="session_timeout_ms"):
        Consumer(log, group_id="g", session_timeout_ms=1000, heartbeat_interval_ms=100)


# ---------------------------------------------------------------------------------------
# Reading


def test_assign_and_poll_returns_records_in_offset_order(log: eventlog.EventLog) -> None:
    produce(log, T0, 5)
    produce(log, T1, 3)
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0, T1])
    records = c.poll()
    c.check()
    assert offsets(records, T0) == [0, 1, 2, 3, 4]
    assert offsets(records, T1) == [0, 1, 2]
    r = records[0] if records[0].partition == 0 else records[-1]
    assert r == ConsumerRecord("t", 0, r.offset, r.timestamp_ms, TimestampType.CREATE_TIME,
                               b"k%d" % r.offset, b"v%d" % r.offset, ())
    assert c.position(T0) == 5
    assert c.poll() == []


def test_max_records_and_large_batches_served_across_polls(log: eventlog.EventLog) -> None:
    produce(log, T0, 2000)
    c = Consumer(log, auto_offset_reset="earliest", max_poll_records=300)
    c.assign([T0])
    seen: list[int] = []
    while len(seen) < 2000:
        batch = c.poll()
        assert 0 < len(batch) <= 300
        seen.extend(offsets(batch))
    assert seen == list(range(2000))
    assert len(c.poll(max_records=1)) == 0
    produce(log, T0, 3)
    assert offsets(c.poll(max_records=2)) == [2000, 2001]
    assert offsets(c.poll(max_records=2)) == [2002]


def test_log_append_time_and_headers(log: eventlog.EventLog, clock: ManualClock) -> None:
    log.create_topic("la", 1, message_timestamp_type="LogAppendTime")
    log.partition("la", 0).append([(None, b"x", [("h", b"1")], 5)])
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([TP("la", 0)])
    (r,) = c.poll()
    assert r.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert r.timestamp_ms == clock.time_ms()
    assert r.headers == (("h", b"1"),)


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("str", "héllo".encode(), "héllo"),
    ("json", b'{"a": [1]}', {"a": [1]}),
    ("msgpack", msgpack.packb({"a": 1}), {"a": 1}),
    (lambda b: None if b is None else b[::-1], b"abc", b"cba"),  # None is passed, as Kafka
    ("bytes", b"raw", b"raw"),
])
def test_deserializers(log: eventlog.EventLog, name: Any, raw: bytes, expected: Any) -> None:
    log.partition("t", 0).append([(raw, raw), (None, None)])
    c = Consumer(log, auto_offset_reset="earliest", key_deserializer=name,
                 value_deserializer=name)
    c.assign([T0])
    first, second = c.poll()
    assert (first.key, first.value) == (expected, expected)
    assert (second.key, second.value) == (None, None)


def test_failing_deserializer_leaves_the_position(log: eventlog.EventLog) -> None:
    log.partition("t", 0).append([(None, b"not json")])
    c = Consumer(log, auto_offset_reset="earliest", value_deserializer=json.loads)
    c.assign([T0])
    with pytest.raises(ValueError):
        c.poll()
    assert c.position(T0) == 0


# ---------------------------------------------------------------------------------------
# Positions: reset policy, seek, lookups


@pytest.mark.parametrize(("policy", "first"), [("earliest", 0), ("latest", 4)])
def test_auto_offset_reset_without_committed_offset(
    log: eventlog.EventLog, policy: str, first: int
) -> None:
    produce(log, T0, 4)
    c = Consumer(log, group_id="g", auto_offset_reset=policy)
    c.assign([T0])
    assert c.position(T0) == first
    produce(log, T0, 1)
    assert offsets(c.poll())[0] == first


def test_auto_offset_reset_none_raises_and_changes_nothing(log: eventlog.EventLog) -> None:
    produce(log, T0, 4)
    c = Consumer(log, group_id="g", auto_offset_reset="none")
    c.assign([T0])
    with pytest.raises(NoOffsetForPartitionError):
        c.poll()
    with pytest.raises(NoOffsetForPartitionError):
        c.position(T0)
    c.seek(T0, 2)
    assert offsets(c.poll()) == [2, 3]


def test_committed_offset_wins_over_reset_policy(log: eventlog.EventLog) -> None:
    produce(log, T0, 6)
    c = Consumer(log, group_id="g", auto_offset_reset="none")
    c.assign([T0])
    c.commit({T0: 4})
    assert offsets(c.poll()) == [4, 5]


@pytest.mark.parametrize(("policy", "expected"), [("earliest", 5), ("latest", 10)])
def test_out_of_range_position_is_reset(log: eventlog.EventLog, policy: str,
                                        expected: int) -> None:
    produce(log, T0, 10)
    c = Consumer(log, auto_offset_reset=policy)
    c.assign([T0])
    c.seek(T0, 2)
    log.partition("t", 0).delete_before(5)  # retention removed offsets 2..4
    records = c.poll()
    assert offsets(records)[:1] == ([5] if expected == 5 else [])
    assert c.position(T0) == 10


def test_out_of_range_with_reset_none_raises(log: eventlog.EventLog) -> None:
    produce(log, T0, 10)
    c = Consumer(log, auto_offset_reset="none")
    c.assign([T0])
    c.seek(T0, 2)
    log.partition("t", 0).delete_before(5)
    with pytest.raises(OffsetOutOfRangeError):
        c.poll()
    assert c.position(T0) == 2


def test_position_versus_committed(log: eventlog.EventLog) -> None:
    produce(log, T0, 5)
    c = Consumer(log, group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
    c.assign([T0])
    assert c.committed(T0) is None
    c.poll(max_records=3)
    assert c.position(T0) == 3  # the next offset to read: client-side only
    assert c.committed(T0) is None
    c.commit()
    assert c.committed(T0) == 3  # a committed offset is the next offset to read
    c.commit({T0: OffsetAndMetadata(2, "replay")})
    assert c.committed(T0, metadata=True) == OffsetAndMetadata(2, "replay")
    assert c.position(T0) == 3  # committing does not move the position


def test_seek(log: eventlog.EventLog) -> None:
    produce(log, T0, 10)
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0])
    c.poll()
    c.seek(T0, 7)
    assert c.position(T0) == 7
    assert offsets(c.poll()) == [7, 8, 9]
    c.seek(T0, 10)  # the log end is a valid position
    assert c.poll() == []


@pytest.mark.parametrize(("offset", "error"), [
    (11, OffsetOutOfRangeError), (2, OffsetOutOfRangeError), (-1, InvalidConfigError),
    ("3", InvalidConfigError),
])
def test_bad_seek_changes_nothing(log: eventlog.EventLog, offset: Any,
                                  error: type[Exception]) -> None:
    produce(log, T0, 10)
    log.partition("t", 0).delete_before(3)
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0])
    c.seek(T0, 6)
    with pytest.raises(error):
        c.seek(T0, offset)
    assert c.position(T0) == 6
    with pytest.raises(IllegalStateError):
        c.seek(T1, 0)


def test_seek_to_beginning_and_end_are_lazy(log: eventlog.EventLog) -> None:
    produce(log, T0, 5)
    produce(log, T1, 5)
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0, T1])
    c.poll()
    c.seek_to_beginning(T0)
    log.partition("t", 0).delete_before(2)  # before the seek is evaluated
    assert c.position(T0) == 2
    c.seek_to_end()  # no argument: every assigned partition
    produce(log, T1, 3)  # still before evaluation
    assert c.position(T1) == 8
    assert c.position(T0) == 5
    with pytest.raises(IllegalStateError):
        c.seek_to_end(T2)
    c.seek_to_beginning([T0, T1])
    assert sorted(offsets(c.poll())) == [0, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7]
    assert c.poll() == []


def test_beginning_and_end_offsets(log: eventlog.EventLog) -> None:
    produce(log, T0, 5)
    log.partition("t", 0).delete_before(2)
    c = Consumer(log)
    assert c.beginning_offsets([T0, T1]) == {T0: 2, T1: 0}
    assert c.end_offsets([T0, T1]) == {T0: 5, T1: 0}  # never written: 0
    assert c.assignment() == set()  # needs no assignment, moves nothing
    with pytest.raises(UnknownTopicError):
        c.end_offsets([TP("nope", 0)])
    with pytest.raises(UnknownPartitionError):
        c.beginning_offsets([TP("t", 9)])


def test_offsets_for_times(log: eventlog.EventLog) -> None:
    part = log.partition("t", 0)
    part.append([(None, b"a", None, 100), (None, b"b", None, 300), (None, b"c", None, 200)])
    c = Consumer(log)
    found = c.offsets_for_times({T0: 150, T1: 0})
    assert found == {T0: OffsetAndTimestamp(1, 300), T1: None}
    assert c.offsets_for_times({T0: 301}) == {T0: None}
    assert c.offsets_for_times({T0: 0}) == {T0: OffsetAndTimestamp(0, 100)}
    with pytest.raises(InvalidConfigError):
        c.offsets_for_times({T0: -1})


def test_pause_and_resume(log: eventlog.EventLog) -> None:
    produce(log, T0, 3)
    produce(log, T1, 3)
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0, T1])
    c.pause(T0)
    assert c.paused() == {T0}
    assert offsets(c.poll(), T0) == []
    assert offsets(c.poll(), T1) == []  # already consumed in the first poll
    c.resume(T0)
    assert offsets(c.poll(), T0) == [0, 1, 2]
    assert c.paused() == set()
    with pytest.raises(IllegalStateError):
        c.pause(T2)
    assert c.paused() == set()


def test_long_poll_waits_on_the_clock(log: eventlog.EventLog, clock: ManualClock) -> None:
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0])
    before = clock.monotonic_ms()
    assert c.poll(timeout_ms=1000) == []
    assert clock.monotonic_ms() - before >= 1000  # autojump: no real sleeping


def test_fetch_min_bytes_waits_up_to_fetch_max_wait(
    log: eventlog.EventLog, clock: ManualClock
) -> None:
    produce(log, T0, 2)
    c = Consumer(log, auto_offset_reset="earliest", fetch_min_bytes=10_000,
                 fetch_max_wait_ms=200)
    c.assign([T0])
    before = clock.monotonic_ms()
    assert offsets(c.poll(timeout_ms=5_000)) == [0, 1]
    waited = clock.monotonic_ms() - before
    assert 200 <= waited < 5_000


# ---------------------------------------------------------------------------------------
# Committing


def test_auto_commit_timing(log: eventlog.EventLog, clock: ManualClock) -> None:
    produce(log, T0, 10)
    c = Consumer(log, group_id="g", auto_offset_reset="earliest",
                 auto_commit_interval_ms=5000)
    c.assign([T0])
    c.poll(max_records=4)
    clock.advance(4999)
    c.poll(max_records=2)  # checked at the start of poll: not yet due
    assert c.committed(T0) is None
    clock.advance(1)
    c.poll(max_records=1)  # due: commits what earlier polls returned (6), then fetches
    assert c.committed(T0) == 6
    assert c.position(T0) == 7
    clock.advance(1000)
    c.poll()
    assert c.committed(T0) == 6  # timer restarted at the commit
    c.close()  # and on close
    other = Consumer(log, group_id="g")
    assert other.committed(T0) == 10


def test_auto_commit_disabled_commits_nothing(log: eventlog.EventLog,
                                              clock: ManualClock) -> None:
    produce(log, T0, 3)
    c = Consumer(log, group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
    c.assign([T0])
    c.poll()
    clock.advance(60_000)
    c.poll()
    c.close()
    assert Consumer(log, group_id="g").committed(T0) is None


def test_commit_async_reports_to_callback(log: eventlog.EventLog) -> None:
    produce(log, T0, 3)
    c = Consumer(log, group_id="g", auto_offset_reset="earliest")
    c.assign([T0])
    c.poll()
    calls: list[tuple] = []
    c.commit_async(callback=lambda offsets, error: calls.append((offsets, error)))
    assert calls == [({T0: OffsetAndMetadata(3)}, None)]
    assert c.committed(T0) == 3
    busy = Consumer(log, "t", group_id="g2")
    busy.poll()
    standalone = Consumer(log, group_id="g2")
    standalone.assign([T0])
    standalone.commit_async({T0: 1}, callback=lambda o, e: calls.append((o, e)))
    assert isinstance(calls[-1][1], CommitFailedError)


def test_standalone_commit_into_a_group_with_members_fails(log: eventlog.EventLog) -> None:
    member = Consumer(log, "t", group_id="g")
    member.poll()
    standalone = Consumer(log, group_id="g")
    standalone.assign([T0])
    with pytest.raises(CommitFailedError):
        standalone.commit({T0: 1})
    assert standalone.committed(T0) is None


@pytest.mark.parametrize("bad", [{T0: -1}, {T0: "1"}, {"t": 1}, {T0: OffsetAndMetadata(1, 5)},
                                 {T0: OffsetAndMetadata(1, "x" * 4097)}, [T0],
                                 {T0: 2**63}, {T0: 2**70}, {T0: OffsetAndMetadata(2**70)},
                                 {T0: True}, {T0: OffsetAndMetadata(1, None)}])
def test_bad_commit_changes_nothing(log: eventlog.EventLog, bad: Any) -> None:
    c = Consumer(log, group_id="g")
    c.assign([T0])
    with pytest.raises(InvalidConfigError):
        c.commit(bad)
    assert c.committed(T0) is None


def test_commit_of_the_largest_offset_is_accepted(log: eventlog.EventLog) -> None:
    c = Consumer(log, group_id="g")
    c.assign([T0])
    c.commit({T0: 2**63 - 1})  # int64, as in Kafka; 2**70 used to raise OverflowError
    assert c.committed(T0) == 2**63 - 1


@pytest.mark.parametrize("missing, error", [
    (TP("nope", 5), UnknownTopicError), (TP("t", 3), UnknownPartitionError),
    (TP("t", -1), UnknownPartitionError),
])
def test_commit_for_a_partition_that_does_not_exist_is_refused(
    log: eventlog.EventLog, missing: TP, error: type[Exception]
) -> None:
    # Kafka answers UNKNOWN_TOPIC_OR_PARTITION; it used to be stored and shown with lag 0.
    c = Consumer(log, group_id="g")
    c.assign([T0])
    with pytest.raises(error, match="UNKNOWN_TOPIC_OR_PARTITION"):
        c.commit({T0: 1, missing: 1})  # all or nothing: T0 is not committed either
    with pytest.raises(error):
        c.commit_async({missing: 1}, callback=lambda o, e: None)
    assert c.committed(T0) is None
    assert describe_group(log, "g").offsets == ()
    assert log.topics() == ["t"]  # and nothing was created


def test_commit_without_group_is_rejected(log: eventlog.EventLog) -> None:
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0])
    for call in (lambda: c.commit(), lambda: c.commit({T0: 1}), lambda: c.commit_async(),
                 lambda: c.committed(T0)):
        with pytest.raises(InvalidConfigError, match="group_id"):
            call()


def test_committed_offsets_survive_reopen(tmp_path: Path, clock: ManualClock) -> None:
    with eventlog.open(tmp_path, clock=clock) as log:
        log.create_topic("t", 3)
        produce(log, T0, 5)
        with Consumer(log, "t", group_id="g", auto_offset_reset="earliest",
                      enable_auto_commit=False) as c:
            c.poll()
            c.commit({T0: OffsetAndMetadata(3, "m")})
    with eventlog.open(tmp_path, clock=clock) as log:
        c = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
        assert c.committed(T0, metadata=True) == OffsetAndMetadata(3, "m")
        records = settle(c)
        assert offsets(records, T0) == [3, 4]


# ---------------------------------------------------------------------------------------
# Groups


def test_group_in_one_thread_converges_and_shares_partitions(log: eventlog.EventLog) -> None:
    for tp in (T0, T1, T2):
        produce(log, tp, 4)
    a = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
    settle(a)
    assert a.assignment() == {T0, T1, T2}
    b = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
    c = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
    settle(a, b, c)
    assignments = [x.assignment() for x in (a, b, c)]
    assert sorted(map(len, assignments)) == [1, 1, 1]
    assert set().union(*assignments) == {T0, T1, T2}
    d = describe_group(log, "g")
    assert d.state is GroupState.STABLE
    assert d.protocol == "range"
    assert len(d.members) == 3


def test_eager_listener_order(log: eventlog.EventLog) -> None:
    events: list = []
    a = Consumer(log, group_id="g")
    a.subscribe(["t"], listener=Recorder("a", events))
    settle(a)
    b = Consumer(log, group_id="g")
    b.subscribe(["t"], listener=Recorder("b", events))
    settle(b, a)
    assert events == [
        ("a", "assigned", [T0, T1, T2]),
        ("a", "revoked", [T0, T1, T2]),  # all, before rejoining
        ("a", "assigned", [T0, T1]),  # the full new assignment
        ("b", "assigned", [T2]),
    ]
    b.close()
    settle(a)
    assert events[4:] == [
        ("b", "revoked", [T2]),
        ("a", "revoked", [T0, T1]),
        ("a", "assigned", [T0, T1, T2]),
    ]


def test_eager_revoke_is_called_even_when_nothing_is_owned(log: eventlog.EventLog) -> None:
    log.create_topic("one", 1)
    events: list = []
    a = Consumer(log, group_id="g")
    a.subscribe(["one"], listener=Recorder("a", events))
    b = Consumer(log, group_id="g")
    b.subscribe(["one"], listener=Recorder("b", events))
    settle(a, b)
    owner, idle = (a, b) if a.assignment() else (b, a)
    events.clear()
    c = Consumer(log, "one", group_id="g")
    settle(c, owner, idle)
    idle_name = "a" if idle is a else "b"
    assert (idle_name, "revoked", []) in events


def test_cooperative_listener_order_and_follow_up(log: eventlog.EventLog) -> None:
    coop = {"group_id": "g", "partition_assignment_strategy": ["cooperative-sticky"]}
    events: list = []
    a = Consumer(log, **coop)
    a.subscribe(["t"], listener=Recorder("a", events))
    settle(a)
    b = Consumer(log, **coop)
    b.subscribe(["t"], listener=Recorder("b", events))
    settle(b, a)
    assert describe_group(log, "g").protocol == "cooperative-sticky"
    moved = [tps for name, kind, tps in events if (name, kind) == ("a", "revoked")]
    assert len(moved) == 1
    assert len(moved[0]) == 1  # only what moves is revoked
    assert events == [
        ("a", "assigned", [T0, T1, T2]),
        # generation 2 gives b nothing (a still owns it) and a everything but `moved`
        ("a", "revoked", moved[0]),
        ("a", "assigned", []),  # always called, even when empty
        # a rejoined at once (follow-up); b, polled next, joins generation 3 directly
        ("b", "assigned", moved[0]),
        ("a", "assigned", []),
    ]
    assert b.assignment() == set(moved[0])
    assert a.assignment() == {T0, T1, T2} - set(moved[0])


def test_revoke_completes_before_the_new_owner_is_assigned(log: eventlog.EventLog) -> None:
    for strategy in (["range"], ["cooperative-sticky"]):
        group = f"g-{strategy[0]}"
        events: list = []
        members = []
        for i in range(3):
            m = Consumer(log, group_id=group, partition_assignment_strategy=strategy)
            m.subscribe(["t"], listener=Recorder(str(i), events))
            members.append(m)
            settle(*members)
        members[0].close()
        settle(*members[1:])
        owner: dict[TP, str] = {}
        for name, kind, tps in events:
            for tp in tps:
                if kind == "assigned":
                    assert tp not in owner, (strategy, tp, events)
                    owner[tp] = name
                else:
                    assert owner.pop(tp) == name


def test_callback_exception_propagates_but_assignment_holds(log: eventlog.EventLog) -> None:
    class Failing(ConsumerRebalanceListener):
        def on_partitions_assigned(self, partitions: list[TP]) -> None:
            raise RuntimeError("boom")

    c = Consumer(log, group_id="g")
    c.subscribe(["t"], listener=Failing())
    with pytest.raises(RuntimeError, match="boom"):
        c.poll()
    assert c.assignment() == {T0, T1, T2}
    c.check()
    assert c.poll() == []


def test_next_owner_starts_at_the_previous_owners_commit(log: eventlog.EventLog) -> None:
    produce(log, T0, 10)
    a = Consumer(log, "t", group_id="g", auto_offset_reset="earliest",
                 enable_auto_commit=False)
    assert offsets(settle(a), T0) == list(range(10))
    a.commit({T0: 6})
    a.close()
    b = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
    assert offsets(settle(b), T0) == [6, 7, 8, 9]


def test_auto_commit_before_revoke_hands_over_exactly(log: eventlog.EventLog) -> None:
    for tp in (T0, T1, T2):
        produce(log, tp, 5)
    seen: list[tuple[int, int]] = []
    a = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
    seen += [(r.partition, r.offset) for r in settle(a)]
    for tp in (T0, T1, T2):
        produce(log, tp, 5)
    b = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
    seen += [(r.partition, r.offset) for r in settle(b, a)]
    seen += [(r.partition, r.offset) for r in settle(a, b)]
    assert sorted(seen) == sorted((p, o) for p in range(3) for o in range(10))


def test_evicted_member_commit_fails_then_it_rejoins(
    log: eventlog.EventLog, clock: ManualClock
) -> None:
    produce(log, T0, 3)
    events: list = []
    a = Consumer(log, group_id="g", auto_offset_reset="earliest")
    a.subscribe(["t"], listener=Recorder("a", events))
    b = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
    settle(a, b)
    clock.advance(200_000)
    b.poll()
    clock.advance(100_000)  # a has not polled for 300 s: evicted at b's next poll
    b.poll()
    with pytest.raises(CommitFailedError, match="rebalanced"):
        a.commit({T0: 1})
    settle(b, a)
    assert ("a", "lost", [T0, T1]) in events
    assert a.assignment() | b.assignment() == {T0, T1, T2}


def test_commit_while_rejoining_raises_rebalance_in_progress(log: eventlog.EventLog) -> None:
    a = Consumer(log, "t", group_id="g")
    settle(a)
    b = Consumer(log, "t", group_id="g")
    b.poll()  # b waits for a
    with pytest.raises(RebalanceInProgressError):
        b.commit({T0: 1})
    a.commit({T0: 1})  # a, not yet told, commits with the current generation: accepted
    assert a.committed(T0) == 1


def test_static_member_restart_keeps_assignment_without_rebalance(
    log: eventlog.EventLog, clock: ManualClock
) -> None:
    events: list = []
    a = Consumer(log, group_id="g", group_instance_id="A")
    a.subscribe(["t"], listener=Recorder("a", events))
    b = Consumer(log, group_id="g", group_instance_id="B")
    b.subscribe(["t"], listener=Recorder("b", events))
    settle(a, b)
    before = (describe_group(log, "g").generation, a.assignment(), b.assignment())
    a.close()  # no LeaveGroup
    clock.advance(30_000)
    settle(b)
    a2 = Consumer(log, group_id="g", group_instance_id="A")
    a2.subscribe(["t"], listener=Recorder("a2", events))
    settle(a2, b)
    assert (describe_group(log, "g").generation, a2.assignment(), b.assignment()) == before
    assert [e for e in events if e[0] == "b"] == [("b", "assigned", sorted(before[2]))]


def test_static_member_gone_past_session_timeout_is_replaced_by_rebalance(
    log: eventlog.EventLog, clock: ManualClock
) -> None:
    a = Consumer(log, "t", group_id="g", group_instance_id="A")
    b = Consumer(log, "t", group_id="g", group_instance_id="B")
    settle(a, b)
    a.close()
    clock.advance(45_000)
    settle(b)
    assert b.assignment() == {T0, T1, T2}


def test_two_live_consumers_with_one_instance_id_fence_the_older(
    log: eventlog.EventLog,
) -> None:
    old = Consumer(log, "t", group_id="g", group_instance_id="A")
    settle(old)
    new = Consumer(log, "t", group_id="g", group_instance_id="A")
    settle(new)
    with pytest.raises(FencedInstanceIdError):
        old.poll()
    with pytest.raises(FencedInstanceIdError):
        old.poll()
    assert old.assignment() == set()
    assert new.assignment() == {T0, T1, T2}
    coordinator_for(log).check()


def test_new_partitions_are_assigned_after_a_rebalance(log: eventlog.EventLog) -> None:
    a = Consumer(log, "t", group_id="g")
    b = Consumer(log, "t", group_id="g")
    settle(a, b)
    log.create_partitions("t", 5)
    settle(a, b)
    assert a.assignment() | b.assignment() == {TP("t", i) for i in range(5)}


def test_pattern_subscription_picks_up_new_topics(log: eventlog.EventLog) -> None:
    log.create_topic("orders-eu", 1)
    a = Consumer(log, group_id="g")
    a.subscribe(pattern=r"orders-.*")
    settle(a)
    assert a.assignment() == {TP("orders-eu", 0)}
    assert a.subscription() == {"orders-eu"}
    log.create_topic("orders-us", 2)
    log.create_topic("other", 1)
    settle(a)
    assert a.assignment() == {TP("orders-eu", 0), TP("orders-us", 0), TP("orders-us", 1)}


def test_subscription_change_rebalances(log: eventlog.EventLog) -> None:
    log.create_topic("u", 1)
    a = Consumer(log, "t", group_id="g")
    settle(a)
    a.subscribe(["u"])
    settle(a)
    assert a.assignment() == {TP("u", 0)}


def test_unsubscribe_leaves_the_group(log: eventlog.EventLog) -> None:
    events: list = []
    a = Consumer(log, group_id="g")
    a.subscribe(["t"], listener=Recorder("a", events))
    b = Consumer(log, "t", group_id="g")
    settle(a, b)
    owned = sorted(a.assignment())
    a.unsubscribe()
    assert events[-1] == ("a", "revoked", owned)
    assert a.assignment() == set()
    settle(b)
    assert b.assignment() == {T0, T1, T2}
    a.assign([T0])  # allowed after unsubscribe


def test_subscribe_without_group_reads_every_partition(log: eventlog.EventLog) -> None:
    for tp in (T0, T1, T2):
        produce(log, tp, 2)
    c = Consumer(log, "t", auto_offset_reset="earliest")
    assert len(c.poll()) == 6
    assert c.assignment() == {T0, T1, T2}
    log.create_partitions("t", 4)
    produce(log, TP("t", 3), 1)
    assert offsets(c.poll()) == [0]


def test_iteration_stops_after_consumer_timeout(log: eventlog.EventLog) -> None:
    produce(log, T0, 5)
    c = Consumer(log, group_id="g", auto_offset_reset="earliest", consumer_timeout_ms=1000,
                 enable_auto_commit=False)
    c.assign([T0])
    seen = []
    for record in c:
        seen.append(record.offset)
        if record.offset == 2:
            c.commit()  # commits exactly what was iterated
            assert c.committed(T0) == 3
    assert seen == [0, 1, 2, 3, 4]
    assert c.position(T0) == 5
    produce(log, T0, 1)
    assert [r.offset for r in c] == [5]  # iterating again resumes


def test_iteration_respects_seek_inside_the_loop(log: eventlog.EventLog) -> None:
    produce(log, T0, 5)
    c = Consumer(log, auto_offset_reset="earliest", consumer_timeout_ms=0)
    c.assign([T0])
    seen = []
    for record in c:
        seen.append(record.offset)
        if record.offset == 1 and len(seen) == 2:
            c.seek(T0, 0)
    assert seen == [0, 1, 0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------------------
# Bad input and lifecycle


def test_assign_unknown_topic_or_partition_changes_nothing(log: eventlog.EventLog) -> None:
    c = Consumer(log)
    c.assign([T0])
    with pytest.raises(UnknownTopicError, match="nope"):
        c.assign([T1, TP("nope", 0)])
    with pytest.raises(UnknownPartitionError):
        c.assign([TP("t", 7)])
    with pytest.raises(InvalidConfigError):
        c.assign(T1)  # a TopicPartition, not a list of them
    assert c.assignment() == {T0}


def test_subscribe_and_assign_are_mutually_exclusive(log: eventlog.EventLog) -> None:
    c = Consumer(log, group_id="g")
    c.assign([T0])
    with pytest.raises(IllegalStateError, match="mutually exclusive"):
        c.subscribe(["t"])
    assert c.assignment() == {T0}
    d = Consumer(log, "t", group_id="g2")
    with pytest.raises(IllegalStateError, match="mutually exclusive"):
        d.assign([T0])
    assert d.subscription() == {"t"}


@pytest.mark.parametrize(("args", "kwargs"), [
    ((), {}), ((["t"],), {"pattern": "t"}), ((["bad name"],), {}), ((), {"pattern": "("}),
    ((["t"],), {"listener": object()}),
])
def test_bad_subscribe_changes_nothing(log: eventlog.EventLog, args: tuple,
                                       kwargs: dict) -> None:
    c = Consumer(log, "t", group_id="g")
    with pytest.raises(InvalidConfigError):
        c.subscribe(*args, **kwargs)
    assert c.subscription() == {"t"}


def test_use_after_close_raises(log: eventlog.EventLog) -> None:
    c = Consumer(log, "t", group_id="g")
    c.poll()
    c.close()
    c.close()  # idempotent
    for call in (c.poll, c.commit, c.assignment, lambda: c.position(T0),
                 lambda: c.subscribe(["t"]), lambda: c.seek(T0, 0)):
        with pytest.raises(ClosedError):
            call()
    assert list(c) == []


def test_closing_the_log_closes_its_consumers(clock: ManualClock) -> None:
    log = eventlog.open(None, clock=clock)
    log.create_topic("t", 1)
    c = Consumer(log, "t", group_id="g")
    c.poll()
    log.close()
    assert c.closed
    with pytest.raises(ClosedError):
        Consumer(log)


def test_log_consumer_shortcut(log: eventlog.EventLog) -> None:
    produce(log, T0, 1)
    c = log.consumer("t", auto_offset_reset="earliest")
    assert isinstance(c, Consumer)
    assert offsets(c.poll()) == [0]


def test_a_record_that_fails_to_deserialize_stops_poll_at_it() -> None:
    """Kafka's RecordDeserializationException: the records before it are returned, the
    next poll raises with the position at the bad record, and seek() skips it."""
    from eventlog.errors import RecordDeserializationError

    with eventlog.open() as log:
        p = log.create_topic("j").partition(0)
        p.append([(None, b'{"n": 0}'), (None, b'{"n": 1}'), (None, b"not json"),
                  (None, b'{"n": 3}')])
        consumer = log.consumer(value_deserializer="json", auto_offset_reset="earliest")
        tp = TP("j", 0)
        consumer.assign([tp])
        assert [r.value for r in consumer.poll()] == [{"n": 0}, {"n": 1}]
        assert consumer.position(tp) == 2
        for _ in range(2):  # raised again and again until skipped
            with pytest.raises(RecordDeserializationError) as info:
                consumer.poll()
            assert info.value.offset == 2
            assert info.value.topic_partition == tp
            assert isinstance(info.value.__cause__, ValueError)
            assert consumer.position(tp) == 2
        consumer.seek(tp, 3)
        assert [r.value for r in consumer.poll()] == [{"n": 3}]
        consumer.close()


def test_poll_partitions_groups_records_by_partition_as_poll_returns_them(
        log: eventlog.EventLog) -> None:
    produce(log, T0, 2)
    produce(log, T1, 1)
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0, T1, T2])
    pairs = c.poll_partitions()
    assert sorted((tp, offsets(records)) for tp, records in pairs) == [(T0, [0, 1]), (T1, [0])]
    assert all(type(r) is ConsumerRecord for _, records in pairs for r in records)
    assert (c.position(T0), c.position(T1)) == (2, 1)
    assert c.poll_partitions() == []
    c.close()


def test_poll_partitions_builds_each_batch_with_the_given_builder(
        log: eventlog.EventLog) -> None:
    log.partition("t", 0).append([(b"a", b"1"), (None, b"2")], timestamp_ms=5)
    log.partition("t", 0).append([(b"c", b"3", [("h", b"x")])], timestamp_ms=6)
    calls = []

    def build(tp: TP, ts_type: TimestampType, offs: Any, stamps: Any, keys: Any,
              values: Any, headers: Any) -> Iterator[tuple]:
        calls.append((tp, ts_type, list(offs), list(stamps), headers))
        return zip(offs, keys, values)

    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0])
    assert c.poll_partitions(max_records=2, build=build) == [(T0, [(0, b"a", b"1"),
                                                                  (1, None, b"2")])]
    assert c.poll_partitions(build=build) == [(T0, [(2, b"c", b"3")])]
    assert calls == [(T0, TimestampType.CREATE_TIME, [0, 1], [5, 5], None),
                     (T0, TimestampType.CREATE_TIME, [2], [6], ((("h", b"x"),),))]
    produce(log, T0, 1)
    assert offsets(c.poll()) == [3]  # poll() builds ConsumerRecords again
    c.close()


def test_a_builder_failing_at_a_record_stops_poll_partitions_there(
        log: eventlog.EventLog) -> None:
    from eventlog.errors import RecordDeserializationError

    produce(log, T0, 4)

    def build(tp: TP, ts_type: TimestampType, offs: Any, stamps: Any, keys: Any,
              values: Any, headers: Any) -> Iterator[int]:
        return (1 // (o - 2) and o for o in offs)  # fails at offset 2

    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([T0])
    assert c.poll_partitions(build=build) == [(T0, [0, 1])]
    with pytest.raises(RecordDeserializationError) as info:
        c.poll_partitions(build=build)
    assert info.value.offset == 2 and c.position(T0) == 2
    with pytest.raises(InvalidConfigError):
        c.poll_partitions(-1)
    c.close()
