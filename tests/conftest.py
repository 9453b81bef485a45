"""Shared test settings: hypothesis profiles ("dev" by default, "ci" for many examples),
and the ``clock`` fixture most unit tests take.

Select a profile with the environment variable HYPOTHESIS_PROFILE.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from eventlog.testing import ManualClock

settings.register_profile(
    "dev",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def clock() -> ManualClock:
    """A fresh manual clock (a test module may override it, e.g. without autojump)."""
    return ManualClock()
