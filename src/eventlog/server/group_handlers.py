"""The consumer group handlers: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups."""

from __future__ import annotations

import logging
from typing import Any

from .. import errors
from ..group import (
    OffsetAndMetadata,
    coordinator_for,
    delete_group,
    describe_group,
    list_groups,
)
from ..group.txn_coordinator import existing_transaction_coordinator
from ..records import TopicPartition
from .common import (
    INVALID_COMMIT_OFFSET_SIZE,
    NONE,
    OFFSET_METADATA_TOO_LARGE,
    UNKNOWN_TOPIC_OR_PARTITION,
    UNSTABLE_OFFSET_COMMIT,
    HandlerBase,
)
from .groups import Errors
from .protocol import ms

__all__ = ["GroupHandlers"]

_log = logging.getLogger("eventlog.server")


class GroupHandlers(HandlerBase):
    """Wire consumer groups (server/groups.py) and their offsets (eventlog.group)."""

    async def join_group(self, header: Any, req: Any, version: int, host: str) -> Any:
        session = ms(req.session_timeout)
        rebalance = ms(getattr(req, "rebalance_timeout", req.session_timeout))
        if rebalance < 0:
            rebalance = session
        result = await self.groups.join(
            req.group_id, req.member_id, getattr(req, "group_instance_id", None),
            req.protocol_type, [(p.name, bytes(p.metadata)) for p in req.protocols],
            session, rebalance, client_id=header.client_id or "", client_host=host,
            require_member_id=version >= 4,
        )
        return result

    async def sync_group(self, header: Any, req: Any, version: int, host: str) -> Any:
        return await self.groups.sync(
            req.group_id, req.generation_id, req.member_id,
            getattr(req, "group_instance_id", None),
            {a.member_id: bytes(a.assignment) for a in req.assignments},
        )

    async def heartbeat(self, header: Any, req: Any, version: int, host: str) -> Any:
        return {"error_code": self.groups.heartbeat(
            req.group_id, req.generation_id, req.member_id,
            getattr(req, "group_instance_id", None))}

    async def leave_group(self, header: Any, req: Any, version: int, host: str) -> Any:
        if version < 3:
            return {"error_code": self.groups.leave(req.group_id, req.member_id, None)}
        members = []
        for m in req.members:
            code = self.groups.leave(req.group_id, m.member_id, m.group_instance_id)
            members.append({"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                            "error_code": code})
        return {"error_code": NONE, "members": members}

    async def offset_commit(self, header: Any, req: Any, version: int, host: str) -> Any:
        generation = getattr(req, "generation_id_or_member_epoch",
                             getattr(req, "generation_id", -1))
        code = self.groups.check_commit(req.group_id, generation, req.member_id,
                                        getattr(req, "group_instance_id", None))
        results: dict[tuple[str, int], int] = {}
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for t in req.topics:
            for p in t.partitions:
                key = (t.name, p.partition_index)
                if code:
                    results[key] = code
                    continue
                try:
                    self.log.topic(t.name).partition(p.partition_index)
                except errors.EventLogError:
                    results[key] = UNKNOWN_TOPIC_OR_PARTITION
                    continue
                if p.committed_offset < 0:
                    results[key] = INVALID_COMMIT_OFFSET_SIZE
                    continue
                offsets[TopicPartition(*key)] = OffsetAndMetadata(
                    p.committed_offset, p.committed_metadata or "")
                results[key] = NONE
        if offsets:
            try:
                coordinator_for(self.log).commit_offsets(req.group_id, "", -1, None, offsets)
            except errors.GroupError as exc:
                # An in-process group of that id has members: its commits are fenced.
                _log.info("OffsetCommit for group %s refused: %s", req.group_id, exc)
                for tp in offsets:
                    results[tp] = Errors.UNKNOWN_MEMBER_ID
            except errors.InvalidConfigError as exc:
                _log.info("OffsetCommit for group %s refused: %s", req.group_id, exc)
                for tp in offsets:
                    results[tp] = OFFSET_METADATA_TOO_LARGE
        return {"topics": [
            {"name": t.name, "partitions": [
                {"partition_index": p.partition_index,
                 "error_code": results[(t.name, p.partition_index)]}
                for p in t.partitions]}
            for t in req.topics
        ]}

    def _committed(self, group_id: str, topics: Any, stable: bool) -> list[dict[str, Any]]:
        """OffsetFetch's topics. ``stable`` (require_stable, KIP-447): a partition with
        offsets in an open transaction is answered UNSTABLE_OFFSET_COMMIT (retriable)
        rather than with the offset the transaction may replace."""
        coordinator = coordinator_for(self.log)
        transactions = existing_transaction_coordinator(self.log) if stable else None
        pending = set() if transactions is None else transactions.pending_offsets(group_id)
        if topics is None:
            wanted = [po.topic_partition for po in describe_group(self.log, group_id).offsets
                      if po.committed_offset is not None]
        else:
            wanted = [TopicPartition(t.name, i) for t in topics for i in t.partition_indexes]
        found = coordinator.committed(group_id, wanted)
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for tp in wanted:
            c = None if tp in pending else found.get(tp)
            by_topic.setdefault(tp.topic, []).append({
                "partition_index": tp.partition,
                "committed_offset": -1 if c is None else c.offset,
                "committed_leader_epoch": -1,
                "metadata": "" if c is None else c.metadata,
                "error_code": UNSTABLE_OFFSET_COMMIT if tp in pending else NONE,
            })
        if topics is not None:
            for t in topics:
                by_topic.setdefault(t.name, [])
        return [{"name": name, "partitions": parts} for name, parts in by_topic.items()]

    async def offset_fetch(self, header: Any, req: Any, version: int, host: str) -> Any:
        stable = bool(getattr(req, "require_stable", False))
        if version >= 8:
            return {"groups": [
                {"group_id": g.group_id,
                 "topics": self._committed(g.group_id, g.topics, stable),
                 "error_code": NONE}
                for g in req.groups
            ]}
        return {"topics": self._committed(req.group_id, req.topics, stable),
                "error_code": NONE}

    async def list_groups(self, header: Any, req: Any, version: int, host: str) -> Any:
        wanted = {s.lower() for s in getattr(req, "states_filter", ()) or ()}
        seen = {}
        for g in list_groups(self.log):
            seen[g.group_id] = (str(g.state), "consumer")
        for g in self.groups.groups.values():
            seen[g.group_id] = (g.state, g.protocol_type or "")
        return {"error_code": NONE, "groups": [
            {"group_id": gid, "protocol_type": kind, "group_state": state}
            for gid, (state, kind) in sorted(seen.items())
            if gid and (not wanted or state.lower() in wanted)
        ]}

    async def describe_groups(self, header: Any, req: Any, version: int, host: str) -> Any:
        out = []
        for gid in req.groups:
            g = self.groups.groups.get(gid)
            if g is not None and g.members:
                out.append({
                    "error_code": NONE, "group_id": gid, "group_state": g.state,
                    "protocol_type": g.protocol_type or "", "protocol_data": g.protocol or "",
                    "members": [
                        {"member_id": m.member_id, "group_instance_id": m.instance_id,
                         "client_id": m.client_id, "client_host": m.client_host,
                         "member_metadata": m.metadata(g.protocol),
                         "member_assignment": m.assignment}
                        for m in g.members.values()
                    ],
                })
                continue
            d = describe_group(self.log, gid)
            out.append({"error_code": NONE, "group_id": gid, "group_state": str(d.state),
                        "protocol_type": d.protocol_type, "protocol_data": d.protocol or "",
                        "members": [
                            {"member_id": m.member_id, "group_instance_id": m.instance_id,
                             "client_id": m.client_id, "client_host": "in-process",
                             "member_metadata": b"", "member_assignment": b""}
                            for m in d.members
                        ]})
        return {"groups": out}

    async def delete_groups(self, header: Any, req: Any, version: int, host: str) -> Any:
        results = []
        for gid in req.groups_names:
            g = self.groups.groups.get(gid)
            if g is not None and g.members:
                results.append({"group_id": gid, "error_code": Errors.NON_EMPTY_GROUP})
                continue
            if describe_group(self.log, gid).state.value == "Dead":
                results.append({"group_id": gid, "error_code": Errors.GROUP_ID_NOT_FOUND})
                continue
            try:
                delete_group(self.log, gid)
                self.groups.groups.pop(gid, None)
                results.append({"group_id": gid, "error_code": NONE})
            except errors.IllegalStateError:
                results.append({"group_id": gid, "error_code": Errors.NON_EMPTY_GROUP})
        return {"results": results}


