"""``eventlog groups list|describe|delete|reset-offsets DIR ...`` (kafka-consumer-groups)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from eventlog import EventLog, TopicPartition
from eventlog.group.coordinator import delete_group

from .common import (
    CliError,
    emit_json,
    open_for_reading,
    open_for_writing,
    parse_duration_ms,
    parse_time_ms,
    print_table,
)
from .registry import Subparsers, add_json_flag, command

__all__ = ["add_groups"]


@command
def add_groups(sub: Subparsers) -> None:
    groups = sub.add_parser("groups", help="list, describe, delete consumer groups; reset offsets",
                            description="Consumer groups of the event log in DIR "
                                        "(kafka-consumer-groups).")
    gsub = groups.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = gsub.add_parser("list", help="every group with members or committed offsets")
    p.add_argument("dir")
    add_json_flag(p)
    p.set_defaults(run=run_list)

    p = gsub.add_parser("describe", help="members, assignment and lag per partition")
    p.add_argument("dir")
    p.add_argument("group", nargs="?", help="default: every group")
    add_json_flag(p)
    p.set_defaults(run=run_describe)

    p = gsub.add_parser("delete", help="delete an empty group's committed offsets")
    p.add_argument("dir")
    p.add_argument("group")
    p.set_defaults(run=run_delete)

    p = gsub.add_parser(
        "reset-offsets", help="plan (and with --execute, commit) new offsets for a group",
        description="Print the offsets a reset would commit; commit them only with "
                    "--execute, which is refused while the group has active members "
                    "(as Kafka's tool) or while another process holds DIR.")
    p.add_argument("dir")
    p.add_argument("group")
    p.add_argument("--topic", required=True, action="append", metavar="TOPIC[:P,P...]",
                   help="a topic, or some of its partitions (repeatable)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--to-earliest", action="store_true")
    how.add_argument("--to-latest", action="store_true")
    how.add_argument("--to-offset", type=int, metavar="N")
    how.add_argument("--to-datetime", metavar="ISO", help="e.g. 2026-12-07T10:00:00")
    how.add_argument("--shift-by", type=int, metavar="N", help="move each offset by N (+/-)")
    how.add_argument("--by-duration", metavar="PnDTnHnM", help="to this long ago, e.g. PT1H")
    p.add_argument("--execute", action="store_true", help="commit the plan (default: dry run)")
    add_json_flag(p)
    p.set_defaults(run=run_reset)


# ---------------------------------------------------------------------- reading

def _group_ids(log: EventLog) -> list[str]:
    return [g.group_id for g in log.list_groups()]


def _describe(log: EventLog, group_id: str) -> dict[str, Any]:
    d = log.describe_group(group_id)
    owner = {tp: m.client_id or m.member_id for m in d.members for tp in m.assignment}
    return {
        "group": group_id,
        "state": str(d.state),
        "generation": d.generation,
        "members": [{"member_id": m.member_id, "client_id": m.client_id,
                     "instance_id": m.group_instance_id,
                     "assignment": [[tp.topic, tp.partition] for tp in m.assignment]}
                    for m in d.members],
        "partitions": [{"topic": o.topic_partition.topic,
                        "partition": o.topic_partition.partition,
                        "committed_offset": o.committed_offset, "end_offset": o.end_offset,
                        "lag": o.lag, "owner": owner.get(o.topic_partition)}
                       for o in d.offsets],
    }


def run_list(args: argparse.Namespace) -> int:
    with open_for_reading(args.dir) as log:
        rows = [{"group": g.group_id, "state": str(g.state)}
                for g in log.list_groups()]
    if args.json:
        emit_json(rows)
    else:
        print_table(["GROUP", "STATE"], [(r["group"], r["state"]) for r in rows])
    return 0


def run_describe(args: argparse.Namespace) -> int:
    with open_for_reading(args.dir) as log:
        ids = [args.group] if args.group else _group_ids(log)
        if args.group and args.group not in _group_ids(log):
            raise CliError(f"group {args.group!r} does not exist in {args.dir} (no members "
                           "and no committed offsets); see 'eventlog groups list'")
        out = [_describe(log, g) for g in ids]
    if args.json:
        emit_json(out)
        return 0
    for i, g in enumerate(out):
        if i:
            print()
        print(f"Group {g['group']}: {g['state']}, generation {g['generation']}, "
              f"{len(g['members'])} member(s)")
        print_table(["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "OWNER"],
                    [(p["topic"], p["partition"], p["committed_offset"], p["end_offset"],
                      p["lag"], p["owner"]) for p in g["partitions"]])
    return 0


# ---------------------------------------------------------------------- writing

def run_delete(args: argparse.Namespace) -> int:
    with open_for_writing(args.dir, f"delete group {args.group!r}") as log:
        if args.group not in _group_ids(log):
            raise CliError(f"group {args.group!r} does not exist in {args.dir}")
        delete_group(log, args.group)
    print(f"Deleted group {args.group}.")
    return 0


def _selected(log: EventLog, specs: list[str]) -> list[TopicPartition]:
    out: list[TopicPartition] = []
    for spec in specs:
        name, _, parts = spec.partition(":")
        topic = log.topic(name)
        if not parts:
            out.extend(TopicPartition(name, i) for i in range(topic.num_partitions))
            continue
        for item in parts.split(","):
            if not item.strip().isdigit():
                raise CliError(f"--topic {spec!r}: partitions must be numbers, e.g. {name}:0,1")
            topic.partition(int(item))
            out.append(TopicPartition(name, int(item)))
    return out


def _plan(log: EventLog, group_id: str, tps: list[TopicPartition],
          args: argparse.Namespace) -> list[dict[str, Any]]:
    committed = {o.topic_partition: o.committed_offset
                 for o in log.describe_group(group_id).offsets}
    when = None
    if args.to_datetime is not None:
        when = parse_time_ms(args.to_datetime)
    elif args.by_duration is not None:
        when = int(time.time() * 1000) - parse_duration_ms(args.by_duration)
    rows = []
    for tp in tps:
        p = log.partition(tp.topic, tp.partition)
        start, end = p.start_offset, p.end_offset
        current = committed.get(tp)
        if args.to_earliest:
            new = start
        elif args.to_latest:
            new = end
        elif args.to_offset is not None:
            new = args.to_offset
        elif args.shift_by is not None:
            new = (end if current is None else current) + args.shift_by
        else:
            assert when is not None
            found = p.offset_for_time(when)
            new = end if found is None else found
        rows.append({"group": group_id, "topic": tp.topic, "partition": tp.partition,
                     "current_offset": current, "new_offset": min(max(new, start), end)})
    return rows


def run_reset(args: argparse.Namespace) -> int:
    if args.execute:
        log = open_for_writing(args.dir, f"reset the offsets of group {args.group!r}")
    else:
        log = open_for_reading(args.dir)
    with log:
        plan = _plan(log, args.group, _selected(log, args.topic), args)
        if args.execute:
            _execute(log, args.group, plan)
    if args.json:
        emit_json(plan)
    else:
        if not args.execute:
            print("Dry run: nothing committed (add --execute to commit these offsets).")
        print_table(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
                    [(r["group"], r["topic"], r["partition"], r["current_offset"],
                      r["new_offset"]) for r in plan])
    return 0


def _execute(log: EventLog, group_id: str, plan: list[dict[str, Any]]) -> None:
    d = log.describe_group(group_id)
    if d.members:
        raise CliError(f"group {group_id!r} has {len(d.members)} active member(s): offsets "
                       "can be reset only when the group is inactive (as Kafka's tool)")
    offsets = {TopicPartition(r["topic"], r["partition"]): r["new_offset"] for r in plan}
    with log.consumer(group_id=group_id, enable_auto_commit=False) as consumer:
        consumer.commit(offsets)
