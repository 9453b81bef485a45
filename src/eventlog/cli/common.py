"""What every subcommand shares: opening a directory, errors, tables, JSON, progress."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

import eventlog
from eventlog.errors import LogDirLockedError

__all__ = [
    "CliError", "Progress", "emit_json", "open_for_reading", "open_for_writing",
    "parse_duration_ms", "parse_time_ms", "print_table", "text_or_hex",
]


class CliError(Exception):
    """A user's mistake or a refused operation: printed as one line, exit code 2."""


def _check_dir(path: str) -> str:
    if not os.path.isdir(path):
        raise CliError(f"no data directory at {path!r}; give an existing one (the data "
                       "directory of an event log)")
    if not os.path.exists(os.path.join(path, "topics.msgpack")) and not any(
            os.scandir(path)):
        raise CliError(f"{path}: an empty directory, not an event log")
    return path


def open_for_reading(path: str) -> eventlog.EventLog:
    """Open ``path`` read-only: works while another process has it open for writing."""
    return eventlog.open(_check_dir(path), read_only=True)


def open_for_writing(path: str, what: str, *, create: bool = False) -> eventlog.EventLog:
    """Open ``path`` for writing (``create``: a new log if there is none); a directory
    another process holds is a CliError."""
    try:
        return eventlog.open(path if create else _check_dir(path))
    except LogDirLockedError:
        raise CliError(
            f"cannot {what}: {path} is open in another process, which alone may write it "
            "(stop that process first, or have it do the change; reading commands work "
            "meanwhile)"
        ) from None


def emit_json(value: Any, out: TextIO = sys.stdout) -> None:
    json.dump(value, out, indent=2, sort_keys=False)
    out.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                out: TextIO = sys.stdout) -> None:
    """Columns padded to their widest cell, as kafka-topics and kafka-consumer-groups print."""
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")


def text_or_hex(data: bytes | None) -> str | None:
    """Bytes as text if they are UTF-8, else as ``0x`` and hex."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + data.hex()


_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?")


def parse_duration_ms(text: str) -> int:
    """An ISO 8601 duration as kafka-consumer-groups' --by-duration takes: PnDTnHnMnS."""
    m = _DURATION.fullmatch(text.strip().upper())
    if m is None or text.strip().upper() in ("P", "PT"):
        raise CliError(f"{text!r} is not an ISO 8601 duration such as P1DT2H or PT30M")
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    seconds = (parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600
               + parts.get("m", 0) * 60 + parts.get("s", 0))
    return int(seconds * 1000)


def parse_time_ms(text: str) -> int:
    """A time as milliseconds since the epoch: an ISO 8601 date-time (UTC unless it names
    a zone), a number of milliseconds, or an ISO 8601 duration meaning that long ago
    (``PT1H``, or ``-PT1H``; ``--since=-PT1H`` keeps argparse from taking it for an
    option)."""
    text = text.strip()
    if text.upper().startswith(("P", "-P")):
        return int(time.time() * 1000) - parse_duration_ms(text.lstrip("-"))
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{text!r} is not a time: give an ISO 8601 date-time such as "
                       "2026-12-07T10:00:00, milliseconds since the epoch, or PT1H (that "
                       "long ago)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


class Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second; silent when
    stderr is not a terminal (scripts, CI logs)."""

    def __init__(self, total: int, what: str, *, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.what = what
        self.done = 0
        self._stream = stream
        self._on = stream.isatty()
        self._drawn = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        if self._on and time.monotonic() - self._drawn > 0.1:
            self._draw()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        share = min(self.done / self.total, 1.0)
        bar = "#" * int(share * 30)
        self._stream.write(f"\r{self.what} [{bar:<30}] {share:6.1%}")
        self._stream.flush()

    def close(self) -> None:
        if self._on:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
