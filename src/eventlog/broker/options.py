"""The options of eventlog.open(): their names, their validation, and the validated set."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..config import FSYNC_POLICIES, TopicConfig
from ..errors import InvalidConfigError
from ..storage.files import Files

__all__ = ["LogOptions", "check_option_names", "flush_interval_ms_default", "validate_options"]

flush_interval_ms_default = 1000
retention_check_interval_ms_default = 300_000


@dataclass(frozen=True)
class LogOptions:
    """The options of an open log that its parts read after opening."""

    fsync: str
    flush_interval_ms: int
    flush_interval_messages: int | None
    retention_check_interval_ms: int
    auto_create_topics: bool
    num_partitions: int


_option_names = (
    "path", "clock", "fsync", "flush_interval_ms", "flush_interval_messages",
    "retention_check_interval_ms", "auto_create_topics", "num_partitions", "topic_config",
    "files", "read_only",
)


def check_option_names(unknown: Mapping[str, Any]) -> None:
    """An unknown keyword of open() is an InvalidConfigError naming it (not Python's
    TypeError), with a hint when it is a topic config given at the wrong level."""
    if not unknown:
        return
    names = sorted(unknown)
    hint = ""
    if set(names) <= set(TopicConfig.__dataclass_fields__):
        args = ", ".join(f"{n!r}: {unknown[n]!r}" for n in names)
        what = "is a topic config" if len(names) == 1 else "are topic configs"
        hint = (f"; {', '.join(names)} {what}: pass topic_config={{{args}}} for every "
                "topic, or give it to create_topic()")
    raise InvalidConfigError(
        f"unknown option {', '.join(names)} of eventlog.open(){hint}; "
        f"known options: {', '.join(_option_names)}"
    )


def validate_options(
    path: object,
    clock: object,
    fsync: str,
    flush_interval_ms: int,
    flush_interval_messages: int | None,
    retention_check_interval_ms: int,
    auto_create_topics: object,
    num_partitions: int,
    topic_config: object,
    files: object = None,
) -> None:
    if files is not None and not isinstance(files, Files):
        raise InvalidConfigError(
            f"files must be an eventlog Files object (e.g. eventlog.testing.FaultyFiles()) "
            f"or None, got {type(files).__name__}"
        )
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise InvalidConfigError(
            f"path must be a str or os.PathLike (or None: in memory), got "
            f"{type(path).__name__} {path!r}"
        )
    if clock is not None and not isinstance(clock, Clock):
        raise InvalidConfigError(
            f"clock must be a Clock (time_ms, monotonic_ms, wait), e.g. "
            f"eventlog.testing.ManualClock(), got {type(clock).__name__}"
        )
    if type(auto_create_topics) is not bool:
        raise InvalidConfigError(
            f"auto_create_topics must be True or False, got {auto_create_topics!r}"
        )
    if topic_config is not None and not isinstance(topic_config, Mapping):
        raise InvalidConfigError(
            "topic_config must be a mapping of topic config names to values, got "
            f"{type(topic_config).__name__} {topic_config!r}"
        )
    if fsync not in FSYNC_POLICIES:
        raise InvalidConfigError(
            f"fsync must be one of {', '.join(map(repr, FSYNC_POLICIES))}, got {fsync!r}"
        )
    for name, value in (
        ("flush_interval_ms", flush_interval_ms),
        ("retention_check_interval_ms", retention_check_interval_ms),
        ("num_partitions", num_partitions),
    ):
        if type(value) is not int or value < 1:
            raise InvalidConfigError(f"{name} must be an int >= 1, got {value!r}")
    if flush_interval_messages is not None and (
        type(flush_interval_messages) is not int or flush_interval_messages < 1
    ):
        raise InvalidConfigError(
            f"flush_interval_messages must be None or an int >= 1, got {flush_interval_messages!r}"
        )
