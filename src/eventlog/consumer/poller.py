"""Poller: the poll loop (commit, group steps, fetch, wait) and the record-by-record iterator."""

from __future__ import annotations

from collections.abc import Iterator

from ..broker import Broker
from ..group.txn_coordinator import existing_transaction_coordinator
from ..records import ConsumerRecord
from .commits import Committer
from .config import ConsumerConfig
from .fetcher import Chunk, Fetcher, RecordBuilder
from .guard import ThreadGuard
from .listener import Callbacks
from .membership import Membership
from .positions import Positions
from .stats import ConsumerStats

__all__ = ["Poller", "iteration_wait_ms"]

iteration_wait_ms = 1000  # one wait of an endless iteration (consumer_timeout_ms=None)


class Poller:
    """Runs one consumer's polls: each takes the group steps possible now, fetches, and
    waits on the log for data or a group change (``Consumer`` module docstring).

    Used by the thread holding the consumer's guard.
    """

    def __init__(self, log: Broker, config: ConsumerConfig, guard: ThreadGuard,
                 parts: tuple[Positions, Fetcher, Membership, Committer, Callbacks,
                              ConsumerStats]) -> None:
        self._log = log
        self._config = config
        self._guard = guard
        (self._positions, self._fetcher, self._membership, self._committer,
         self._callbacks, self._stats) = parts
        self._read_committed = config.isolation_level == "read_committed"
        self._waits_for_group = config.group_id is not None

    def poll_chunks(self, timeout_ms: float, limit: int, *, apply: bool,
                    build: RecordBuilder | None = None) -> list[Chunk]:
        """The poll loop, counted in the metrics (per poll: two clock reads, two sums).
        ``build``: what the records are made by instead of the fetcher's own."""
        clock = self._log.clock
        started_ms = clock.monotonic_ms()
        self._stats.last_poll_ms = started_ms
        if build is None:
            chunks = self._poll_loop(timeout_ms, limit, apply=apply)
        else:
            fetcher = self._fetcher
            previous, fetcher.build = fetcher.build, build
            try:
                chunks = self._poll_loop(timeout_ms, limit, apply=apply)
            finally:
                fetcher.build = previous
        self._stats.fetched(sum(len(c.records) for c in chunks),
                            sum(c.size_bytes for c in chunks), started_ms, clock.monotonic_ms())
        return chunks

    def _poll_loop(self, timeout_ms: float, limit: int, *, apply: bool) -> list[Chunk]:
        """The poll loop. ``apply``: move positions past what is returned."""
        log, config = self._log, self._config
        clock = log.clock
        now = clock.monotonic_ms()
        deadline = now + timeout_ms
        membership, fetcher, callbacks = self._membership, self._fetcher, self._callbacks
        if self._committer.due(now):
            membership.auto_commit()
        if self._read_committed:
            transactions = existing_transaction_coordinator(log)
            if transactions is not None:  # transactions past their timeout hold the LSO
                transactions.expire()
        out: list[Chunk] = []
        count = size = 0
        min_bytes = config.fetch_min_bytes
        min_bytes_deadline: float | None = None
        while True:
            version = log.data_version
            if not out:
                membership.coordinate()
                callbacks.raise_error()
            chunks = fetcher.fetch(limit - count)
            if apply:
                for chunk in chunks:
                    chunk.state.position = chunk.next_position
            out.extend(chunks)
            count += sum(len(c.records) for c in chunks)
            size += sum(c.size_bytes for c in chunks)
            if count >= limit or (count and (not apply or min_bytes <= 1 or size >= min_bytes)):
                return out
            now = clock.monotonic_ms()
            if count:
                if min_bytes_deadline is None:
                    min_bytes_deadline = now + config.fetch_max_wait_ms
                until = min(min_bytes_deadline, deadline)
            else:
                until = deadline
            if now >= until or self._guard.close_requested:
                return out
            wait_ms = until - now
            if not count and self._waits_for_group:
                wait_ms = min(wait_ms, config.heartbeat_interval_ms)
            log.wait_for_data(version, wait_ms)

    # ------------------------------------------------------------------ iteration

    def iterate(self) -> Iterator[ConsumerRecord]:
        """Records one by one until ``consumer_timeout_ms`` passes without one, or close.

        Holds the guard while polling, not while the caller handles a record."""
        clock = self._log.clock
        timeout = self._config.consumer_timeout_ms
        idle_since = clock.monotonic_ms()
        while not self._guard.closed:
            now = clock.monotonic_ms()
            wait = iteration_wait_ms if timeout is None else max(0.0, idle_since + timeout - now)
            with self._guard.hold():
                chunks = self.poll_chunks(wait, self._config.max_poll_records, apply=False)
            if not any(c.records for c in chunks):
                for chunk in chunks:
                    chunk.state.position = chunk.next_position
                if timeout is not None and clock.monotonic_ms() - idle_since >= timeout:
                    return
                continue
            for chunk in chunks:
                yield from self._hand_out(chunk)
            idle_since = clock.monotonic_ms()

    def _hand_out(self, chunk: Chunk) -> Iterator[ConsumerRecord]:
        """Yield a chunk's records, moving the position; stop if it was seeked or revoked."""
        st = chunk.state
        positions = self._positions  # read .assigned each time: a callback may replace it
        expected = st.position
        for record in chunk.records:
            if positions.assigned.get(st.tp) is not st or st.paused or st.position != expected:
                return
            st.position = expected = record.offset + 1
            yield record
        if positions.assigned.get(st.tp) is st and st.position == expected:
            st.position = chunk.next_position
