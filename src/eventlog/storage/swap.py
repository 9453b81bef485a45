"""Swap recovery: completing or forgetting a cleaning that a crash interrupted.

The log cleaner (storage/cleaner.py) commits a cleaned segment by renames, as
Kafka's replaceSegments: ``<base>.*.cleaned`` files, fsynced, are renamed to
``.swap`` (index files first, the ``.log`` last: that rename is the commit
point) and the directory fsynced; then the group's other segments are deleted
(index files first) and the ``.swap`` files renamed over the originals.

``complete_swaps`` runs before a log opens (Kafka's LogLoader): it deletes every
``.cleaned`` file and every ``.swap`` index file without a ``.log.swap``,
completes every ``.log.swap`` (segments whose base offset lies inside the
swapped segment's offsets go, the ``.swap`` files take their final names), and
deletes index files left without their ``.log``. Every call goes through
``Files``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import batch as codec
from .files import Files, fsync_dir, offset_from_file_name, os_files, segment_file_name

__all__ = ["cleaned_suffix", "complete_swap", "complete_swaps", "segment_suffixes",
           "swap_suffix"]

cleaned_suffix = ".cleaned"
swap_suffix = ".swap"
segment_suffixes = (".log", ".index", ".timeindex")


def _unlink(path: str, files: Files = os_files) -> None:
    try:
        files.unlink(path)
    except FileNotFoundError:
        pass


def complete_swap(directory: str, base: int, others: Sequence[int],
                   files: Files = os_files) -> None:
    """Finish swapping ``<base>.*.swap`` in: delete the replaced segments ``others``
    (index files before the ``.log``, so a crash never leaves an index without its
    log), then rename the ``.swap`` files over the originals, the ``.log`` last."""
    for other in others:
        for suffix in (".index", ".timeindex", ".log"):
            _unlink(os.path.join(directory, segment_file_name(other, suffix)), files)
    for suffix in (".index", ".timeindex", ".log"):
        swap = os.path.join(directory, segment_file_name(base, suffix) + swap_suffix)
        if files.exists(swap):  # absent: renamed before a crash (index files only)
            files.replace(swap, os.path.join(directory, segment_file_name(base, suffix)))
    fsync_dir(directory, files=files)


def _swap_end(path: str, files: Files = os_files) -> int:
    """The offset after the last batch of a ``.log.swap`` file (fsynced before the
    rename that made it a swap file, so whole)."""
    end = -1
    data = files.read_file(path)
    position = 0
    while position + codec.header_bytes <= len(data):
        header = codec.decode_header(data, position)
        if not codec.plausible(header, len(data) - position):
            break
        end = header.last_offset + 1
        position += header.total_bytes
    return end


def complete_swaps(directory: str, files: Files = os_files) -> int:
    """Recovery (Kafka's LogLoader): delete ``.cleaned`` files and uncommitted ``.swap``
    index files, complete every ``.log.swap``, and delete index files left without
    their ``.log``. Returns how many swaps it completed. Called before a log opens.
    """
    names = files.listdir(directory)
    touched = False
    for name in names:
        if name.endswith(cleaned_suffix):
            _unlink(os.path.join(directory, name), files)
            touched = True
    swaps = sorted(
        base for name in names
        if name.endswith(".log" + swap_suffix)
        and (base := offset_from_file_name(name)) is not None
    )
    for name in names:
        if name.endswith((".index" + swap_suffix, ".timeindex" + swap_suffix)) and (
            offset_from_file_name(name) not in swaps
        ):
            _unlink(os.path.join(directory, name), files)  # written, but not committed
            touched = True
    logs = sorted(
        base for name in names
        if name.endswith(".log") and (base := offset_from_file_name(name)) is not None
    )
    for base in swaps:
        end = _swap_end(os.path.join(directory, segment_file_name(base, ".log") + swap_suffix),
                        files)
        complete_swap(directory, base, [b for b in logs if base < b < end], files)
        touched = True
    remaining = {
        offset_from_file_name(name) for name in files.listdir(directory) if name.endswith(".log")
    }
    for name in files.listdir(directory):
        if name.endswith((".index", ".timeindex")) and offset_from_file_name(name) not in remaining:
            _unlink(os.path.join(directory, name), files)  # its .log was deleted before a crash
            touched = True
    if touched:
        fsync_dir(directory, files=files)
    return len(swaps)
