"""The web console: ``eventlog ui DIR`` or ``serve_console(log)`` serves pages of
topics, consumer groups with lag (live, with a chart), and a record browser on
127.0.0.1; read-only unless ``allow_writes`` (offset resets, dry run first).
docs/operations.md describes it."""

from .server import ConsoleServer, LagHistory, serve_console

__all__ = ["ConsoleServer", "LagHistory", "serve_console"]
