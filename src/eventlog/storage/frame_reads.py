"""FramePointReads: the point read of one record (``Segment.point_at``), which from a
framed batch (storage/batch.py, "Framed records") decodes one frame, and the memory of
the CRC checks point reads make outside a segment's verified prefix.

A mixin of Segment (storage/segment.py), kept apart so each file stays one reader's
size; it uses the segment's map, index, cache token and verified prefix.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from ..errors import CorruptLogError, OffsetOutOfRangeError
from ..records import Record
from . import batch as codec
from .batch import BatchHeader, Columns

if TYPE_CHECKING:
    from .batch_cache import BatchCache
    from .files import MappedFile
    from .index import OffsetIndex

__all__ = ["FramePointReads", "checked_batches_max"]

# Framed point reads' CRC checks remembered per segment beyond its verified prefix
# (random reads of a reopened log: each batch is checked once, not once per read).
checked_batches_max = 1024
_framed = codec.attr_record_frames
_frame_columns = codec.frame_columns
_no_headers = ()
_unpack_header = codec.HEADER.unpack_from
_new_tuple = tuple.__new__
_header_bytes = codec.header_bytes
_prefix = codec.length_prefix_bytes
_length_min = codec.header_bytes - codec.length_prefix_bytes
_magic_v1, _magic_v2 = codec.magic_v1, codec.magic_v2


class FramePointReads:
    """``point_at`` and ``_crc_checked`` of Segment (see the module docstring)."""

    __slots__ = ()

    base_offset: int
    size: int
    verified: int
    index: OffsetIndex
    batch_cache: BatchCache | None
    _log: MappedFile
    _cache_token: int
    _checked: dict[tuple[int, int, int], None]

    if TYPE_CHECKING:
        def _find(self, offset: int) -> tuple[int, BatchHeader | None]: ...
        def _batch_found(self, position: int, header: BatchHeader
                         ) -> tuple[BatchHeader, Columns]: ...

    def _crc_checked(
        self, position: int, header: BatchHeader, tail: bytes | None, remember: bool
    ) -> bool:
        """Whether the batch at ``position`` (above ``verified``) passes its CRC: checked
        once, then remembered: the verified prefix grows when the batch starts inside
        it; else, with ``remember`` (a framed point read, which would otherwise check
        a whole batch for each frame it reads), ``_checked`` keeps its key, under the
        segment's cache token, so bytes cut or replaced since are never taken as
        checked. Bulk reads only consult ``_checked`` (they read each batch once, and
        remembering what they pass would hold memory for every batch of a long read).
        ``tail``: bytes [17, end) of the batch, or None to read them here."""
        key = (self._cache_token, position, header.crc)
        checked = self._checked
        if key in checked:
            return True
        if tail is None:
            tail = self._log.read(position + codec.crc_start, header.batch_length - 5)
        if not codec.verify_crc(tail, header):
            return False
        if position <= self.verified:  # it extends the checked prefix
            self.verified = position + header.total_bytes
            return True
        if not remember:
            return True
        checked[key] = None
        while len(checked) > checked_batches_max:
            try:
                del checked[next(iter(checked))]
            except (KeyError, RuntimeError, StopIteration):  # another reader evicted it
                break
        return True

    def _located(self, offset: int) -> tuple[int, BatchHeader | None, Any]:
        """(position, header, map) of the batch holding ``offset`` (or the first after
        it; header None past the last batch): ``_find`` inlined, each step unpacking
        the whole header (a log of big batches has an index entry for each, so the
        walk is one step); anything odd goes to ``_find``, which names the damage.
        Raises ValueError if the map is closed."""
        size = self.size
        index = self.index
        i = bisect_right(index.firsts, offset - self.base_offset)
        position = index.seconds[i - 1] if i else 0
        buffer = self._log.buffer  # ValueError once closed, as every read of the map
        while position + _header_bytes <= size:
            fields = _unpack_header(buffer, position)
            length = fields[1]
            magic = fields[2]
            if (magic != _magic_v2 and magic != _magic_v1) or length < _length_min:
                break
            if fields[0] + fields[5] >= offset:
                # codec.plausible, inlined for what it checks beyond the walk's tests
                # (an empty compacted batch goes the long way, through _find)
                if (fields[11] >= 1 and fields[5] >= fields[11] - 1
                        and position + length + _prefix <= size):
                    return position, _new_tuple(BatchHeader, fields), buffer
                break
            position += length + _prefix
        position, header = self._find(offset)
        return position, header, buffer

    def _checked_frame(
        self, position: int, header: BatchHeader, buffer: Any, offset: int
    ) -> tuple[int, tuple, tuple, tuple, tuple | None]:
        """``codec.frame_columns`` of the framed batch at ``position`` for ``offset``,
        its CRC checked first (once per process); CorruptLogError for damage, or
        ValueError if the map was closed under the read."""
        if (position + header[1] + _prefix > self.verified
                and not self._crc_checked(position, header, None, True)):
            raise CorruptLogError(
                f"batch at byte {position} of {self._log.path or 'memory segment'} "
                f"(offsets {header.base_offset}..{header.last_offset}) fails its CRC"
            )
        try:
            return _frame_columns(header, buffer, position + _header_bytes,
                                  offset - header[0])
        except Exception as exc:
            if self._log.closed:
                raise ValueError("closed under the read") from exc
            raise CorruptLogError(
                f"batch at byte {position} of {self._log.path or 'memory segment'} "
                f"(offsets {header.base_offset}..{header.last_offset}) passes its CRC "
                f"but cannot be decoded: {exc}"
            ) from exc

    def point_at(self, offset: int) -> tuple[BatchHeader, Columns] | None:
        """``batch_at`` for a read of the one record at ``offset``: from a framed batch
        (batch.py, "Framed records") only the frame holding it is decoded, and the
        Columns returned hold that frame's records only; nothing is cached then (the
        frame costs one small msgpack call). The batch's CRC is checked as for any
        read (once per process: ``verified``, ``_crc_checked``). Raises as
        ``batch_at``: CorruptLogError for a damaged batch, OffsetOutOfRangeError if the
        segment was closed under the read.
        """
        try:
            position, header, buffer = self._located(offset)
            if header is None:
                return None
            if not header[4] & _framed:  # attributes
                return self._batch_found(position, header)
            cached = self._cached(position, header)
            if cached is not None:
                return header, cached
            first, timestamps, keys, values, headers = self._checked_frame(
                position, header, buffer, offset)
            return header, _new_tuple(Columns, (range(first, first + len(values)),
                                                timestamps, keys, values, headers))
        except ValueError as exc:
            if not self._log.closed:
                raise  # a bug: every error from the bytes is CorruptLogError already
            raise self._removed(offset) from exc

    def record_at(self, offset: int) -> Record | None:
        """The record at ``offset`` if a framed batch outside the cache holds it (one
        frame decoded, as ``point_at``, the Record built from it directly); None for
        anything else (another kind of batch, a cached one, the log end): the caller
        reads through ``point_at`` then. Raises as ``point_at``."""
        try:
            position, header, buffer = self._located(offset)
            if header is None or not header[4] & _framed or offset < header[0]:
                return None
            cache = self.batch_cache
            if cache is not None and len(cache) and cache.get(
                    self._cache_token, position, header) is not None:
                return None
            first, timestamps, keys, values, headers = self._checked_frame(
                position, header, buffer, offset)
            i = offset - first
            return _new_tuple(Record, (offset, timestamps[i], keys[i], values[i],
                                       _no_headers if headers is None else headers[i]))
        except ValueError as exc:
            if not self._log.closed:
                raise  # a bug: every error from the bytes is CorruptLogError already
            raise self._removed(offset) from exc

    def _cached(self, position: int, header: BatchHeader) -> Columns | None:
        """The batch's decoded columns if the cache holds them (a hit is counted)."""
        cache = self.batch_cache
        if cache is None or not len(cache):
            return None
        cols = cache.get(self._cache_token, position, header)
        if cols is not None:
            cache.hits += 1
        return cols

    def _removed(self, offset: int) -> OffsetOutOfRangeError:
        """The error of a read whose segment was closed under it (deleted or replaced)."""
        return OffsetOutOfRangeError(
            f"offset {offset} was removed (segment {self.base_offset} deleted) while reading"
        )
