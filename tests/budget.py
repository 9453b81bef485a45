"""Example counts for property tests, relative to the hypothesis profile in use.

A test that asks for ``examples(60)`` runs 60 examples under the "dev" profile (50 by
default: what CI runs), five times fewer in the quick loop's "quick" profile and four
times more under "ci". So a test that needs more examples than the default still
shrinks with the quick loop instead of pinning its count.
"""

from __future__ import annotations

from hypothesis import settings

DEV_EXAMPLES = 50  # the "dev" profile's max_examples (tests/conftest.py)


def examples(count: int) -> int:
    """``count`` scaled by the loaded profile's max_examples over the dev profile's."""
    return max(1, count * settings.default.max_examples // DEV_EXAMPLES)
