"""The server at the frame level: versions, errors, malformed and oversized requests."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from wire import call, connect, decode_response, read_frame, request_frame

import eventlog
from eventlog.server.records import encode_batch


def records_bytes(n: int = 3) -> bytes:
    return encode_batch(list(range(n)), [1_700_000_000_000 + i for i in range(n)],
                        [f"k{i}".encode() for i in range(n)], [b"v"] * n, None)


def produce_values(topic: str, data: bytes, acks: int = -1) -> dict[str, Any]:
    return {"acks": acks, "timeout": 1000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": data}]}]}


def test_api_versions_lists_every_supported_request(server: Any) -> None:
    body = call(server, 18, 3, {"client_software_name": "tests",
                                "client_software_version": "1"})
    assert body.error_code.value == 0
    keys = {k.api_key: (k.min_version, k.max_version) for k in body.api_keys}
    assert keys[0] == (3, 10) and keys[1] == (4, 16) and keys[3] == (0, 12)
    assert 71 in keys  # GetTelemetrySubscriptions, which librdkafka sends


def test_unsupported_api_versions_version_gets_the_v0_answer(server: Any, caplog: Any) -> None:
    with connect(server) as sock:
        frame = request_frame(18, 3, {"client_software_name": "t",
                                      "client_software_version": "1"})
        frame = frame[:6] + struct.pack(">h", 99) + frame[8:]  # ApiVersions v99
        sock.sendall(frame)
        correlation_id, body = decode_response(read_frame(sock), 18, 0)
    assert correlation_id == 7
    assert body.error_code.value == 35  # UNSUPPORTED_VERSION
    assert {k.api_key for k in body.api_keys} >= {0, 1, 3, 18}
    assert "ApiVersions v99" in caplog.text


def test_unsupported_version_with_a_top_level_error_code(server: Any, caplog: Any) -> None:
    body = call(server, 3, 13, {"topics": None, "include_topic_authorized_operations": False})
    assert body.error_code.value == 35
    assert "Metadata v13" in caplog.text


def test_request_the_server_cannot_answer_closes_with_a_log_line(
    server: Any, caplog: Any
) -> None:
    with connect(server) as sock:
        sock.sendall(struct.pack(">ihhi", 8, 9999, 0, 1))  # unknown api key 9999
        assert read_frame(sock) is None
    assert "api key 9999" in caplog.text
    assert call(server, 18, 0, {}).error_code.value == 0  # the server is still up


def test_malformed_request_closes_that_connection_only(server: Any, caplog: Any) -> None:
    healthy = connect(server)
    with connect(server) as sock:
        body = b"\x00\x03\x00\x0c\x00\x00\x00\x01\xff\xff\xff"  # Metadata v12, cut short
        sock.sendall(struct.pack(">i", len(body)) + body)
        assert read_frame(sock) is None
    assert "malformed request" in caplog.text
    with healthy:
        healthy.sendall(request_frame(18, 0, {}))
        assert read_frame(healthy) is not None


def test_request_over_the_size_limit_is_refused(server: Any, caplog: Any) -> None:
    with connect(server) as sock:
        sock.sendall(struct.pack(">i", 100 * 1024 * 1024 + 1))
        assert read_frame(sock) is None
    assert "max_request_bytes" in caplog.text


def test_truncated_request_is_logged(server: Any, caplog: Any, log: eventlog.EventLog) -> None:
    with connect(server) as sock:
        sock.sendall(struct.pack(">i", 100) + b"\x00" * 10)
        sock.shutdown(socket.SHUT_WR)
        assert read_frame(sock) is None
    assert "truncated request" in caplog.text


def test_produce_with_a_bad_crc_is_refused_and_changes_nothing(
    server: Any, log: eventlog.EventLog
) -> None:
    log.create_topic("t")
    data = bytearray(records_bytes())
    data[-1] ^= 0xFF
    body = call(server, 0, 9, produce_values("t", bytes(data)))
    part = body.responses[0].partition_responses[0]
    assert part.error_code.value == 2  # CORRUPT_MESSAGE
    assert "CRC" in part.error_message
    assert log.partition("t", 0).end_offset == 0


def test_produce_to_an_unknown_topic(server: Any) -> None:
    body = call(server, 0, 9, produce_values("nope", records_bytes()))
    assert body.responses[0].partition_responses[0].error_code.value == 3


def test_acks_0_gets_no_response_and_the_next_request_is_answered(
    server: Any, log: eventlog.EventLog
) -> None:
    log.create_topic("t")
    with connect(server) as sock:
        sock.sendall(request_frame(0, 9, produce_values("t", records_bytes(), acks=0), 1)
                     + request_frame(18, 0, {}, 2))
        correlation_id, _ = decode_response(read_frame(sock), 18, 0)
    assert correlation_id == 2
    assert [r.key for r in log.partition("t", 0).read(0)] == [b"k0", b"k1", b"k2"]


def test_fetch_long_poll_returns_when_data_arrives(server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("t")
    fetch = {"max_wait": 20_000, "min_bytes": 1, "topics": [
        {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0,
                                       "partition_max_bytes": 1 << 20}]}]}
    with connect(server) as sock:
        sock.sendall(request_frame(1, 11, fetch))
        log.topic("t").partition(0).append([(b"k", b"v", [("h", b"1")])])
        _cid, body = decode_response(read_frame(sock), 1, 11)
    part = body.responses[0].partitions[0]
    assert part.error_code.value == 0 and part.high_watermark == 1
    from eventlog.server.records import decode_batches
    (batch,) = decode_batches(part.records)
    assert batch.keys == [b"k"] and batch.headers == [(("h", b"1"),)]


def test_a_produced_batch_is_stored_as_sent_and_fetched_byte_for_byte(
    server: Any, log: eventlog.EventLog
) -> None:
    from eventlog.storage import batch as codec

    log.create_topic("t")
    log.topic("t").partition(0).append([(b"in-process", b"first")])
    data = encode_batch([0, 1, 2], [1_700_000_000_000, 1_700_000_000_009, 1_700_000_000_003],
                        [b"a", None, b"c"], [b"x", b"y", None],
                        [(("h", b"1"),), (), ()], producer_id=-1)
    body = call(server, 0, 9, produce_values("t", data))
    assert body.responses[0].partition_responses[0].base_offset == 1
    header, _ = log.topic("t").partition(0).read_batches(1, 10)[-1]
    assert header.attributes & codec.attr_kafka_records  # kept as sent, not re-encoded
    fetched = call(server, 1, 11, {"max_wait": 0, "min_bytes": 1, "topics": [
        {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 1,
                                       "partition_max_bytes": 1 << 20}]}]})
    records = fetched.responses[0].partitions[0].records
    # the same batch, its base offset now the log's (the CRC does not cover it)
    assert records == struct.pack(">q", 1) + data[8:]


def test_fetch_out_of_range(server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("t")
    body = call(server, 1, 11, {"max_wait": 0, "min_bytes": 1, "topics": [
        {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 5,
                                       "partition_max_bytes": 1 << 20}]}]})
    assert body.responses[0].partitions[0].error_code.value == 1


def test_create_topics_errors(server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("exists")
    body = call(server, 19, 7, {"topics": [
        {"name": "exists", "num_partitions": 1, "replication_factor": 1},
        {"name": "bad/name", "num_partitions": 1, "replication_factor": 1},
        {"name": "rf3", "num_partitions": 1, "replication_factor": 3},
        {"name": "cfg", "num_partitions": 2, "replication_factor": -1,
         "configs": [{"name": "retention.ms", "value": "1000"}]},
        {"name": "badcfg", "num_partitions": 1, "replication_factor": 1,
         "configs": [{"name": "no.such.config", "value": "1"}]},
    ]})
    codes = {t.name: t.error_code.value for t in body.topics}
    assert codes == {"exists": 36, "bad/name": 17, "rf3": 38, "cfg": 0, "badcfg": 40}
    assert log.topic("cfg").config.retention_ms == 1000
    assert "badcfg" not in log.topics() and "rf3" not in log.topics()


def test_get_telemetry_subscriptions_asks_for_no_metrics(server: Any) -> None:
    body = call(server, 71, 0, {})
    assert body.error_code.value == 0 and body.requested_metrics == ()
    assert body.client_instance_id.int != 0


@pytest.mark.parametrize("version", [0, 4, 9])
def test_join_group_versions(server: Any, version: int) -> None:
    values = {"group_id": "g", "session_timeout": 10_000, "rebalance_timeout": 10_000,
              "member_id": "", "protocol_type": "consumer",
              "protocols": [{"name": "range", "metadata": b"meta"}]}
    body = call(server, 11, version, values)
    if version >= 4:
        assert body.error_code.value == 79  # MEMBER_ID_REQUIRED: rejoin with this id
        values["member_id"] = body.member_id
        body = call(server, 11, version, values)
    assert body.error_code.value == 0 and body.generation_id == 1
    assert body.leader == body.member_id
    assert [bytes(m.metadata) for m in body.members] == [b"meta"]


def test_idempotent_retry_is_a_duplicate_not_a_second_append(
    server: Any, log: eventlog.EventLog
) -> None:
    log.create_topic("t")
    pid = call(server, 22, 4, {"transactional_id": None, "transaction_timeout": 60_000})
    assert pid.error_code.value == 0 and pid.producer_id >= 0
    data = encode_batch([0, 1], [1, 2], [b"a", b"b"], [b"1", b"2"], None,
                        producer_id=pid.producer_id, producer_epoch=pid.producer_epoch,
                        base_sequence=0)
    first = call(server, 0, 9, produce_values("t", data)).responses[0].partition_responses[0]
    retry = call(server, 0, 9, produce_values("t", data)).responses[0].partition_responses[0]
    assert first.error_code.value == retry.error_code.value == 0
    assert first.base_offset == retry.base_offset == 0
    assert log.partition("t", 0).end_offset == 2
    gap = encode_batch([0], [3], [b"c"], [b"3"], None, producer_id=pid.producer_id,
                       producer_epoch=pid.producer_epoch, base_sequence=5)
    out = call(server, 0, 9, produce_values("t", gap)).responses[0].partition_responses[0]
    assert out.error_code.value == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.partition("t", 0).end_offset == 2


def test_list_offsets(server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("t")
    log.partition("t", 0).append([(b"a", b"1", (), 1000), (b"b", b"2", (), 2000)])
    def ask(ts: int) -> tuple[int, int]:
        body = call(server, 2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": "t", "partitions": [{"partition_index": 0, "timestamp": ts}]}]})
        p = body.topics[0].partitions[0]
        return p.offset, p.timestamp
    assert ask(-1)[0] == 2 and ask(-2)[0] == 0
    assert ask(1500) == (1, 2000)
    assert ask(5000)[0] == -1
    assert ask(-3) == (1, 2000)
