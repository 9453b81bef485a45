"""FramePointReads: the point read of one record (``Segment.point_at``), which from a
framed batch (storage/batch.py, "Framed records") decodes one frame, and the memory of
the CRC checks point reads make outside a segment's verified prefix.

A mixin of Segment (storage/segment.py), kept apart so each file stays one reader's
size; it uses the segment's map, index, cache token and verified prefix.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

from ..errors import CorruptLogError, OffsetOutOfRangeError
from . import batch as codec
from .batch import BatchHeader, Columns

if TYPE_CHECKING:
    from .batch_cache import BatchCache
    from .files import MappedFile
    from .index import OffsetIndex

__all__ = ["FramePointReads", "checked_batches_max"]

# Point-read CRC checks remembered per segment beyond its verified prefix (random
# reads of a reopened log: each batch is checked once, not once per read).
checked_batches_max = 4096
_framed = codec.attr_record_frames
_frame_at = codec.frame_at
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

    def _crc_checked(self, position: int, header: BatchHeader, tail: bytes | None) -> bool:
        """Whether the batch at ``position`` (above ``verified``) passes its CRC: checked
        once, then remembered (the verified prefix grows when it starts inside it;
        else ``_checked`` keeps its key, under the segment's cache token, so bytes cut
        or replaced since are never taken as checked). ``tail``: bytes [17, end) of the
        batch, or None to read them here."""
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
        checked[key] = None
        while len(checked) > checked_batches_max:
            try:
                del checked[next(iter(checked))]
            except (KeyError, RuntimeError, StopIteration):  # another reader evicted it
                break
        return True

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
            # ``_find`` inlined, each step unpacking the whole header (a log of big
            # batches has an index entry for each, so the walk is one step); anything
            # odd goes to ``_find``, which names the damage.
            size = self.size
            index = self.index
            i = bisect_right(index.firsts, offset - self.base_offset)
            position = index.seconds[i - 1] if i else 0
            buffer = self._log.buffer  # ValueError once closed, as every read of the map
            header = None
            while position + _header_bytes <= size:
                fields = _unpack_header(buffer, position)
                length = fields[1]
                magic = fields[2]
                if (magic != _magic_v2 and magic != _magic_v1) or length < _length_min:
                    break
                if fields[0] + fields[5] >= offset:
                    # codec.plausible, inlined for what it checks beyond the walk's
                    # tests (an empty compacted batch goes the long way, through _find)
                    if (fields[11] >= 1 and fields[5] >= fields[11] - 1
                            and position + length + _prefix <= size):
                        header = _new_tuple(BatchHeader, fields)
                    break
                position += length + _prefix
            if header is None:
                position, header = self._find(offset)
                if header is None:
                    return None
            if not header[4] & _framed:  # attributes
                return self._batch_found(position, header)
            cache = self.batch_cache
            if cache is not None and len(cache):  # a bulk read stopped inside it, say
                cols = cache.get(self._cache_token, position, header)
                if cols is not None:
                    cache.hits += 1
                    return header, cols
            if (position + header[1] + _prefix > self.verified
                    and not self._crc_checked(position, header, None)):
                raise CorruptLogError(
                    f"batch at byte {position} of {self._log.path or 'memory segment'} "
                    f"(offsets {header.base_offset}..{header.last_offset}) fails its CRC"
                )
            try:
                return header, _frame_at(header, buffer, position + _header_bytes,
                                         offset - header.base_offset)
            except Exception as exc:
                if self._log.closed:
                    raise ValueError("closed under the read") from exc
                raise CorruptLogError(
                    f"batch at byte {position} of {self._log.path or 'memory segment'} "
                    f"(offsets {header.base_offset}..{header.last_offset}) passes its CRC "
                    f"but cannot be decoded: {exc}"
                ) from exc
        except ValueError as exc:
            if not self._log.closed:
                raise
            raise OffsetOutOfRangeError(
                f"offset {offset} was removed (segment {self.base_offset} deleted) while reading"
            ) from exc
