"""What a consumer reads: its mode (subscribe or assign), topics or pattern, and argument checks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..broker import Broker
from ..broker.topic import validate_topic_name
from ..errors import IllegalStateError, InvalidConfigError

__all__ = [
    "ASSIGN",
    "SUBSCRIBE",
    "Subscription",
    "compile_pattern",
    "flatten",
    "partitions_arg",
    "subscribe_args",
    "topic_names",
]

SUBSCRIBE = "subscribe"
ASSIGN = "assign"


class Subscription:
    """The consumer's mode (None, "subscribe" or "assign") and what it subscribed to."""

    __slots__ = ("mode", "pattern", "topics")

    def __init__(self) -> None:
        self.mode: str | None = None
        self.topics: tuple[str, ...] = ()  # explicit subscription, sorted
        self.pattern: re.Pattern[str] | None = None

    @property
    def subscribed(self) -> bool:
        return self.mode == SUBSCRIBE

    def refuse_mode_change(self, *, to: str) -> None:
        """IllegalStateError if the consumer is in the other mode than ``to``."""
        if self.mode is not None and self.mode != to:
            now = "used assign()" if self.mode == ASSIGN else "is subscribed"
            raise IllegalStateError(
                f"this consumer {now}; subscribe() and assign() are mutually "
                "exclusive: call unsubscribe() first"
            )

    def check(self, has_partitions: bool) -> None:
        assert self.mode in (None, SUBSCRIBE, ASSIGN)
        assert self.mode is not None or not has_partitions

    def set(self, topics: tuple[str, ...], pattern: re.Pattern[str] | None) -> None:
        self.topics, self.pattern, self.mode = topics, pattern, SUBSCRIBE

    def clear(self) -> None:
        self.mode, self.topics, self.pattern = None, (), None

    def topics_now(self, log: Broker, exclude_internal: bool) -> tuple[str, ...]:
        """The subscribed topics: the explicit list, or those the pattern matches now."""
        pattern = self.pattern
        if pattern is None:
            return self.topics
        names = log.topics(include_internal=not exclude_internal)
        return tuple(t for t in names if pattern.fullmatch(t))


def subscribe_args(topics: Iterable[str] | str | None, pattern: str | re.Pattern[str] | None
                   ) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """subscribe()'s topics and pattern checked: exactly one given, and valid."""
    if (topics is None) == (pattern is None):
        raise InvalidConfigError("subscribe() takes topics or pattern (exactly one)")
    if pattern is not None:
        return (), compile_pattern(pattern)
    assert topics is not None
    return topic_names(topics), None


def topic_names(topics: Iterable[str] | str) -> tuple[str, ...]:
    """Sorted, distinct, validated topic names from a name or an iterable of names."""
    if isinstance(topics, str):
        topics = [topics]
    try:
        names = list(topics)
    except TypeError:
        raise InvalidConfigError(
            f"topics must be a list of topic names, got {type(topics).__name__}"
        ) from None
    for name in names:
        validate_topic_name(name)
    return tuple(sorted(set(names)))


def compile_pattern(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` compiled; InvalidConfigError if it is not a valid regular expression."""
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise InvalidConfigError(f"pattern must be a str or re.Pattern, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidConfigError(f"invalid pattern {pattern!r}: {exc}") from None


def _is_tp(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and type(value[1]) is int)


def flatten(partitions: tuple[Any, ...]) -> list[Any]:
    """``f(tp1, tp2)`` and ``f([tp1, tp2])`` both mean the two partitions."""
    if len(partitions) == 1 and not _is_tp(partitions[0]) and isinstance(
        partitions[0], (list, tuple, set, frozenset)
    ):
        return list(partitions[0])
    return list(partitions)


def partitions_arg(partitions: Iterable[Any]) -> list[Any]:
    """A list of partitions from an iterable; InvalidConfigError for one partition or a str."""
    if _is_tp(partitions) or isinstance(partitions, (str, bytes)):
        raise InvalidConfigError(
            f"expected a list of TopicPartition, got {partitions!r}"
        )
    try:
        items = list(partitions)
    except TypeError:
        raise InvalidConfigError(
            f"expected a list of TopicPartition, got {type(partitions).__name__}"
        ) from None
    return items
