"""The wire group coordinator: Kafka's classic group protocol for network clients.

Unlike the in-process coordinator (eventlog.group), which computes assignments
itself, this one is protocol-agnostic, as Kafka's broker is: each member's
protocol metadata is opaque bytes, the leader member runs the client's own
assignor on them and sends the result in SyncGroup, and the coordinator hands
each member its bytes. It runs on the server's event loop (no locks): JoinGroup
and SyncGroup answers wait on futures until the join completes or the leader
syncs.

States (Kafka's): Empty -> PreparingRebalance -> CompletingRebalance -> Stable.
A join completes as soon as every known member has rejoined
(``group.initial.rebalance.delay.ms`` is 0 here; Kafka's default is 3000), or
when the rebalance timeout (the largest of the members') passes; members that
did not rejoin are then removed. Members whose last heartbeat is older than
their session timeout are removed. Time is the log's clock
(``clock.monotonic_ms()``), checked on every call and by the server's sweep.

Committed offsets go to the log's own store (``__consumer_offsets``) through
``GroupCoordinator.commit_offsets`` as standalone commits, after this
coordinator checked the member and generation: wire consumers and in-process
consumers of a group id read and write the same offsets.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Errors", "WireGroupCoordinator"]

_log = logging.getLogger("eventlog.server")


class Errors:
    """Kafka's error codes used by the group protocol."""

    NONE = 0
    COORDINATOR_NOT_AVAILABLE = 15
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    INVALID_GROUP_ID = 24
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    GROUP_ID_NOT_FOUND = 69
    NON_EMPTY_GROUP = 68
    MEMBER_ID_REQUIRED = 79
    FENCED_INSTANCE_ID = 82


EMPTY = "Empty"
PREPARING = "PreparingRebalance"
COMPLETING = "CompletingRebalance"
STABLE = "Stable"


@dataclass
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    last_seen_ms: float
    join: asyncio.Future | None = None  # set while a JoinGroup waits
    sync: asyncio.Future | None = None  # set while a SyncGroup waits
    assignment: bytes = b""

    def metadata(self, protocol: str | None) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        return b""


@dataclass
class Group:
    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)  # member id -> expiry
    rebalance_deadline_ms: float = 0.0


