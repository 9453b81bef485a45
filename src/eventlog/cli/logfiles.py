"""``eventlog dump FILE`` (kafka-dump-log) and ``eventlog verify DIR``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from eventlog.storage import verifier

from .common import CliError, Progress, emit_json, open_for_reading, text_or_hex
from .registry import Subparsers, add_json_flag, command

__all__ = ["add_logfiles"]


@command
def add_logfiles(sub: Subparsers) -> None:
    p = sub.add_parser("dump", help="print the batches of a segment file (kafka-dump-log)",
                       description="Print the batches of a .log file (or the entries of an "
                                   ".index / .timeindex file), checking each batch's CRC.")
    p.add_argument("file", help="DIR/TOPIC-P/NNNNNNNNNNNNNNNNNNNN.log (or .index, .timeindex)")
    p.add_argument("--print-data", action="store_true", help="also every record")
    add_json_flag(p)
    p.set_defaults(run=run_dump)

    p = sub.add_parser("verify", help="check every batch, index entry and offset of a log",
                       description="Check every batch's CRC and header, that offsets are "
                                   "dense, and every index entry. Exit code 1 with the damage "
                                   "listed; reads DIR read-only (works while it is in use).")
    p.add_argument("dir")
    add_json_flag(p)
    p.set_defaults(run=run_verify)


def run_dump(args: argparse.Namespace) -> int:
    path = args.file
    if not os.path.isfile(path):
        raise CliError(f"{path}: no such file")
    if path.endswith((".index", ".timeindex")):
        entries = verifier.index_entries(path)
        if args.json:
            emit_json(entries)
        else:
            for e in entries:
                print(" ".join(f"{k}: {v}" for k, v in e.items()))
        return 0
    if not path.endswith(".log"):
        raise CliError(f"{path}: not a segment file (.log, .index or .timeindex)")
    batches = list(verifier.dump_segment(path, records=args.print_data))
    if args.json:
        emit_json([_jsonable(b) for b in batches])
        return 0
    print(f"Dumping {path}")
    for b in batches:
        recs = b.pop("records", None)
        print(" ".join(f"{k}: {v}" for k, v in b.items()))
        for r in recs or ():
            print("| " + " ".join(f"{k}: {v}" for k, v in _jsonable(r).items()))
    return 0


def _jsonable(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, bytes):
            out[k] = text_or_hex(v)
        elif k == "records":
            out[k] = [_jsonable(r) for r in v]
        elif k == "headers" and v:
            out[k] = [[n, text_or_hex(x)] for n, x in v]
        else:
            out[k] = v
    return out


def run_verify(args: argparse.Namespace) -> int:
    with open_for_reading(args.dir) as log:
        parts = log.partitions()
        progress = Progress(sum(p.size_bytes for p in parts), "verifying")
        problems: list[dict[str, Any]] = []
        batches = 0
        for p in parts:
            report = p.verify(progress=progress.advance)
            batches += report.batches
            problems.extend({"partition": f"{p.topic}-{p.index}", **d._asdict()}
                            for d in report.damage)
        progress.close()
    if args.json:
        emit_json({"partitions": len(parts), "batches": batches, "damage": problems})
    elif problems:
        for d in problems:
            print(f"{d['partition']}: {d['file']}: {d['problem']}")
        print(f"{len(problems)} problem(s) in {len(parts)} partition(s), {batches} batches")
    else:
        print(f"OK: {len(parts)} partition(s), {batches} batches")
    return 1 if problems else 0
