"""``eventlog produce`` (kcat -P) and ``eventlog consume`` (kcat -C,
kafka-console-consumer)."""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import threading
from typing import Any

from eventlog import ConsumerRecord, EventLog, TopicPartition

from .common import CliError, open_for_reading, open_for_writing, parse_time_ms, text_or_hex
from .registry import Subparsers, command

__all__ = ["add_records"]

produce_batch_lines = 1000  # lines sent per send_batch call: one append per batch


@command
def add_records(sub: Subparsers) -> None:
    p = sub.add_parser("produce", help="append lines of stdin as records (kcat -P)",
                       description="Append each line of stdin to TOPIC as one record's value.")
    p.add_argument("dir")
    p.add_argument("topic")
    p.add_argument("-k", "--key-separator", metavar="SEP",
                   help="split each line at the first SEP into key and value")
    p.add_argument("-p", "--partition", type=int, help="this partition (default: by key)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="NAME=VALUE",
                   help="a header on every record (repeatable)")
    p.set_defaults(run=run_produce)

    c = sub.add_parser("consume", help="print records (kcat -C, kafka-console-consumer)",
                       description="Print the records of TOPIC. Reads the directory "
                                   "read-only: works while another process writes it.")
    c.add_argument("dir")
    c.add_argument("topic")
    c.add_argument("-p", "--partition", type=int, help="only this partition")
    c.add_argument("-g", "--group", help="start at this group's committed offsets "
                                          "(a read-only view: nothing is committed)")
    start = c.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true",
                       help="start at the log start (default: the end, or the group's offset)")
    start.add_argument("--offset", type=int, help="start at this offset (with --partition)")
    start.add_argument("--since", metavar="TIME",
                       help="start at the first record at or after TIME (ISO 8601 date-time, epoch "
                            "ms, or a duration ago such as PT1H)")
    c.add_argument("-f", "--follow", action="store_true",
                   help="keep waiting for new records (default: stop at the end)")
    c.add_argument("-n", "--max-messages", type=int, help="stop after N records")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--format", default="%v",
                     help="kcat's tokens: %%t topic %%p partition %%o offset %%k key %%v value "
                          "%%T timestamp %%h headers, \\n \\t (default '%%v')")
    fmt.add_argument("--json", action="store_true", help="one JSON object per record")
    c.set_defaults(run=run_consume)


# ---------------------------------------------------------------------- produce

def _headers(pairs: list[str]) -> list[tuple[str, bytes]] | None:
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--header {pair!r}: expected NAME=VALUE")
        out.append((name, value.encode()))
    return out or None


def run_produce(args: argparse.Namespace) -> int:
    headers = _headers(args.header)
    with open_for_writing(args.dir, f"produce to {args.topic!r}") as log:
        topic = log.topic(args.topic)
        if args.partition is not None:
            topic.partition(args.partition)  # UnknownPartitionError before reading stdin
        with log.producer(linger_ms=0) as producer:
            batch: list[Any] = []
            for line in sys.stdin.buffer:
                batch.append(_record(line.rstrip(b"\r\n"), args.key_separator, headers))
                if len(batch) >= produce_batch_lines:
                    _send(producer, args, batch)
                    batch = []
            if batch:
                _send(producer, args, batch)
            producer.flush()
    return 0


def _record(line: bytes, sep: str | None, headers: Any) -> tuple:
    key = None
    if sep is not None:
        k, found, v = line.partition(sep.encode())
        if found:
            key, line = k, v
    return (key, line) if headers is None else (key, line, headers)


def _send(producer: Any, args: argparse.Namespace, batch: list[tuple]) -> None:
    producer.send_batch(args.topic, batch, partition=args.partition)


# ---------------------------------------------------------------------- consume

def run_consume(args: argparse.Namespace) -> int:
    if args.offset is not None and args.partition is None:
        raise CliError("--offset needs --partition: offsets are per partition")
    if args.max_messages is not None and args.max_messages < 1:
        raise CliError("--max-messages must be at least 1")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with open_for_reading(args.dir) as log:
        consumer = log.consumer(group_id=args.group, enable_auto_commit=False,
                                auto_offset_reset="latest")
        tps = _partitions(log, args)
        consumer.assign(tps)
        ends = _position(log, consumer, tps, args)
        printed = _print_loop(consumer, ends, args, stop)
        consumer.close()
    return 0 if printed >= 0 else 1


def _partitions(log: EventLog, args: argparse.Namespace) -> list[TopicPartition]:
    topic = log.topic(args.topic)
    if args.partition is not None:
        topic.partition(args.partition)
        return [TopicPartition(args.topic, args.partition)]
    return [TopicPartition(args.topic, i) for i in range(topic.num_partitions)]


def _position(log: EventLog, consumer: Any, tps: list[TopicPartition],
              args: argparse.Namespace) -> dict[TopicPartition, int]:
    """Seek as asked; return each partition's end offset now (where to stop)."""
    ends = {tp: log.partition(tp.topic, tp.partition).end_offset for tp in tps}
    if args.from_beginning:
        consumer.seek_to_beginning(*tps)
    elif args.offset is not None:
        consumer.seek(tps[0], args.offset)
    elif args.since is not None:
        when = parse_time_ms(args.since)
        found = consumer.offsets_for_times({tp: when for tp in tps})
        for tp in tps:
            hit = found.get(tp)
            consumer.seek(tp, hit.offset if hit is not None else ends[tp])
    elif args.group is None:
        consumer.seek_to_end(*tps)
    return ends


def _print_loop(consumer: Any, ends: dict[TopicPartition, int], args: argparse.Namespace,
                stop: threading.Event) -> int:
    out = sys.stdout
    printed = 0
    template = args.format.replace("\\n", "\n").replace("\\t", "\t")
    while not stop.is_set():
        if not args.follow and all(consumer.position(tp) >= end for tp, end in ends.items()):
            break
        for record in consumer.poll(timeout_ms=200):
            if not args.follow and record.offset >= ends[TopicPartition(record.topic,
                                                                        record.partition)]:
                continue  # past where it stood at start: not asked for without --follow
            out.write(_as_json(record) + "\n" if args.json else _formatted(template, record))
            printed += 1
            if args.max_messages is not None and printed >= args.max_messages:
                out.flush()
                return printed
        out.flush()
    return printed


def _b64_or_text(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {"text": None}
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _as_json(r: ConsumerRecord) -> str:
    key, value = _b64_or_text(r.key), _b64_or_text(r.value)
    obj: dict[str, Any] = {"topic": r.topic, "partition": r.partition, "offset": r.offset,
                           "timestamp": r.timestamp_ms}
    obj.update({"key": key["text"]} if "text" in key else {"key_base64": key["base64"]})
    obj.update({"value": value["text"]} if "text" in value
               else {"value_base64": value["base64"]})
    obj["headers"] = [[n, text_or_hex(v)] for n, v in (r.headers or ())]
    return json.dumps(obj, ensure_ascii=False)


def _formatted(template: str, r: ConsumerRecord) -> str:
    tokens = {
        "t": r.topic, "p": str(r.partition), "o": str(r.offset), "T": str(r.timestamp_ms),
        "k": text_or_hex(r.key) or "", "v": text_or_hex(r.value) or "",
        "h": ",".join(f"{n}={text_or_hex(v) or ''}" for n, v in (r.headers or ())),
        "%": "%",
    }
    out = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "%" and i + 1 < len(template) and template[i + 1] in tokens:
            out.append(tokens[template[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    text = "".join(out)
    return text if text.endswith("\n") else text + "\n"
