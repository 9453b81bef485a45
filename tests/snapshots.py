"""Digests of a data directory, to show that a refused call changed no file."""

from __future__ import annotations

import hashlib
import os


def snapshot(path: str | None) -> dict[str, str]:
    """Every file under ``path`` with a digest of its bytes ({} in memory)."""
    if path is None:
        return {}
    out = {}
    for root, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = hashlib.sha1(f.read()).hexdigest()
    return out
