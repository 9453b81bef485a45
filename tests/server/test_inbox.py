"""Inbox: request frames received straight into their buffer, taken whole, in order,
whatever the chunks the socket delivers them in; reading paused and resumed around
a backlog; a lost connection seen by the writer."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog.server import inbox as inbox_module
from eventlog.server.inbox import Inbox


class _Transport:
    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0
        self.closed = False

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return None


def _inbox(max_frame: int = 1 << 30) -> tuple[Inbox, _Transport, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()

    async def serve(_inbox: Inbox) -> None:
        return None

    box = Inbox(loop, serve, max_frame)
    transport = _Transport()
    box.connection_made(transport)
    assert box.task is not None
    loop.run_until_complete(box.task)  # the serving side is driven by hand here
    return box, transport, loop


def _deliver(box: Inbox, data: bytes, sizes: list[int]) -> list[bytes]:
    """Feed ``data`` in chunks of at most the given sizes (cycled), taking every whole
    frame as soon as it is there; the frames taken."""
    taken: list[bytes] = []
    sent = 0
    i = 0
    while sent < len(data):
        room = box.get_buffer(-1)
        assert len(room) > 0
        n = min(len(room), sizes[i % len(sizes)], len(data) - sent)
        room[:n] = data[sent:sent + n]
        del room
        box.buffer_updated(n)
        sent += n
        i += 1
        while box.whole_frame():
            size = box.frame_size()
            assert size is not None
            taken.append(box.take(size))
    return taken


def _framed(frames: list[bytes]) -> bytes:
    return b"".join(struct.pack(">i", len(f)) + f for f in frames)


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(st.binary(max_size=3000), min_size=1, max_size=8),
       sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=5),
       big=st.integers(0, 200_000))
def test_frames_come_out_whole_and_in_order_whatever_the_chunks(
        frames: list[bytes], sizes: list[int], big: int) -> None:
    frames = [*frames, bytes(range(256)) * (big // 256)]  # one past the first room
    box, _t, loop = _inbox()
    try:
        assert _deliver(box, _framed(frames), sizes) == frames
        assert box.pending() == 0
    finally:
        loop.close()


def test_once_the_size_is_known_the_room_holds_the_whole_frame() -> None:
    box, _t, loop = _inbox()
    try:
        frame = b"x" * 900_000
        data = _framed([frame])
        room = box.get_buffer(-1)
        room[:10] = data[:10]
        del room
        box.buffer_updated(10)
        room = box.get_buffer(-1)
        assert len(room) >= len(data) - 10  # one read can take the rest
        room[:len(data) - 10] = data[10:]
        del room
        box.buffer_updated(len(data) - 10)
        assert box.take(len(frame)) == frame
    finally:
        loop.close()


def test_a_size_prefix_alone_allocates_no_large_frame() -> None:
    """Above 1 MiB the room grows with what has arrived (doubling), so a client that
    sends only the size prefixes of 100 MB requests makes the server allocate little;
    the frame still comes out whole."""
    box, _t, loop = _inbox()
    try:
        frame = bytes(range(256)) * 40_000  # 10 MB
        data = _framed([frame])
        room = box.get_buffer(-1)
        room[:4] = data[:4]
        del room
        box.buffer_updated(4)
        assert len(box.get_buffer(-1)) <= (1 << 20) + (1 << 16)
        assert _deliver(box, data[4:], [1 << 22]) == [frame]
    finally:
        loop.close()


def test_a_size_over_the_limit_gets_no_room_for_it() -> None:
    box, _t, loop = _inbox(max_frame=1000)
    try:
        room = box.get_buffer(-1)
        room[:4] = struct.pack(">i", 50_000_000)
        del room
        box.buffer_updated(4)
        assert len(box.get_buffer(-1)) < 1_000_000  # the server closes instead
        assert box.frame_size() == 50_000_000
    finally:
        loop.close()


def test_reading_pauses_on_a_backlog_of_whole_frames_and_resumes_when_taken(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_module, "_high_water", 1000)
    box, transport, loop = _inbox()
    try:
        frames = [b"a" * 600, b"b" * 600, b"c" * 600]
        data = _framed(frames)
        sent = 0
        while sent < len(data) and not transport.paused:
            room = box.get_buffer(-1)
            n = min(len(room), 700, len(data) - sent)
            room[:n] = data[sent:sent + n]
            del room
            box.buffer_updated(n)
            sent += n
        assert transport.paused and box.whole_frame()
        assert box.take(600) == frames[0]
        assert not transport.paused  # below the mark again
    finally:
        loop.close()


def test_a_frame_larger_than_the_mark_is_still_read_to_its_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_module, "_high_water", 1000)
    box, transport, loop = _inbox()
    try:
        frame = b"z" * 5000
        data = _framed([frame])
        sent = 0
        while sent < len(data):
            assert not transport.paused
            room = box.get_buffer(-1)
            n = min(len(room), 700, len(data) - sent)
            room[:n] = data[sent:sent + n]
            del room
            box.buffer_updated(n)
            sent += n
        assert box.take(len(frame)) == frame
    finally:
        loop.close()


def test_a_grown_buffer_is_given_back_once_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_module, "_keep_bytes", 100_000)
    box, _t, loop = _inbox()
    try:
        _deliver(box, _framed([b"q" * 300_000]), [1 << 20])
        assert len(box.buf) <= inbox_module._chunk
    finally:
        loop.close()


def test_a_lost_connection_ends_the_wait_and_fails_the_drain() -> None:
    box, _t, loop = _inbox()

    async def scenario() -> None:
        box.pause_writing()
        drained = loop.create_task(box.drain())
        waiting = loop.create_task(box.wait())
        await asyncio.sleep(0)
        box.connection_lost(ConnectionResetError("reset by peer"))
        await waiting
        with pytest.raises(ConnectionResetError):
            await drained
        with pytest.raises(ConnectionResetError):
            await box.drain()
        assert box.eof and isinstance(box.error, ConnectionResetError)

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


def test_resume_writing_releases_the_drain() -> None:
    box, _t, loop = _inbox()

    async def scenario() -> None:
        box.pause_writing()
        drained = loop.create_task(box.drain())
        await asyncio.sleep(0)
        assert not drained.done()
        box.resume_writing()
        await drained

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
