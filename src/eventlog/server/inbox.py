"""Inbox: one connection's transport side, request frames received straight into the
buffer they are served from.

asyncio's StreamReader copies every received byte three times (the socket's chunk,
its own buffer, the chunk ``read()`` returns) and, past twice its limit, stops and
restarts reading (two epoll calls) for each chunk; a 1 MB produce request paid that
some 16 times. An Inbox is a BufferedProtocol: once a frame's size prefix has
arrived, the buffer is made large enough for the whole frame (above 1 MiB, in
doublings as the bytes arrive: a size prefix alone allocates nothing large) and the
socket reads into it in as few calls as the kernel allows; the serving coroutine
takes each whole frame out in one copy. The buffer is kept for the next frame (and
given back after frames over ``_keep_bytes``).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Inbox"]

_size = struct.Struct(">i")
_chunk = 1 << 16  # the room offered to the socket when no frame size is known yet
_first_room = 1 << 20  # the room a frame gets at once, before as much of it has arrived
_keep_bytes = 8 << 20  # a buffer grown past this is dropped once it is empty
# Reading stops while this much has been received and not taken, and a whole frame is
# among it (a client pipelining faster than it is served); a frame still arriving is
# always read to its end.
_high_water = 16 << 20


class Inbox(asyncio.BufferedProtocol):
    """A connection: received bytes in ``buf[start:end]``, served by the coroutine
    ``serve(inbox)`` (started when the connection is made); answers go out through
    ``write``/``drain``. Loop thread only."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 serve: Callable[[Inbox], Awaitable[None]], max_frame: int) -> None:
        self._loop = loop
        self._serve = serve
        self._max_frame = max_frame
        self.buf = bytearray(_chunk)
        self.start = 0
        self.end = 0
        self.eof = False  # the peer sent everything it will send (or the connection is lost)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task | None = None
        self._waiter: asyncio.Future | None = None
        self._drain_waiter: asyncio.Future | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._lost = False
        self.error: Exception | None = None  # why the connection was lost, if it failed

    # ------------------------------------------------------------------ protocol

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.task = self._loop.create_task(self._serve(self))

    def get_buffer(self, sizehint: int) -> memoryview:
        pending = self.end - self.start
        want = _chunk
        if pending >= 4:
            (size,) = _size.unpack_from(self.buf, self.start)
            if 0 <= size <= self._max_frame:  # else the server closes; no room needed
                # room for the rest of the frame, but never more than has arrived (or
                # 1 MiB): a size prefix alone does not make the server allocate it
                want = max(want, min(4 + size - pending, max(pending, _first_room)))
        if len(self.buf) - self.end < want:
            with memoryview(self.buf) as view:
                unserved = bytes(view[self.start:self.end])
            if len(self.buf) >= pending + want:
                # moved to the front (a same-size slice store: no resize, which a view
                # of the buffer that may still exist would forbid)
                self.buf[:pending] = unserved
            else:
                self.buf = bytearray(pending + want)
                self.buf[:pending] = unserved
            self.start, self.end = 0, pending
        return memoryview(self.buf)[self.end:]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        if (not self._reading_paused and self.end - self.start > _high_water
                and self.frame_size() is not None and self.whole_frame()):
            assert self.transport is not None
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return True  # the answers to what was received can still be written

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._lost = True
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ the server's side

    def pending(self) -> int:
        """Bytes received and not yet taken."""
        return self.end - self.start

    def frame_size(self) -> int | None:
        """The size prefix of the next frame, None before its 4 bytes arrived."""
        if self.end - self.start < 4:
            return None
        return _size.unpack_from(self.buf, self.start)[0]

    def whole_frame(self) -> bool:
        size = self.frame_size()
        return size is not None and self.end - self.start >= 4 + size

    def take(self, size: int) -> bytes:
        """The next frame's ``size`` bytes (after its prefix), as bytes; one copy."""
        at = self.start + 4
        with memoryview(self.buf) as view:
            frame = bytes(view[at:at + size])
        self.start = at + size
        if self.start == self.end:
            self.start = self.end = 0
            if len(self.buf) > _keep_bytes:
                self.buf = bytearray(_chunk)
        if self._reading_paused and self.end - self.start <= _high_water:
            assert self.transport is not None
            self._reading_paused = False
            self.transport.resume_reading()
        return frame

    async def wait(self) -> None:
        """Until more bytes arrive or the peer is done."""
        if self.eof:
            return
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        """Until the transport's write buffer is below its limit; ConnectionResetError
        once the connection is lost."""
        if self._lost:
            raise ConnectionResetError("connection lost")
        if not self._writing_paused:
            return
        self._drain_waiter = self._loop.create_future()
        await self._drain_waiter

    def get_extra_info(self, name: str) -> Any:
        assert self.transport is not None
        return self.transport.get_extra_info(name)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
