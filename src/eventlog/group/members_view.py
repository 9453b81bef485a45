"""The members view: the groups' members, as the writing process last saw them,
for readers in other processes (``eventlog groups describe`` on a directory that
an application holds open).

Group membership lives in the memory of the process that runs the coordinator.
That process writes ``DATA_DIR/groups-view.msgpack`` (atomically, without fsync:
it is informational and rebuilt by the next change) whenever a group's state,
generation or member count changes::

    {"format": 1, "pid": int, "written_ms": int,
     "groups": [{"group": str, "state": str, "generation": int, "protocol": str | nil,
                 "members": [[member_id, instance_id | nil, client_id,
                              [[topic, partition], ...]], ...]}]}

A reader trusts the file only while process ``pid`` is alive (a killed writer's
members are gone with it) and only for what it says: a file that does not parse
is ignored. Members expire lazily in the writer (on its next group call), so the
view may show a member that stopped polling a moment ago.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, NamedTuple

import msgpack

from ..records import TopicPartition
from ..storage.files import atomic_write
from .state import GroupState

__all__ = ["PublishedGroup", "members_view_file", "publish", "read"]

members_view_file = "groups-view.msgpack"
_log = logging.getLogger("eventlog.group")


class PublishedGroup(NamedTuple):
    group_id: str
    state: str
    generation: int
    protocol: str | None
    members: tuple[tuple[str, str | None, str, tuple[TopicPartition, ...]], ...]


def publish(directory: str, groups: list[dict[str, Any]]) -> None:
    """Replace the view. Never raises: a failure is logged (nothing depends on it)."""
    data = msgpack.packb({"format": 1, "pid": os.getpid(),
                          "written_ms": int(time.time() * 1000), "groups": groups})
    path = os.path.join(directory, members_view_file)
    if os.path.islink(path) or os.path.islink(path + ".tmp"):
        _log.warning("%s (or its .tmp) is a symbolic link: not written (eventlog does not "
                     "follow links inside its data directory)", path)
        return
    try:
        atomic_write(path, data, durable=False)
    except OSError as exc:
        _log.warning("cannot write %s (readers in other processes will not see the "
                     "groups' members): %s", os.path.join(directory, members_view_file), exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def read(directory: str) -> dict[str, PublishedGroup]:
    """The groups the writing process published, if it is still running; else {}."""
    path = os.path.join(directory, members_view_file)
    if os.path.islink(path):
        return {}
    try:
        with open(path, "rb") as f:
            raw = msgpack.unpackb(f.read())
        if raw.get("format") != 1 or not isinstance(raw.get("pid"), int):
            return {}
        if not _alive(raw["pid"]):
            return {}
        out = {}
        for g in raw["groups"]:
            if g["state"] not in GroupState.__members__:
                continue
            members = tuple(
                (str(m[0]), None if m[1] is None else str(m[1]), str(m[2]),
                 tuple(TopicPartition(str(t), int(p)) for t, p in m[3]))
                for m in g["members"])
            out[str(g["group"])] = PublishedGroup(str(g["group"]), str(g["state"]),
                                                  int(g["generation"]), g["protocol"],
                                                  members)
        return out
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return {}
