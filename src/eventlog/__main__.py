"""``python -m eventlog demo``: a short tour of the library, on a temporary directory."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eventlog")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run a short demo on a temporary directory")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
