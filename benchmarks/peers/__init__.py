"""The systems eventlog is compared with: one module per peer, each offering Cases.

A peer whose package is missing yields results that say so
("skipped (not installed: pip install -e .[bench])"); it is never dropped silently.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..harness import Skip

__all__ = ["NOT_INSTALLED", "require"]

NOT_INSTALLED = "(not installed: pip install -e .[bench])"


def require(module: str) -> ModuleType:
    """Import a peer's package, or raise ``Skip`` telling how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise Skip(NOT_INSTALLED) from None
