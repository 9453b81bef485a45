"""The registry of subcommands: each command group is one module with one function
that adds its parsers.

A module of ``eventlog.cli`` adds a subcommand like this::

    from .registry import command

    @command
    def add_metrics(sub: Subparsers) -> None:
        p = sub.add_parser("metrics", help="...")
        p.add_argument("dir")
        p.set_defaults(run=run_metrics)      # run(args) -> exit code

and is listed in ``eventlog.cli.command_modules``. ``run`` returns the process's
exit code; it raises CliError (or any EventLogError) for a user's mistake, which
``main`` prints as one line, exit code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["Subparsers", "command", "registered"]

Subparsers = Any  # argparse's _SubParsersAction, which it does not export
_registered: list[Callable[[Subparsers], None]] = []


def command(add: Callable[[Subparsers], None]) -> Callable[[Subparsers], None]:
    """Register ``add(subparsers)``, which adds one or more subcommands."""
    _registered.append(add)
    return add


def registered() -> list[Callable[[Subparsers], None]]:
    return list(_registered)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print JSON (for scripts) instead of a table")