class WireGroupCoordinator:
    """Groups of wire clients; offsets through the log's in-process coordinator.

    ``now_ms`` is the log's monotonic clock; ``min_session_timeout_ms`` and
    ``max_session_timeout_ms`` are Kafka's ``group.min/max.session.timeout.ms``.
    """

    def __init__(
        self,
        now_ms: Callable[[], float],
        *,
        min_session_timeout_ms: int = 6_000,
        max_session_timeout_ms: int = 1_800_000,
    ) -> None:
        self._now = now_ms
        self.groups: dict[str, Group] = {}
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ join

    async def join(
        self,
        group_id: str,
        member_id: str,
        instance_id: str | None,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        *,
        client_id: str,
        client_host: str,
        require_member_id: bool,
    ) -> dict[str, Any]:
        """A JoinGroup; returns the response fields once the join completes."""
        if not group_id:
            return _join_error(Errors.INVALID_GROUP_ID, member_id)
        if not (self.min_session_timeout_ms <= session_timeout_ms
                <= self.max_session_timeout_ms):
            return _join_error(Errors.INVALID_SESSION_TIMEOUT, member_id)
        now = self._now()
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id)
        self._expire(group, now)
        if not protocols or (
            group.members and group.protocol_type not in (None, protocol_type)
        ) or not self._compatible(group, member_id, protocols):
            return _join_error(Errors.INCONSISTENT_GROUP_PROTOCOL, member_id)
        found = self._joining_member(
            group, member_id, instance_id, protocol_type, protocols, session_timeout_ms,
            rebalance_timeout_ms, now, client_id=client_id, client_host=client_host,
            require_member_id=require_member_id,
        )
        if isinstance(found, dict):
            return found  # an error answer
        member, changed = found
        if group.state in (STABLE, COMPLETING) and not changed and (
            group.state == COMPLETING or member.member_id != group.leader
        ):
            return self._join_response(group, member)  # nothing to rebalance
        if member.join is not None and not member.join.done():
            member.join.set_result(_join_error(Errors.UNKNOWN_MEMBER_ID, member.member_id))
        member.join = asyncio.get_running_loop().create_future()
        future = member.join
        if group.state != PREPARING:
            self._prepare(group, now)
        self._maybe_complete(group, now)
        return await future

    def _joining_member(
        self, group: Group, member_id: str, instance_id: str | None, protocol_type: str,
        protocols: list[tuple[str, bytes]], session_timeout_ms: int,
        rebalance_timeout_ms: int, now: int, *, client_id: str, client_host: str,
        require_member_id: bool,
    ) -> tuple[Member, bool] | dict[str, Any]:
        """The member a JoinGroup is from (new, known or a static member's replacement)
        and whether its protocols changed; or the error answer."""
        member = group.members.get(member_id) if member_id else None
        if member is None and instance_id is not None:
            static = next((m for m in group.members.values() if m.instance_id == instance_id),
                          None)
            if static is not None:
                if member_id and member_id != static.member_id:
                    return _join_error(Errors.FENCED_INSTANCE_ID, member_id)
                member = self._replace_static(group, static)
        if member is not None:
            changed = member.protocols != list(protocols)
            member.protocols = list(protocols)
            member.session_timeout_ms = session_timeout_ms
            member.rebalance_timeout_ms = rebalance_timeout_ms
            member.last_seen_ms = now
            return member, changed
        if member_id and member_id not in group.pending:
            return _join_error(Errors.UNKNOWN_MEMBER_ID, member_id)
        if not member_id:
            member_id = self._new_id(client_id)
            if require_member_id and instance_id is None:
                group.pending[member_id] = now + session_timeout_ms
                return _join_error(Errors.MEMBER_ID_REQUIRED, member_id)
        group.pending.pop(member_id, None)
        member = Member(
            member_id, instance_id, client_id, client_host, session_timeout_ms,
            rebalance_timeout_ms, protocol_type, list(protocols), now,
        )
        group.members[member_id] = member
        if group.protocol_type is None:
            group.protocol_type = protocol_type
        return member, True

    def _compatible(self, group: Group, member_id: str,
                    protocols: list[tuple[str, bytes]]) -> bool:
        others = [m for m in group.members.values() if m.member_id != member_id]
        if not others:
            return True
        names = {n for n, _ in protocols}
        common = set.intersection(*({n for n, _ in m.protocols} for m in others))
        return bool(names & common)

    def _new_id(self, client_id: str) -> str:
        return f"{client_id or 'member'}-{next(self._ids)}-{id(self) & 0xFFFF:04x}"

    def _replace_static(self, group: Group, static: Member) -> Member:
        """A static member rejoining without its id: same member, a new id."""
        new_id = self._new_id(static.client_id)
        del group.members[static.member_id]
        if group.leader == static.member_id:
            group.leader = new_id
        for fut in (static.join, static.sync):
            if fut is not None and not fut.done():
                fut.set_result(_join_error(Errors.FENCED_INSTANCE_ID, static.member_id))
        static.join = static.sync = None
        static.member_id = new_id
        group.members[new_id] = static
        return static

    def _prepare(self, group: Group, now: float) -> None:
        """Move to PreparingRebalance: every member must rejoin."""
        group.state = PREPARING
        timeout = max((m.rebalance_timeout_ms for m in group.members.values()), default=0)
        group.rebalance_deadline_ms = now + timeout
        for m in group.members.values():
            if m.sync is not None and not m.sync.done():
                m.sync.set_result({"error_code": Errors.REBALANCE_IN_PROGRESS})
            m.sync = None

    def _maybe_complete(self, group: Group, now: float) -> None:
        if group.state != PREPARING:
            return
        waiting = [m for m in group.members.values() if m.join is None or m.join.done()]
        if waiting and now < group.rebalance_deadline_ms:
            return
        for m in waiting:  # did not rejoin in time: removed (Kafka drops them too)
            _log.info("group %s: member %s did not rejoin in time; removed",
                      group.group_id, m.member_id)
            del group.members[m.member_id]
        self._complete(group)

    def _complete(self, group: Group) -> None:
        group.generation += 1
        if not group.members:
            group.state = EMPTY
            group.protocol = group.leader = group.protocol_type = None
            return
        group.protocol = self._select_protocol(group)
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.state = COMPLETING
        for m in group.members.values():
            m.assignment = b""
            if m.join is not None and not m.join.done():
                m.join.set_result(self._join_response(group, m))
            m.join = None

    @staticmethod
    def _select_protocol(group: Group) -> str:
        members = list(group.members.values())
        common = set.intersection(*({n for n, _ in m.protocols} for m in members))
        votes: dict[str, int] = {}
        for m in members:
            choice = next(n for n, _ in m.protocols if n in common)
            votes[choice] = votes.get(choice, 0) + 1
        # the first member's order breaks ties
        order = [n for n, _ in members[0].protocols if n in common]
        return max(order, key=lambda n: (votes.get(n, 0), -order.index(n)))

    def _join_response(self, group: Group, member: Member) -> dict[str, Any]:
        leader = member.member_id == group.leader
        return {
            "error_code": Errors.NONE,
            "generation_id": group.generation,
            "protocol_type": group.protocol_type,
            "protocol_name": group.protocol,
            "leader": group.leader or "",
            "member_id": member.member_id,
            "members": [
                {"member_id": m.member_id, "group_instance_id": m.instance_id,
                 "metadata": m.metadata(group.protocol)}
                for m in group.members.values()
            ] if leader else [],
        }

    # ------------------------------------------------------------------ sync

    async def sync(
        self, group_id: str, generation: int, member_id: str, instance_id: str | None,
        assignments: dict[str, bytes],
    ) -> dict[str, Any]:
        """A SyncGroup; the leader's call distributes ``assignments``."""
        group, member, error = self._find(group_id, member_id, instance_id, generation)
        if error:
            return {"error_code": error}
        assert group is not None and member is not None
        if group.state == PREPARING:
            return {"error_code": Errors.REBALANCE_IN_PROGRESS}
        done = {"error_code": Errors.NONE, "protocol_type": group.protocol_type,
                "protocol_name": group.protocol}
        if group.state == STABLE:
            return {**done, "assignment": member.assignment}
        if member.member_id == group.leader:
            for m in group.members.values():
                m.assignment = assignments.get(m.member_id, b"")
            group.state = STABLE
            for m in group.members.values():
                if m.sync is not None and not m.sync.done():
                    m.sync.set_result({**done, "assignment": m.assignment})
                m.sync = None
            return {**done, "assignment": member.assignment}
        member.sync = asyncio.get_running_loop().create_future()
        return await member.sync

    # ------------------------------------------------------------------ liveness

    def heartbeat(self, group_id: str, generation: int, member_id: str,
                  instance_id: str | None) -> int:
        group, _member, error = self._find(group_id, member_id, instance_id, generation)
        if error:
            return error
        assert group is not None
        return Errors.REBALANCE_IN_PROGRESS if group.state == PREPARING else Errors.NONE

    def leave(self, group_id: str, member_id: str, instance_id: str | None) -> int:
        group = self.groups.get(group_id)
        if group is None:
            return Errors.UNKNOWN_MEMBER_ID
        member = group.members.get(member_id) if member_id else None
        if member is None and instance_id is not None:
            member = next((m for m in group.members.values() if m.instance_id == instance_id),
                          None)
            if member is not None and member_id and member.member_id != member_id:
                return Errors.FENCED_INSTANCE_ID
        if member is None:
            return Errors.UNKNOWN_MEMBER_ID
        self._remove(group, member, self._now())
        return Errors.NONE

    def _remove(self, group: Group, member: Member, now: float) -> None:
        del group.members[member.member_id]
        for fut in (member.join, member.sync):
            if fut is not None and not fut.done():
                fut.set_result(_join_error(Errors.UNKNOWN_MEMBER_ID, member.member_id))
        if group.state in (STABLE, COMPLETING):
            self._prepare(group, now)
        if group.state == PREPARING:
            self._maybe_complete(group, now)
        elif not group.members:
            group.state = EMPTY

    def _find(
        self, group_id: str, member_id: str, instance_id: str | None, generation: int
    ) -> tuple[Group | None, Member | None, int]:
        group = self.groups.get(group_id)
        if group is None:
            return None, None, Errors.UNKNOWN_MEMBER_ID
        now = self._now()
        self._expire(group, now)
        member = group.members.get(member_id)
        if member is None:
            return group, None, Errors.UNKNOWN_MEMBER_ID
        if instance_id is not None and member.instance_id != instance_id:
            return group, None, Errors.FENCED_INSTANCE_ID
        member.last_seen_ms = now
        if generation != group.generation:
            return group, member, Errors.ILLEGAL_GENERATION
        return group, member, Errors.NONE

    def _expire(self, group: Group, now: float) -> None:
        for m in list(group.members.values()):
            waiting = m.join is not None and not m.join.done()
            if not waiting and now - m.last_seen_ms > m.session_timeout_ms:
                _log.info("group %s: member %s missed its session timeout (%d ms); removed",
                          group.group_id, m.member_id, m.session_timeout_ms)
                self._remove(group, m, now)
        for pending_id, expiry in list(group.pending.items()):
            if now > expiry:
                del group.pending[pending_id]
        self._maybe_complete(group, now)

    def sweep(self) -> None:
        """Apply session and rebalance timeouts to every group (the server calls it often)."""
        now = self._now()
        for group in list(self.groups.values()):
            self._expire(group, now)
            if group.state == EMPTY and not group.members and not group.pending:
                del self.groups[group.group_id]

    # ------------------------------------------------------------------ offsets

    def check_commit(self, group_id: str, generation: int, member_id: str,
                     instance_id: str | None) -> int:
        """The error code for an OffsetCommit, 0 if the committer may commit."""
        group = self.groups.get(group_id)
        if generation < 0 and not member_id:
            # a standalone (assign()) commit: only while the group has no members
            if group is None or not group.members:
                return Errors.NONE
            return Errors.ILLEGAL_GENERATION
        group, _member, error = self._find(group_id, member_id, instance_id, generation)
        if error:
            return error
        assert group is not None
        if group.state == COMPLETING:
            return Errors.REBALANCE_IN_PROGRESS
        return Errors.NONE

    def close(self) -> None:
        """Fail every waiting JoinGroup and SyncGroup (the server is stopping)."""
        for group in self.groups.values():
            for m in group.members.values():
                for fut in (m.join, m.sync):
                    if fut is not None and not fut.done():
                        fut.set_result({"error_code": Errors.COORDINATOR_NOT_AVAILABLE,
                                        "member_id": m.member_id})


def _join_error(code: int, member_id: str) -> dict[str, Any]:
    return {"error_code": code, "member_id": member_id, "generation_id": -1,
            "protocol_name": "", "leader": "", "members": []}
