"""Every public method says what it costs, which threads may call it, and what it raises.

The public API is ``eventlog.__all__``. Each function there, and each public method of
a class there (its own, and those it inherits from eventlog's classes: EventLog's from
the broker's Broker), ends its docstring with three labelled lines::

    Cost: O(records returned); one mapped read, no copy.
    Thread safety: any thread; lock-free, never blocks a writer.
    Raises: OffsetOutOfRangeError below the log start or above the log end.

A line may run on over the next indented lines; "Raises: nothing." is an answer.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator

import pytest

import eventlog

LABELS = ("Cost:", "Thread safety:", "Raises:")

def _public_callables() -> Iterator[tuple[str, str, Callable[..., object]]]:
    """(public name, qualified name, function) for every documented callable."""
    for name in eventlog.__all__:
        obj = getattr(eventlog, name)
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                continue  # errors document their meaning, not a cost
            seen: set[str] = set()
            for cls in obj.__mro__:
                if not cls.__module__.startswith("eventlog"):
                    continue
                for attr, value in vars(cls).items():
                    if attr.startswith("_") or attr in seen:
                        continue
                    seen.add(attr)  # the first in the MRO is the one called
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    if inspect.isfunction(value):
                        yield name, f"{name}.{attr}", value
        elif inspect.isfunction(obj):
            yield name, name, obj


CALLABLES = sorted(_public_callables(), key=lambda item: item[1])


def missing_labels(function: Callable[..., object]) -> list[str]:
    """The labels of LABELS that the docstring lacks at the start of a line."""
    doc = inspect.getdoc(function) or ""
    return [label for label in LABELS if not re.search(rf"^{re.escape(label)} \S", doc, re.M)]


@pytest.mark.parametrize(
    ("owner", "qualname", "function"),
    CALLABLES,
    ids=[item[1] for item in CALLABLES],
)
def test_docstring_states_cost_thread_safety_and_raises(
    owner: str, qualname: str, function: Callable[..., object]
) -> None:
    assert missing_labels(function) == [], f"{qualname}: add {missing_labels(function)}"


def test_missing_labels_finds_each_absent_label() -> None:
    def documented() -> None:
        """Do it.

        Cost: O(1).
        Thread safety: any thread.
        Raises: nothing.
        """

    def undocumented() -> None:
        """Do it; costs little and raises nothing."""

    assert missing_labels(documented) == []
    assert missing_labels(undocumented) == list(LABELS)
