"""Admin requests at the frame level: groups, configs, partitions, cluster; connection limits."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from wire import call, connect, read_frame, request_frame

import eventlog
from eventlog.server.handlers import topic_id

PROTOCOLS = [{"name": "range", "metadata": b"m"}]


def join_and_sync(server: Any, group: str) -> str:
    values = {"group_id": group, "session_timeout": 10_000, "rebalance_timeout": 10_000,
              "member_id": "", "protocol_type": "consumer", "protocols": PROTOCOLS}
    body = call(server, 11, 5, values)
    assert body.error_code.value == 79
    values["member_id"] = body.member_id
    body = call(server, 11, 5, values)
    assert body.error_code.value == 0
    sync = call(server, 14, 3, {"group_id": group, "generation_id": body.generation_id,
                                "member_id": body.member_id,
                                "assignments": [{"member_id": body.member_id,
                                                 "assignment": b"a"}]})
    assert sync.error_code.value == 0 and bytes(sync.assignment) == b"a"
    return body.member_id


def test_list_describe_delete_groups(server: Any, log: eventlog.EventLog) -> None:
    member = join_and_sync(server, "wire-group")
    log.create_topic("t")
    with log.consumer("t", group_id="in-process", auto_offset_reset="earliest") as consumer:
        consumer.poll(timeout_ms=0)
        consumer.commit()
        listed = call(server, 16, 4, {})
        groups = {g.group_id: (g.group_state, g.protocol_type) for g in listed.groups}
        assert groups["wire-group"] == ("Stable", "consumer")
        assert "in-process" in groups
    described = call(server, 15, 5, {"groups": ["wire-group", "unknown"],
                                     "include_authorized_operations": False})
    wire, unknown = described.groups
    assert wire.group_state == "Stable" and wire.protocol_data == "range"
    assert [m.member_id for m in wire.members] == [member]
    assert bytes(wire.members[0].member_assignment) == b"a"
    assert unknown.group_state == "Dead"
    deleted = call(server, 42, 2, {"groups_names": ["wire-group", "in-process", "unknown"]})
    codes = {r.group_id: r.error_code.value for r in deleted.results}
    assert codes == {"wire-group": 68, "in-process": 0, "unknown": 69}
    assert "in-process" not in {g.group_id for g in log.list_groups()}
    left = call(server, 13, 5, {"group_id": "wire-group",
                                "members": [{"member_id": member}]})
    assert left.members[0].error_code.value == 0
    deleted = call(server, 42, 2, {"groups_names": ["wire-group"]})
    assert deleted.results[0].error_code.value in (0, 69)  # empty: deleted or gone


def test_describe_configs_and_create_partitions(server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("t", 1, retention_ms=1234)
    body = call(server, 32, 4, {"resources": [
        {"resource_type": 2, "resource_name": "t", "configuration_keys": ["retention.ms"]},
        {"resource_type": 2, "resource_name": "missing", "configuration_keys": None}]})
    found, missing = body.results
    assert [(c.name, c.value) for c in found.configs] == [("retention.ms", "1234")]
    assert missing.error_code.value == 3
    grown = call(server, 37, 3, {"topics": [{"name": "t", "count": 3, "assignments": None},
                                            {"name": "t2", "count": 3, "assignments": None}],
                                 "timeout": 1000, "validate_only": False})
    assert [r.error_code.value for r in grown.results] == [0, 3]
    assert log.topic("t").num_partitions == 3
    shrink = call(server, 37, 3, {"topics": [{"name": "t", "count": 2, "assignments": None}],
                                  "timeout": 1000, "validate_only": False})
    assert shrink.results[0].error_code.value == 37


def test_metadata_and_delete_by_topic_id(server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("t", 2)
    body = call(server, 3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                "include_topic_authorized_operations": False})
    (topic,) = body.topics
    assert topic.name == "t" and topic.topic_id == topic_id("t")
    assert [p.leader_id for p in topic.partitions] == [0, 0]
    assert body.brokers[0].port == server.port
    cluster = call(server, 60, 1, {"include_cluster_authorized_operations": False})
    assert cluster.brokers[0].port == server.port
    gone = call(server, 20, 6, {"topics": [{"name": None, "topic_id": topic_id("t")}],
                                "timeout": 1000})
    assert gone.responses[0].error_code.value == 0
    assert log.topics() == []


def test_metadata_auto_creates_only_when_the_log_does(tmp_path: Any) -> None:
    with eventlog.open(tmp_path / "d", auto_create_topics=True, num_partitions=2) as log, \
            eventlog.serve(log) as server:
        body = call(server, 3, 12, {"topics": [{"name": "auto"}],
                                    "allow_auto_topic_creation": True,
                                    "include_topic_authorized_operations": False})
        assert body.topics[0].error_code.value == 0
        assert log.topic("auto").num_partitions == 2


def test_idle_connections_are_closed(log: eventlog.EventLog, caplog: Any) -> None:
    with eventlog.serve(log, idle_timeout_ms=50) as server, connect(server) as sock:
        sock.settimeout(30)
        assert read_frame(sock) is None  # the server closed it, having heard nothing
    assert "idle for 50 ms" in caplog.text


def test_connections_over_the_limit_are_refused(log: eventlog.EventLog, caplog: Any) -> None:
    with eventlog.serve(log, max_connections=1) as server, connect(server) as first:
        first.sendall(request_frame(18, 0, {}))
        assert read_frame(first) is not None
        with connect(server) as second:
            second.settimeout(30)
            assert read_frame(second) is None
        assert "max_connections" in caplog.text


@pytest.mark.parametrize("bad", [{"port": -1}, {"port": 70000}, {"max_connections": 0},
                                 {"idle_timeout_ms": "1"}])
def test_bad_options_are_refused(log: eventlog.EventLog, bad: dict) -> None:
    options = {"port": 0, **bad}
    with pytest.raises(eventlog.InvalidConfigError):
        eventlog.serve(log, **options)


def test_closed_log_cannot_be_served(tmp_path: Any) -> None:
    log = eventlog.open(tmp_path / "d")
    log.close()
    with pytest.raises(eventlog.ClosedError):
        eventlog.serve(log)


def test_closing_the_log_closes_the_server(tmp_path: Any) -> None:
    log = eventlog.open(tmp_path / "d")
    server = log.serve()
    port = server.port
    log.close()
    assert server.closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
