"""What the console shows, as plain values: topics, groups with lag, records, and
record bytes rendered as text, pretty JSON or hex. No HTML here (pages.py renders)."""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidConfigError, UnknownTopicError
from ..log import EventLog
from ..metrics.groups import describe_groups
from ..records import Record

__all__ = [
    "PartitionRow", "RecordQuery", "TopicRow", "browse", "group_rows", "parse_time_ms",
    "render_bytes", "topic_rows",
]

browse_records_max = 500  # the most records one page shows (Kafka UI's default is 100)
FORMATS = ("text", "json", "hex")


@dataclass(frozen=True)
class PartitionRow:
    partition: int
    start_offset: int
    end_offset: int
    size_bytes: int
    segments: int


@dataclass(frozen=True)
class TopicRow:
    name: str
    internal: bool
    partitions: tuple[PartitionRow, ...]
    config: dict[str, Any]

    @property
    def records(self) -> int:
        return sum(p.end_offset - p.start_offset for p in self.partitions)

    @property
    def size_bytes(self) -> int:
        return sum(p.size_bytes for p in self.partitions)


def topic_rows(log: EventLog, *, include_internal: bool = True) -> list[TopicRow]:
    """Every topic, sorted by name, with its partitions' offsets and sizes. O(partitions)."""
    rows = []
    for name in sorted(log.topics(include_internal=include_internal)):
        try:
            topic = log.topic(name)
        except UnknownTopicError:  # deleted meanwhile
            continue
        parts = tuple(
            PartitionRow(p.index, p.start_offset, p.end_offset, p.size_bytes,
                         p.segment_count)
            for p in topic.partitions if not p.closed
        )
        config = _config_dict(topic.config)
        rows.append(TopicRow(name, name.startswith("__"), parts, config))
    return rows


def _config_dict(config: Any) -> dict[str, Any]:
    fields = getattr(config, "__dataclass_fields__", None)
    if fields is None:
        return {}
    return {name: getattr(config, name) for name in fields}


def group_rows(log: EventLog) -> list[Any]:
    """Each group's description (GroupDescription: state, members, offsets, lag);
    none, and nothing created, on a log where no group was ever used."""
    return describe_groups(log)


def total_lag(description: Any) -> int:
    return sum(o.lag for o in description.offsets if o.lag is not None)


@dataclass(frozen=True)
class RecordQuery:
    """A record-browser request: newest N, from an offset, or from a time."""

    topic: str
    partition: int = 0
    newest: int | None = 20  # the default view: the newest 20
    offset: int | None = None
    time_ms: int | None = None
    limit: int = 20
    fmt: str = "text"

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise InvalidConfigError(f"format must be one of {', '.join(FORMATS)}, "
                                     f"got {self.fmt!r}")
        if not 1 <= self.limit <= browse_records_max:
            raise InvalidConfigError(
                f"limit must be 1..{browse_records_max}, got {self.limit}")
        if self.offset is not None and self.offset < 0:
            raise InvalidConfigError(f"offset must be >= 0, got {self.offset}")


def browse(log: EventLog, query: RecordQuery) -> tuple[list[Record], int, int]:
    """Records for ``query`` and the partition's (start, end) offsets. O(limit).

    Raises UnknownTopicError / UnknownPartitionError (from the log) for a partition
    that does not exist; an offset outside the log is clamped to it (a browser, not
    a consumer: it shows what is there).
    """
    part = log.topic(query.topic).partition(query.partition)
    start, end = part.start_offset, part.end_offset
    if query.offset is not None:
        first = min(max(query.offset, start), end)
        limit = query.limit
    elif query.time_ms is not None:
        found = part.offset_for_time(query.time_ms)
        first = end if found is None else found
        limit = query.limit
    else:
        limit = min(query.newest or query.limit, browse_records_max)
        first = max(start, end - limit)
    records: list[Record] = []
    offset = first
    while len(records) < limit and offset < end:
        batch = part.read(offset, limit - len(records))
        if not batch:
            break
        records.extend(batch)
        offset = batch[-1].offset + 1
    return records[:limit], start, end


def render_bytes(data: bytes | None, fmt: str) -> str:
    """``data`` as text (invalid UTF-8 shown with U+FFFD), as pretty-printed JSON when
    it parses (else as text), or as hex; "null" for None. Never HTML-escaped here."""
    if data is None:
        return "null"
    if fmt == "hex":
        return binascii.hexlify(data, " ", 1).decode("ascii") if data else ""
    text = data.decode("utf-8", errors="replace")
    if fmt == "json":
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
        except ValueError:
            return text
    return text


def parse_time_ms(text: str) -> int:
    """An ISO 8601 date-time (UTC unless it names a zone) as epoch milliseconds.

    Raises InvalidConfigError naming the expected form."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidConfigError(
            f"time must be ISO 8601, such as 2026-12-07T10:00:00Z; got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def format_time_ms(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
