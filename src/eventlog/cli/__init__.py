"""The ``eventlog`` command line: one console script, Kafka's tool names.

Each command group is a module here registering its parsers with
``registry.command`` (see registry.py); ``command_modules`` lists them. ``main``
builds the parser, runs the chosen command and turns a user's mistake (a
CliError, any EventLogError, a file that cannot be read) into one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from eventlog.errors import EventLogError

from .common import CliError
from .registry import registered

__all__ = ["command_modules", "main"]

# One module per command group; a new group is a module registering its parsers.
command_modules = ("topics", "records", "groups", "logfiles", "metrics", "ui", "server")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2, as argparse's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import eventlog

    parser = _Parser(prog="eventlog", description="Manage and inspect eventlog data "
                                                  "directories (Kafka's tools, by name).")
    parser.add_argument("--version", action="version", version=f"eventlog {eventlog.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for name in command_modules:
        importlib.import_module(f"{__name__}.{name}")
    for add in registered():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `eventlog consume ... | head`: the reader went away
        _silence_stdout()
        return 0
    except (CliError, EventLogError, OSError) as exc:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, KeyError) and exc.args:
            message = str(exc.args[0])  # KeyError's str() adds quotes
        print(f"eventlog {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
