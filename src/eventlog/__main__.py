"""``python -m eventlog demo``: a short tour of the library, on a temporary directory."""

from __future__ import annotations

import argparse
import sys
import tempfile

__all__ = ["main"]


def _demo_log() -> None:
    import eventlog

    with tempfile.TemporaryDirectory() as directory:
        with eventlog.open(directory) as log:
            orders = log.create_topic("orders", partitions=3)
            p = orders.partition(0)
            first = p.append([(b"alice", b'{"order": 1}'), (b"bob", b'{"order": 2}')])
            print(f"appended 2 records to orders-0 at offsets {first}..{p.end_offset - 1}")
            for record in p.read(0):
                print(f"  offset {record.offset}: key={record.key!r} value={record.value!r}")
        with eventlog.open(directory) as log:
            p = log.topic("orders").partition(0)
            print(f"reopened (clean={log.recovery.clean}): orders-0 holds offsets "
                  f"{p.start_offset}..{p.end_offset - 1}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eventlog")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run a short demo on a temporary directory")
    args = parser.parse_args(argv)
    if args.command == "demo":
        _demo_log()
    return 0


if __name__ == "__main__":
    sys.exit(main())
