"""A public test kit: a manual clock and contract checks for your own plug-ins.

``ManualClock`` makes time-dependent behaviour (retention, linger, session
timeouts, auto-commit) deterministic without sleeping.
"""

from .clock import ManualClock

__all__ = ["ManualClock"]
