"""The wire group coordinator on a manual clock: joins, syncs, timeouts, fencing."""

from __future__ import annotations

import asyncio
from typing import Any

from eventlog.server.groups import Errors, WireGroupCoordinator
from eventlog.testing import ManualClock

PROTOCOLS = [("range", b"range-meta"), ("roundrobin", b"rr-meta")]


def coordinator(clock: ManualClock) -> WireGroupCoordinator:
    return WireGroupCoordinator(clock.monotonic_ms, min_session_timeout_ms=1000)


async def join(c: WireGroupCoordinator, member_id: str = "", *, protocols: Any = None,
               instance_id: str | None = None, session_ms: int = 10_000,
               rebalance_ms: int = 10_000, version: int = 9) -> dict[str, Any]:
    result = await c.join("g", member_id, instance_id, "consumer", protocols or PROTOCOLS,
                          session_ms, rebalance_ms, client_id="c", client_host="h",
                          require_member_id=version >= 4)
    if result["error_code"] == Errors.MEMBER_ID_REQUIRED:
        result = await c.join("g", result["member_id"], instance_id, "consumer",
                              protocols or PROTOCOLS, session_ms, rebalance_ms,
                              client_id="c", client_host="h", require_member_id=True)
    return result


def test_first_member_leads_at_once_and_gets_the_members_metadata() -> None:
    async def run() -> None:
        c = coordinator(ManualClock())
        r = await join(c)
        assert r["error_code"] == 0 and r["generation_id"] == 1
        assert r["leader"] == r["member_id"] and r["protocol_name"] == "range"
        assert [m["metadata"] for m in r["members"]] == [b"range-meta"]
        s = await c.sync("g", 1, r["member_id"], None, {r["member_id"]: b"assignment"})
        assert s == {"error_code": 0, "protocol_type": "consumer", "protocol_name": "range",
                     "assignment": b"assignment"}
        assert c.heartbeat("g", 1, r["member_id"], None) == 0
    asyncio.run(run())


def test_second_member_rebalances_and_the_leader_assigns_both() -> None:
    async def run() -> None:
        c = coordinator(ManualClock())
        a = await join(c)
        await c.sync("g", 1, a["member_id"], None, {a["member_id"]: b"all"})
        b_join = asyncio.ensure_future(join(c))
        await asyncio.sleep(0)
        for _ in range(3):
            await asyncio.sleep(0)
        assert not b_join.done()  # waits for the leader to rejoin
        assert c.heartbeat("g", 1, a["member_id"], None) == Errors.REBALANCE_IN_PROGRESS
        a2 = await join(c, a["member_id"])
        b = await b_join
        assert a2["generation_id"] == b["generation_id"] == 2
        assert len(a2["members"]) == 2 and b["members"] == []
        b_sync = asyncio.ensure_future(c.sync("g", 2, b["member_id"], None, {}))
        await asyncio.sleep(0)
        assert not b_sync.done()  # waits for the leader's assignment
        await c.sync("g", 2, a["member_id"], None,
                     {a["member_id"]: b"p0", b["member_id"]: b"p1"})
        assert (await b_sync)["assignment"] == b"p1"
    asyncio.run(run())


def test_session_timeout_on_the_log_clock_removes_a_silent_member() -> None:
    async def run() -> None:
        clock = ManualClock()
        c = coordinator(clock)
        a = await join(c, session_ms=5000)
        await c.sync("g", 1, a["member_id"], None, {})
        clock.advance(4999)
        assert c.heartbeat("g", 1, a["member_id"], None) == 0
        clock.advance(5001)
        c.sweep()
        assert c.heartbeat("g", 1, a["member_id"], None) == Errors.UNKNOWN_MEMBER_ID
        assert "g" not in c.groups or not c.groups["g"].members
    asyncio.run(run())


def test_rebalance_timeout_drops_a_member_that_does_not_rejoin() -> None:
    async def run() -> None:
        clock = ManualClock()
        c = coordinator(clock)
        a = await join(c, rebalance_ms=3000, session_ms=60_000)
        await c.sync("g", 1, a["member_id"], None, {})
        b_join = asyncio.ensure_future(join(c, rebalance_ms=3000, session_ms=60_000))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not b_join.done()
        clock.advance(3001)
        c.sweep()
        b = await b_join
        assert b["generation_id"] == 2 and b["leader"] == b["member_id"]
        assert c.heartbeat("g", 2, a["member_id"], None) == Errors.UNKNOWN_MEMBER_ID
    asyncio.run(run())


def test_commit_checks_member_and_generation() -> None:
    async def run() -> None:
        c = coordinator(ManualClock())
        assert c.check_commit("g", -1, "", None) == 0  # standalone, no members
        a = await join(c)
        assert c.check_commit("g", 1, a["member_id"], None) == Errors.REBALANCE_IN_PROGRESS
        await c.sync("g", 1, a["member_id"], None, {})
        assert c.check_commit("g", 1, a["member_id"], None) == 0
        assert c.check_commit("g", 0, a["member_id"], None) == Errors.ILLEGAL_GENERATION
        assert c.check_commit("g", 1, "stranger", None) == Errors.UNKNOWN_MEMBER_ID
        assert c.check_commit("g", -1, "", None) == Errors.ILLEGAL_GENERATION
        assert c.leave("g", a["member_id"], None) == 0
        assert c.check_commit("g", -1, "", None) == 0
    asyncio.run(run())


def test_inconsistent_protocols_and_bad_session_timeouts_are_refused() -> None:
    async def run() -> None:
        c = coordinator(ManualClock())
        await join(c)
        r = await join(c, protocols=[("cooperative-sticky", b"x")])
        assert r["error_code"] == Errors.INCONSISTENT_GROUP_PROTOCOL
        r = await join(c, session_ms=10)
        assert r["error_code"] == Errors.INVALID_SESSION_TIMEOUT
        r = await c.join("g", "never-issued", None, "consumer", PROTOCOLS, 10_000, 10_000,
                         client_id="c", client_host="h", require_member_id=True)
        assert r["error_code"] == Errors.UNKNOWN_MEMBER_ID
    asyncio.run(run())


def test_static_member_rejoining_keeps_its_place_and_fences_the_old_id() -> None:
    async def run() -> None:
        c = coordinator(ManualClock())
        a = await join(c, instance_id="pod-1")
        await c.sync("g", 1, a["member_id"], None, {a["member_id"]: b"mine"})
        again = await join(c, instance_id="pod-1")
        assert again["member_id"] != a["member_id"]
        assert c.heartbeat("g", again["generation_id"], a["member_id"], None) == \
            Errors.UNKNOWN_MEMBER_ID
        r = await c.join("g", a["member_id"], "pod-1", "consumer", PROTOCOLS, 10_000, 10_000,
                         client_id="c", client_host="h", require_member_id=True)
        assert r["error_code"] == Errors.FENCED_INSTANCE_ID
    asyncio.run(run())
