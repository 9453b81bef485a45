"""EventLog: topics, metadata that persists, the directory lock, the recovery report,
and every bad input at the broker (each changing nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import eventlog
from eventlog.broker.log_dir import clean_shutdown_file, lock_file, topics_file
from eventlog.errors import (
    ClosedError,
    InvalidConfigError,
    LogDirLockedError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
)
from eventlog.records import TopicPartition
from eventlog.storage.files import segment_file_name
from snapshots import snapshot

SRC = os.path.dirname(os.path.dirname(os.path.abspath(eventlog.__file__)))


def run_python(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


# --------------------------------------------------------------------------- topics


def test_create_and_look_up_topics(elog) -> None:
    t = elog.create_topic("orders", partitions=3, retention_ms=5000)
    elog.create_topic("__internal")
    elog.create_topic("audit.v1_x-y")
    assert (t.name, t.num_partitions, t.config.retention_ms) == ("orders", 3, 5000)
    assert [p.index for p in t.partitions] == [0, 1, 2]
    assert all(p.topic == "orders" for p in t.partitions)
    assert elog.topic("orders") is t
    assert elog.partition("orders", 2) is t.partition(2)
    assert elog.topics() == ["audit.v1_x-y", "orders"]
    assert elog.topics(include_internal=True) == ["__internal", "audit.v1_x-y", "orders"]
    assert elog.create_topic("x" * 249).name == "x" * 249  # Kafka's longest name


def test_topic_defaults_come_from_topic_config(path) -> None:
    with eventlog.open(path, topic_config={"retention_ms": 10}) as elog:
        assert elog.create_topic("a").config.retention_ms == 10
        assert elog.create_topic("b", retention_ms=20).config.retention_ms == 20


def test_topics_and_configs_persist_across_reopen(tmp_path) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as elog:
        elog.create_topic("a", partitions=2, segment_bytes=1000, retention_bytes=5000,
                          message_timestamp_type="LogAppendTime")
        elog.create_topic("b")
        elog.partition("a", 1).append([(b"k", b"v")])
        configs = {name: elog.topic(name).config for name in ("a", "b")}
    assert sorted(os.listdir(path)) == sorted(
        ["LOCK", ".clean-shutdown", "topics.msgpack", "a-0", "a-1", "b-0"]
    )
    with eventlog.open(path) as elog:
        assert elog.topics() == ["a", "b"]
        assert elog.topic("a").num_partitions == 2
        assert {name: elog.topic(name).config for name in ("a", "b")} == configs
        assert [r.value for r in elog.partition("a", 1).read(0)] == [b"v"]
        assert elog.partition("a", 0).end_offset == 0


def test_create_partitions_grows_only(elog, path) -> None:
    t = elog.create_topic("t", partitions=2)
    t.partition(0).append([(b"k", b"v")])
    grown = elog.create_partitions("t", 5)
    assert grown is t
    assert t.num_partitions == 5
    assert [p.end_offset for p in t.partitions] == [1, 0, 0, 0, 0]
    assert t.partition(4).append([(b"k", b"new")]) == 0
    files = snapshot(path)
    for total, fragment in ((5, "got 5"), (3, "got 3")):
        with pytest.raises(InvalidConfigError, match="can only increase the count") as info:
            elog.create_partitions("t", total)
        assert fragment in str(info.value)
    with pytest.raises(InvalidConfigError, match="partitions must be an int in"):
        elog.create_partitions("t", 0)
    with pytest.raises(UnknownTopicError, match="unknown topic 'nope'"):
        elog.create_partitions("nope", 3)
    assert t.num_partitions == 5
    assert snapshot(path) == files


def test_create_partitions_persists(tmp_path) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as elog:
        elog.create_topic("t")
        elog.create_partitions("t", 3)
        elog.partition("t", 2).append([(b"k", b"v")])
    with eventlog.open(path) as elog:
        assert elog.topic("t").num_partitions == 3
        assert elog.partition("t", 2).read(0)[0].value == b"v"


def test_delete_topic_removes_data_and_the_name_can_be_reused(tmp_path) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as elog:
        t = elog.create_topic("t", partitions=2, retention_ms=123)
        t.partition(0).append([(b"old", b"data")] * 3)
        elog.delete_topic("t")
        assert elog.topics() == []
        assert not any(name.startswith("t-") for name in os.listdir(path))
        with pytest.raises(UnknownTopicError, match="unknown topic 't'"):
            elog.topic("t")
        with pytest.raises(ClosedError):
            t.partition(0).read(0)  # the old handle is dead
        fresh = elog.create_topic("t")
        assert fresh.config.retention_ms != 123
        assert fresh.num_partitions == 1
        assert fresh.partition(0).end_offset == 0
        fresh.partition(0).append([(b"new", b"data")])
    with eventlog.open(path) as elog:
        assert [r.key for r in elog.partition("t", 0).read(0)] == [b"new"]
        elog.delete_topic("t")
    with eventlog.open(path) as elog:
        assert elog.topics() == []


def test_delete_topic_in_memory() -> None:
    with eventlog.open() as elog:
        elog.create_topic("t").partition(0).append([(b"k", b"v")])
        elog.delete_topic("t")
        assert elog.create_topic("t").partition(0).read(0) == []


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must not be empty"),
        (".", "cannot be '.'"),
        ("..", "cannot be '..'"),
        ("../x", "contains '/'"),
        ("a/b", "contains '/'"),
        ("a\\b", "contains '\\\\'"),
        ("/abs", "contains '/'"),
        ("has space", "contains ' '"),
        ("caf\u00e9", "contains '\u00e9'"),
        ("x" * 250, "250 characters, over the limit of 249"),
        (5, "must be a str, got int"),
        (None, "must be a str, got NoneType"),
    ],
)
def test_invalid_topic_names(elog, path, name, fragment) -> None:
    elog.create_topic("existing")
    files = snapshot(path)
    with pytest.raises(InvalidConfigError) as info:
        elog.create_topic(name)
    assert fragment in str(info.value)
    assert elog.topics() == ["existing"]
    assert snapshot(path) == files
    if path is not None:
        assert not os.path.exists(os.path.join(os.path.dirname(path), "x-0"))


def test_existing_topic(elog, path) -> None:
    elog.create_topic("t", partitions=2)
    files = snapshot(path)
    with pytest.raises(TopicExistsError, match="topic 't' already exists"):
        elog.create_topic("t", partitions=5)
    assert elog.topic("t").num_partitions == 2
    assert snapshot(path) == files


def test_create_topic_exist_ok_returns_the_matching_topic(elog, path) -> None:
    topic = elog.create_topic("t", partitions=2, retention_ms=1000)
    topic.partition(1).append([(b"k", b"v")])
    files = snapshot(path)
    again = elog.create_topic("t", partitions=2, exist_ok=True, retention_ms=1000)
    assert again is topic and again.partition(1).end_offset == 1  # nothing recreated
    assert elog.create_topic("t", 2, exist_ok=True) is topic  # configs not given: any value
    assert snapshot(path) == files
    with pytest.raises(TopicExistsError, match="pass exist_ok=True"):
        elog.create_topic("t", partitions=2)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"partitions": 3}, r"with 2 partition\(s\) \(asked 3\)"),
        ({"partitions": 2, "retention_ms": 5}, r"retention_ms=1000 \(asked 5\)"),
        ({"partitions": 2, "cleanup_policy": "compact"},
         r"cleanup_policy='delete' \(asked 'compact'\)"),
    ],
)
def test_create_topic_exist_ok_refuses_a_different_topic(elog, path, kwargs, fragment) -> None:
    elog.create_topic("t", partitions=2, retention_ms=1000)
    files = snapshot(path)
    with pytest.raises(TopicExistsError, match=fragment):
        elog.create_topic("t", exist_ok=True, **kwargs)
    assert elog.topic("t").num_partitions == 2 and elog.topic("t").config.retention_ms == 1000
    assert snapshot(path) == files


def test_create_topic_exist_ok_still_validates_and_creates(elog) -> None:
    with pytest.raises(InvalidConfigError, match="exist_ok must be a bool"):
        elog.create_topic("t", exist_ok="yes")
    with pytest.raises(InvalidConfigError):
        elog.create_topic("t", partitions=0, exist_ok=True)
    assert elog.topics() == []
    assert elog.create_topic("t", exist_ok=True).num_partitions == 1


def test_create_topic_exist_ok_does_not_open_internal_topics(elog) -> None:
    from eventlog.errors import InvalidTopicError

    for _ in range(2):
        with pytest.raises(InvalidTopicError, match="cannot create internal topic"):
            elog.create_topic("__consumer_offsets", exist_ok=True)


def test_create_topic_exist_ok_after_a_reopen(tmp_path) -> None:
    for _ in range(2):  # what a script that runs on every start does
        with eventlog.open(tmp_path / "data") as log:
            topic = log.create_topic("orders", partitions=3, exist_ok=True)
            topic.partition(0).append([(b"k", b"v")])
    with eventlog.open(tmp_path / "data") as log:
        assert log.topic("orders").partition(0).end_offset == 2


def test_unknown_topics_and_partitions(elog, path) -> None:
    elog.create_topic("t", partitions=2)
    files = snapshot(path)
    for call in (lambda: elog.topic("u"), lambda: elog.partition("u", 0),
                 lambda: elog.delete_topic("u")):
        with pytest.raises(UnknownTopicError, match="unknown topic 'u'"):
            call()
    with pytest.raises(KeyError):  # the stdlib mix-in
        elog.topic("u")
    for index in (2, -1, 100, "0"):
        with pytest.raises(UnknownPartitionError) as info:
            elog.partition("t", index)
        assert "topic 't' has 2 partition(s)" in str(info.value)
        assert f"no partition {index!r}" in str(info.value)
    assert elog.topics() == ["t"]
    assert snapshot(path) == files


@pytest.mark.parametrize(
    ("config", "error_fragment"),
    [
        ({"retention_mss": 5}, "unknown topic config retention_mss"),
        ({"retention_ms": -2}, "retention_ms must be -1 (no limit) or >= 0, got -2"),
        ({"retention_bytes": -5}, "retention_bytes must be -1 (no limit) or >= 0"),
        ({"segment_bytes": 0}, "segment_bytes must be in [14,"),
        ({"segment_ms": 0}, "segment_ms must be >= 1"),
        ({"segment_bytes": "1"}, "segment_bytes must be an int, got str"),
        ({"message_timestamp_type": "Now"}, "message_timestamp_type must be"),
        ({"cleanup_policy": "forever"}, "cleanup_policy must be"),
        ({"max_message_bytes": -1}, "max_message_bytes must be in [0,"),
    ],
)
def test_invalid_topic_configs(elog, path, config, error_fragment) -> None:
    files = snapshot(path)
    with pytest.raises(InvalidConfigError) as info:
        elog.create_topic("t", **config)
    assert error_fragment in str(info.value)
    assert elog.topics() == []
    assert snapshot(path) == files


@pytest.mark.parametrize("partitions", [0, -1, 10_001, "3", 1.0, True])
def test_invalid_partition_counts(elog, path, partitions) -> None:
    files = snapshot(path)
    with pytest.raises(InvalidConfigError, match=r"partitions must be an int in \[1, 10000\]"):
        elog.create_topic("t", partitions=partitions)
    assert elog.topics() == []
    assert snapshot(path) == files


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"fsync": "sometimes"}, "fsync must be one of 'never', 'interval', 'always'"),
        ({"fsync": None}, "fsync must be one of"),
        ({"flush_interval_ms": 0}, "flush_interval_ms must be an int >= 1, got 0"),
        ({"flush_interval_messages": 0}, "flush_interval_messages must be None or an int >= 1"),
        ({"retention_check_interval_ms": -1}, "retention_check_interval_ms must be an int >= 1"),
        ({"num_partitions": 0}, "num_partitions must be an int >= 1, got 0"),
        ({"topic_config": {"nope": 1}}, "unknown topic config nope"),
        ({"topic_config": {"retention_ms": -3}}, "retention_ms must be -1 (no limit) or >= 0"),
        # Unknown and mistyped options: these used to raise TypeError/ValueError.
        ({"retention_ms": 1}, "unknown option retention_ms of eventlog.open(); retention_ms "
                              "is a topic config: pass topic_config={'retention_ms': 1}"),
        ({"fsync_policy": "always"}, "unknown option fsync_policy of eventlog.open(); known "
                                     "options: path, clock, fsync"),
        ({"topic_config": [("retention_ms", 1)]}, "topic_config must be a mapping"),
        ({"topic_config": "retention_ms=1"}, "topic_config must be a mapping"),
        ({"auto_create_topics": "yes"}, "auto_create_topics must be True or False"),
        ({"clock": 5}, "clock must be a Clock"),
    ],
)
def test_invalid_open_options_create_nothing(tmp_path, options, fragment) -> None:
    path = tmp_path / "data"
    with pytest.raises(InvalidConfigError) as info:
        eventlog.open(str(path), **options)
    assert fragment in str(info.value)
    assert not path.exists()


def test_a_path_of_the_wrong_type_is_invalid_config() -> None:
    with pytest.raises(InvalidConfigError, match=r"path must be a str or os\.PathLike"):
        eventlog.open(5)  # type: ignore[arg-type]


def test_use_after_close(path) -> None:
    elog = eventlog.open(path)
    elog.create_topic("t")
    elog.close()
    assert elog.closed
    where = path or "in memory"
    for call in (
        lambda: elog.create_topic("u"),
        lambda: elog.topic("t"),
        lambda: elog.topics(),
        lambda: elog.partition("t", 0),
        lambda: elog.delete_topic("t"),
        lambda: elog.create_partitions("t", 2),
        lambda: elog.run_retention(),
        lambda: elog.flush(),
    ):
        with pytest.raises(ClosedError) as info:
            call()
        assert f"this EventLog ({where}) is closed" in str(info.value)
    elog.close()  # idempotent


# --------------------------------------------------------------------------- the lock


def test_second_open_in_this_process_fails_naming_the_directory(tmp_path) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as first:
        first.create_topic("t").partition(0).append([(b"k", b"v")])
        with pytest.raises(LogDirLockedError) as info:
            eventlog.open(path)
        assert path in str(info.value)
        assert "already open in another EventLog" in str(info.value)
        # the first one is untouched and still works
        assert first.partition("t", 0).append([(b"k", b"w")]) == 1
        assert not os.path.exists(os.path.join(path, clean_shutdown_file))
    with eventlog.open(path) as again:  # after close the directory is free
        assert again.partition("t", 0).end_offset == 2


def test_second_open_in_another_process_fails(tmp_path) -> None:
    path = str(tmp_path / "data")
    code = """
        import sys, eventlog
        from eventlog.errors import LogDirLockedError
        try:
            eventlog.open(sys.argv[1])
        except LogDirLockedError as exc:
            print("locked:", exc)
        else:
            print("opened")
    """
    with eventlog.open(path) as first:
        first.create_topic("t")
        result = run_python(code, path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("locked:")
        assert path in result.stdout
        assert first.topics() == ["t"]
    result = run_python(code, path)
    assert result.stdout.strip() == "opened"  # exited without close: the OS released it


def test_lock_file_and_clean_marker_lifecycle(tmp_path) -> None:
    path = str(tmp_path / "data")
    elog = eventlog.open(path)
    assert os.path.exists(os.path.join(path, lock_file))
    assert not os.path.exists(os.path.join(path, clean_shutdown_file))
    elog.create_topic("t")
    assert os.path.exists(os.path.join(path, topics_file))
    elog.close()
    assert os.path.exists(os.path.join(path, clean_shutdown_file))


# --------------------------------------------------------------------------- recovery


def test_recovery_report_after_clean_close_scans_nothing(tmp_path) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as elog:
        elog.create_topic("t", partitions=2)
        for i in range(2):
            elog.partition("t", i).append([(b"k", b"v")] * 10)
    with eventlog.open(path) as elog:
        report = elog.recovery
        assert report.clean is True
        assert report.partitions == 2
        assert report.batches_checked == 0
        assert report.segments_checked == 0
        assert report.bytes_truncated == 0
        assert report.duration_ms >= 0
        assert set(report.partitions_detail) == {TopicPartition("t", 0), TopicPartition("t", 1)}
        assert all(r.clean for r in report.partitions_detail.values())


def test_recovery_report_after_a_crash_with_a_torn_tail(tmp_path) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as elog:
        p = elog.create_topic("t").partition(0)
        p.append([(b"k", b"v")] * 5)
        p.append([(b"k", b"w")] * 5)
    # A crash: no clean-shutdown marker, and half a batch after the last whole one.
    os.unlink(os.path.join(path, clean_shutdown_file))
    log_file = os.path.join(path, "t-0", segment_file_name(0, ".log"))
    torn = b"\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x01\x00\x01torn"  # 17 bytes
    with open(log_file, "ab") as f:
        f.write(torn)
    with eventlog.open(path) as elog:
        report = elog.recovery
        assert report.clean is False
        assert report.partitions == 1
        assert report.segments_checked == 1
        assert report.batches_checked >= 1
        assert report.bytes_truncated == len(torn)
        assert report.duration_ms >= 0
        detail = report.partitions_detail[TopicPartition("t", 0)]
        assert detail.bytes_truncated == len(torn)
        p = elog.partition("t", 0)
        assert p.end_offset == 10
        assert [r.value for r in p.read(0)] == [b"v"] * 5 + [b"w"] * 5
        p.check()
    with open(log_file, "rb") as f:
        assert b"torn" not in f.read()


def test_open_close_with_every_fsync_policy(tmp_path) -> None:
    for policy in ("never", "interval", "always"):
        path = str(tmp_path / policy)
        with eventlog.open(path, fsync=policy, flush_interval_messages=3) as elog:
            assert elog.fsync == policy
            p = elog.create_topic("t", segment_bytes=300).partition(0)
            for _ in range(20):
                p.append([(b"k", b"v")] * 2)
            elog.flush()
        with eventlog.open(path, fsync=policy) as elog:
            assert elog.recovery.clean
            p = elog.partition("t", 0)
            assert [r.offset for r in p.read(0, 100)] == list(range(40))
            p.check()


def test_context_manager_and_repr(tmp_path) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as elog:
        assert repr(elog) == f"EventLog({path}, topics=0)"
    assert repr(elog) == f"EventLog({path}, closed)"
    assert repr(eventlog.open()).startswith("EventLog(<memory>")


def test_a_new_directory_opens_clean(tmp_path) -> None:
    with eventlog.open(str(tmp_path / "fresh")) as elog:
        assert elog.recovery.clean is True
        assert elog.recovery.partitions == 0


# --------------------------------------------------------------- what the layers above use


class _Client:
    def __init__(self) -> None:
        self.changes = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def topics_changed(self) -> None:
        self.changes += 1


def test_a_registered_client_hears_of_deleted_and_grown_topics_and_is_closed_first() -> None:
    with eventlog.open(None) as log:
        client = _Client()
        log.register_client(client, on_topics_changed=client.topics_changed)
        log.create_topic("a")
        log.create_topic("b")
        log.create_partitions("a", 3)
        log.delete_topic("b")
        assert client.changes == 2
    assert client.closed


def test_clients_are_held_weakly_with_their_hooks() -> None:
    import gc
    import weakref

    with eventlog.open(None) as log:
        client = _Client()
        log.register_client(client, on_topics_changed=client.topics_changed)
        gone = weakref.ref(client)
        del client
        gc.collect()
        assert gone() is None  # the log kept neither the client nor its bound method
        log.create_topic("a")
        log.delete_topic("a")  # no hook left to call: nothing raises


def test_a_layer_state_is_made_once_on_first_use_and_found_after() -> None:
    from eventlog.broker import LayerState

    made: list[object] = []
    slot: LayerState[list[object]] = LayerState("test", lambda log: made.append(log) or made)
    with eventlog.open(None) as log, eventlog.open(None) as other:
        assert log.existing_layer_state(slot) is None  # asking does not make it
        assert log.layer_state(slot) is made and log.layer_state(slot) is made
        assert log.existing_layer_state(slot) is made and made == [log]
        assert other.existing_layer_state(slot) is None  # per log


def test_a_registered_maintenance_task_runs_on_the_maintenance_thread_until_close() -> None:
    import threading

    ran = threading.Event()
    threads: list[threading.Thread] = []

    def task() -> None:
        threads.append(threading.current_thread())
        ran.set()

    log = eventlog.open(None, flush_interval_ms=1)
    log.register_maintenance(task)
    assert ran.wait(30)
    log.close()
    runs = len(threads)
    assert threads[0].name.startswith("eventlog-maintenance")
    assert not threads[0].is_alive()  # close() joined it: the task runs no more
    assert len(threads) == runs
