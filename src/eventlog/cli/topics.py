"""``eventlog topics list|describe|create|delete|alter DIR ...`` (Kafka's kafka-topics)."""

from __future__ import annotations

import argparse
from typing import Any

from eventlog import EventLog, TopicConfig
from eventlog.config import client_config

from .common import CliError, emit_json, open_for_reading, open_for_writing, print_table
from .registry import Subparsers, add_json_flag, command

__all__ = ["add_topics"]

_defaults = TopicConfig().to_dict()


@command
def add_topics(sub: Subparsers) -> None:
    topics = sub.add_parser("topics", help="list, describe, create, delete or alter topics",
                            description="Topics of the event log in DIR (kafka-topics).")
    tsub = topics.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = tsub.add_parser("list", help="topic names, partitions, records and sizes")
    p.add_argument("dir")
    p.add_argument("--include-internal", action="store_true",
                   help="also __consumer_offsets")
    add_json_flag(p)
    p.set_defaults(run=run_list)

    p = tsub.add_parser("describe", help="partitions with start/end offsets, sizes, configs")
    p.add_argument("dir")
    p.add_argument("topics", nargs="*", metavar="TOPIC", help="default: every topic")
    add_json_flag(p)
    p.set_defaults(run=run_describe)

    p = tsub.add_parser("create", help="create a topic (needs the directory to itself)")
    p.add_argument("dir")
    p.add_argument("name")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="a topic config, Kafka's dotted name or snake_case (repeatable)")
    p.add_argument("--if-not-exists", action="store_true")
    p.set_defaults(run=run_create)

    p = tsub.add_parser("delete", help="delete a topic and its data")
    p.add_argument("dir")
    p.add_argument("name")
    p.set_defaults(run=run_delete)

    p = tsub.add_parser("alter", help="add partitions to a topic (Kafka only ever adds)")
    p.add_argument("dir")
    p.add_argument("name")
    p.add_argument("--partitions", type=int, required=True, help="the new, larger count")
    p.set_defaults(run=run_alter)


def parse_configs(pairs: list[str]) -> dict[str, Any]:
    raw = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--config {pair!r}: expected KEY=VALUE, e.g. retention.ms=86400000")
        raw[key.strip()] = value
    return client_config(raw, TopicConfig, "topic")


def _non_defaults(config: TopicConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if _defaults.get(k) != v}


def _topic_summary(log: EventLog, name: str) -> dict[str, Any]:
    topic = log.topic(name)
    parts = topic.partitions
    return {
        "topic": name,
        "partitions": len(parts),
        "records": sum(p.end_offset - p.start_offset for p in parts),
        "size_bytes": sum(p.size_bytes for p in parts),
        "configs": _non_defaults(topic.config),
    }


def run_list(args: argparse.Namespace) -> int:
    with open_for_reading(args.dir) as log:
        rows = [_topic_summary(log, n)
                for n in log.topics(include_internal=args.include_internal)]
    if args.json:
        emit_json(rows)
    else:
        print_table(["TOPIC", "PARTITIONS", "RECORDS", "SIZE"],
                    [(r["topic"], r["partitions"], r["records"], r["size_bytes"]) for r in rows])
    return 0


def run_describe(args: argparse.Namespace) -> int:
    with open_for_reading(args.dir) as log:
        names = args.topics or log.topics(include_internal=True)
        out = []
        for name in names:
            summary = _topic_summary(log, name)
            summary["partition_detail"] = [
                {"partition": p.index, "start_offset": p.start_offset,
                 "end_offset": p.end_offset, "size_bytes": p.size_bytes,
                 "segments": p.segment_count}
                for p in log.topic(name).partitions
            ]
            out.append(summary)
    if args.json:
        emit_json(out)
        return 0
    for t in out:
        configs = ",".join(f"{k}={v}" for k, v in t["configs"].items()) or "(defaults)"
        print(f"Topic: {t['topic']}\tPartitionCount: {t['partitions']}\tConfigs: {configs}")
        print_table(["PARTITION", "START", "END", "SIZE", "SEGMENTS"],
                    [(p["partition"], p["start_offset"], p["end_offset"], p["size_bytes"],
                      p["segments"]) for p in t["partition_detail"]])
    return 0


def run_create(args: argparse.Namespace) -> int:
    config = parse_configs(args.config)
    with open_for_writing(args.dir, f"create topic {args.name!r}", create=True) as log:
        log.create_topic(args.name, args.partitions, exist_ok=args.if_not_exists, **config)
    print(f"Created topic {args.name}.")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with open_for_writing(args.dir, f"delete topic {args.name!r}") as log:
        log.delete_topic(args.name)
    print(f"Deleted topic {args.name}.")
    return 0


def run_alter(args: argparse.Namespace) -> int:
    with open_for_writing(args.dir, f"alter topic {args.name!r}") as log:
        log.create_partitions(args.name, args.partitions)
    print(f"Topic {args.name} now has {args.partitions} partitions.")
    return 0
