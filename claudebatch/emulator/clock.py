"""Time for the emulator: the wall clock, or a manual one tests advance by hand.

Everything that changes with time (processing progress, expiry, cache TTLs, archival)
is computed from ``clock.time()`` when a client looks, so a test that advances a
:class:`ManualClock` sees a batch move on without sleeping.
"""

from __future__ import annotations

import datetime as dt
import threading
import time as _time
from typing import Any, Callable, List

Now = Callable[[], float]

#: 2026-01-01T00:00:00Z, where a ManualClock starts unless told otherwise.
DEFAULT_START = 1767225600.0


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return _time.time()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def monotonic(self) -> float:
        return _time.monotonic()

    def sleep(self, seconds: float) -> None:
        _time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told: ``advance(s)``, ``set(t)`` or ``sleep(s)``.

    ``sleep`` advances instead of sleeping and records the duration in ``sleeps``, so
    the same object can drive both the emulator and a client under test.
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._t = float(start)
        self._start = float(start)
        self._lock = threading.Lock()
        self.sleeps: List[float] = []

    def time(self) -> float:
        with self._lock:
            return self._t

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), dt.timezone.utc)

    def monotonic(self) -> float:
        with self._lock:
            return self._t - self._start

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._t += seconds
            return self._t

    def set(self, t: float) -> None:
        with self._lock:
            if t < self._t:
                raise ValueError("a clock does not go backwards")
            self._t = float(t)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))


def as_now(clock: Any) -> Now:
    """Accept an object with ``time()`` (epoch seconds) or ``now()`` (an aware datetime),
    or a plain callable returning epoch seconds."""
    if clock is None:
        return _time.time
    t = getattr(clock, "time", None)
    if callable(t):
        return t  # type: ignore[no-any-return]
    n = getattr(clock, "now", None)
    if callable(n):
        return lambda: float(n().timestamp())
    if callable(clock):
        return clock  # type: ignore[no-any-return]
    raise TypeError("clock must have time() or now(), or be a callable returning seconds")
