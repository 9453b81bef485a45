"""End-to-end latency: a paced sender in this thread, a receiver in another.

Each value starts with the sender's ``time.perf_counter_ns()`` (8 bytes, little
endian) and is padded to 100 bytes; the receiver subtracts it from its own clock on
arrival. Sends are paced with ``time.sleep`` (which releases the GIL, so the
receiver thread is not starved the way a busy-wait would starve it).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable

from .workloads import VALUE_BYTES

__all__ = ["RATE_PER_S", "measure", "percentiles"]

RATE_PER_S = 5_000  # paced well below every system's throughput: latency, not queueing
_STAMP = struct.Struct("<q")
_PAD = b"." * (VALUE_BYTES - _STAMP.size)


def measure(
    send: Callable[[bytes], object],
    receive: Callable[[], list[bytes]],
    count: int,
    *,
    timeout_s: float = 60.0,
) -> dict[str, float]:
    """Send ``count`` stamped values at ``RATE_PER_S``; percentiles of arrival delay."""
    delays: list[int] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + timeout_s
    receiver = threading.Thread(
        target=_receive_loop, args=(receive, delays, errors, count, deadline), daemon=True
    )
    receiver.start()
    start = time.perf_counter()
    for i in range(count):
        if errors:
            break
        send(_STAMP.pack(time.perf_counter_ns()) + _PAD)
        pause = start + (i + 1) / RATE_PER_S - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    receiver.join(max(0.0, deadline - time.monotonic()) + 1.0)
    if errors:
        raise RuntimeError(f"receiver failed: {errors[0]!r}") from errors[0]
    if len(delays) < count:
        raise RuntimeError(f"received {len(delays)} of {count} within {timeout_s:.0f} s")
    return percentiles(delays)


def _receive_loop(receive, delays, errors, count: int, deadline: float) -> None:
    unpack = _STAMP.unpack_from
    try:
        while len(delays) < count and time.monotonic() < deadline:
            for value in receive():
                if value is not None and len(value) == VALUE_BYTES:
                    delays.append(time.perf_counter_ns() - unpack(value)[0])
    except Exception as exc:  # reported by the sending thread
        errors.append(exc)


def percentiles(delays_ns: list[int]) -> dict[str, float]:
    """p50, p99 and p99.9 (nearest rank) in microseconds."""
    ranked = sorted(delays_ns)
    last = len(ranked) - 1

    def at(q: float) -> float:
        return ranked[min(last, int(q * len(ranked)))] / 1e3

    return {"p50 µs": at(0.50), "p99 µs": at(0.99), "p99.9 µs": at(0.999)}
