"""The log on a failing disk, against a plain model (hypothesis stateful testing).

Appends, reads, rolls (small segments), compaction and reopenings run in random
order on a data directory whose file-system calls go through
``eventlog.testing.FaultyFiles``; before a step, a fault may be planned for one of
the calls that step makes (ENOSPC or EIO from open, pwrite, fallocate, ftruncate,
fsync, msync, mmap, mremap, rename or unlink, after a few calls go through). After
every step:

- a step raised nothing but a ``StorageError`` (an ``OSError`` with the errno);
- a failed append changed nothing: the plain topic holds exactly the acknowledged
  records, in order, at their offsets; a failed compaction lost no latest value;
- after a failed fsync the partition refuses writes (``fsync_error``) until the
  log is reopened;
- after a reopen (with no faults), every acknowledged record reads back and
  nothing unacknowledged is visible.

``FAULT_MACHINE_EXAMPLES`` sets the number of examples (CI: the default below).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import eventlog
from budget import examples
from eventlog.errors import StorageError
from eventlog.testing import FaultyFiles, ManualClock

START_MS = 1_700_000_000_000
KEYS = [b"a", b"b", b"c", b"d"]
OPERATIONS = ["open", "pwrite", "allocate", "ftruncate", "fsync", "msync", "mmap", "resize",
              "replace", "rename", "unlink"]

_fault = st.none() | st.tuples(
    st.sampled_from(OPERATIONS), st.sampled_from([errno.ENOSPC, errno.EIO]),
    st.integers(0, 3),
)
_values = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4) | st.builds(
    lambda n: [b"L" * n], st.integers(65_000, 140_000)  # past a map's first chunk: it grows
)


class FaultMachine(RuleBasedStateMachine):
    @initialize(fsync=st.sampled_from(["never", "always"]))
    def open_log(self, fsync: str) -> None:
        self.directory = tempfile.mkdtemp(prefix="fault-machine-")
        self.fsync = fsync
        self.clock = ManualClock(START_MS)
        self.files = FaultyFiles()
        self.log: eventlog.EventLog | None = self._open()
        assert self.log is not None
        self.log.create_topic("plain", segment_bytes=600, index_interval_bytes=64)
        self.log.create_topic("compact", segment_bytes=600, index_interval_bytes=64,
                              cleanup_policy="compact", min_cleanable_dirty_ratio=0.0,
                              min_compaction_lag_ms=0, delete_retention_ms=0)
        self.plain: list[bytes] = []  # acknowledged values of "plain", offset = index
        self.compact: dict[int, tuple[bytes, bytes]] = {}  # offset -> (key, value)
        self.compact_end = 0

    def teardown(self) -> None:
        self.files.clear()
        if self.log is not None:
            try:
                self.log.close()
            except StorageError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)

    def _open(self) -> eventlog.EventLog:
        return eventlog.open(self.directory, files=self.files, clock=self.clock,
                             fsync=self.fsync)

    def _plan(self, fault: tuple[str, int, int] | None) -> None:
        for operation, _path, code in self.files.injected:  # --hypothesis-show-statistics
            event(f"injected {operation} {errno.errorcode[code]}")
        self.files.injected.clear()
        if fault is not None:
            operation, code, after = fault
            self.files.fail(operation, code, after=after)

    def _failed(self, exc: BaseException) -> None:
        """Only a StorageError, carrying the errno, may come out of a step."""
        assert isinstance(exc, StorageError), f"not a StorageError: {exc!r}"
        assert isinstance(exc, OSError) and exc.errno is not None, exc

    def _refusing(self, topic: str) -> bool:
        assert self.log is not None
        return self.log.partition(topic, 0).fsync_error is not None

    # ------------------------------------------------------------------ steps

    @precondition(lambda self: self.log is not None)
    @rule(values=_values, fault=_fault)
    def append_plain(self, values: list[bytes], fault: tuple[str, int, int] | None) -> None:
        assert self.log is not None
        p = self.log.partition("plain", 0)
        self._plan(fault)
        try:
            first = p.append([(None, v) for v in values])
        except Exception as exc:
            self._failed(exc)
        else:
            assert first == len(self.plain)
            self.plain.extend(values)
        finally:
            self.files.clear()
        if self._refusing("plain"):
            try:
                p.append([(None, b"refused?")])
            except StorageError:
                pass
            else:
                raise AssertionError("the log took a write after a failed fsync")

    @precondition(lambda self: self.log is not None)
    @rule(rows=st.lists(st.tuples(st.sampled_from(KEYS), st.binary(min_size=1, max_size=200)),
                        min_size=1, max_size=3), fault=_fault)
    def append_compact(self, rows: list[tuple[bytes, bytes]],
                       fault: tuple[str, int, int] | None) -> None:
        assert self.log is not None
        p = self.log.partition("compact", 0)
        self._plan(fault)
        try:
            first = p.append(rows)
        except Exception as exc:
            self._failed(exc)
        else:
            assert first == self.compact_end
            for i, row in enumerate(rows):
                self.compact[first + i] = row
            self.compact_end = first + len(rows)
        finally:
            self.files.clear()

    @precondition(lambda self: self.log is not None)
    @rule(fault=_fault)
    def compaction(self, fault: tuple[str, int, int] | None) -> None:
        assert self.log is not None
        self._plan(fault)
        try:
            self.log.partition("compact", 0).compact()
        except Exception as exc:
            self._failed(exc)
        finally:
            self.files.clear()

    @precondition(lambda self: self.log is not None)
    @rule(fault=_fault, open_fault=_fault)
    def reopen(self, fault: tuple[str, int, int] | None,
               open_fault: tuple[str, int, int] | None) -> None:
        assert self.log is not None
        self._plan(fault)
        try:
            self.log.close()
        except Exception as exc:
            self._failed(exc)
        finally:
            self.files.clear()
        self.log = None
        self._plan(open_fault)
        try:
            self.log = self._open()
        except Exception as exc:
            self._failed(exc)
            self.files.clear()
            self.log = self._open()  # a failed open changed nothing: it opens now
        finally:
            self.files.clear()
        assert not self._refusing("plain") and not self._refusing("compact")
        self.check_everything_acknowledged_reads_back()

    @precondition(lambda self: self.log is not None)
    @rule(data=st.data())
    def read_from_anywhere(self, data: st.DataObject) -> None:
        assert self.log is not None
        if not self.plain:
            return
        offset = data.draw(st.integers(0, len(self.plain) - 1))
        got = [r.value for r in self.log.partition("plain", 0).read(offset, max_records=5)]
        assert got == self.plain[offset : offset + 5]

    # ------------------------------------------------------------------ checks

    @invariant()
    def check_everything_acknowledged_reads_back(self) -> None:
        if self.log is None:
            return
        plain = self.log.partition("plain", 0)
        assert [r.value for r in plain.iter()] == self.plain
        assert plain.end_offset == len(self.plain)
        compact = self.log.partition("compact", 0)
        seen = {r.offset: (r.key, r.value) for r in compact.iter()}
        assert compact.end_offset == self.compact_end
        for offset, row in seen.items():  # nothing that was not acknowledged
            assert self.compact.get(offset) == row, (offset, row)
        latest: dict[bytes, int] = {}
        for offset, (key, _value) in self.compact.items():
            latest[key] = max(latest.get(key, -1), offset)
        for key, offset in latest.items():  # compaction keeps every key's latest value
            assert offset in seen, f"the latest record of {key!r} (offset {offset}) is gone"


FaultMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("FAULT_MACHINE_EXAMPLES", examples(40))),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # FAULT_MACHINE_NO_SHRINK=1 reports the first failure as found (faster to debug)
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    + ([] if os.environ.get("FAULT_MACHINE_NO_SHRINK") else [Phase.shrink]),
)
test_fault_machine = FaultMachine.TestCase
