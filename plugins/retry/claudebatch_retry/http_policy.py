"""The HTTP retry schedule: how often, how long apart, for which answers, within what time.

Answers the core's ``retry_delay`` hook, which the transport asks after every
failed HTTP call (a status of 400 or more, a connection error or a timeout).
The client's ``max_retries`` still caps the retries of one call: the effective
number of attempts is the smaller of ``HttpRetry.attempts`` and
``max_retries + 1``.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, FrozenSet, Iterable, Optional

from claudebatch import GIVE_UP, CallContext
from claudebatch.policies import (
    RETRYABLE_STATUSES,
    backoff_delay,
    retry_after_seconds,
    should_retry_header,
)

if TYPE_CHECKING:
    import requests

logger = logging.getLogger("claudebatch.retry")

DEFAULT_ATTEMPTS = 5  # the client's default max_retries (4) plus the first try
DEFAULT_INITIAL_DELAY = 0.5
DEFAULT_MAX_DELAY = 8.0
DEFAULT_JITTER = 0.25


def _statuses(values: Iterable[int]) -> FrozenSet[int]:
    found = frozenset(int(v) for v in values)
    bad = sorted(v for v in found if not 400 <= v <= 599)
    if bad:
        raise ValueError(f"HttpRetry.statuses must be HTTP error statuses (400-599), got {bad}")
    return found


@dataclass(frozen=True)
class HttpRetry:
    """How one HTTP call is retried.

    ``attempts``: tries of one call, the first included (1: never retry).
    ``initial_delay``: the first wait; each next one doubles, up to ``max_delay``,
    which also caps a server's ``retry-after`` hint. ``jitter``: the share by which
    a wait may be shortened at random (0: exact waits), so many clients do not
    retry in step. ``statuses``: the HTTP statuses retried (connection errors and
    timeouts too while ``connection_errors``). ``budget``: seconds after a call's
    first failure past which no retry starts (None: no limit).
    """

    attempts: int = DEFAULT_ATTEMPTS
    initial_delay: float = DEFAULT_INITIAL_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    jitter: float = DEFAULT_JITTER
    statuses: FrozenSet[int] = field(default=RETRYABLE_STATUSES)
    budget: Optional[float] = None
    connection_errors: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) \
                or self.attempts < 1:
            raise ValueError(f"HttpRetry.attempts must be an integer >= 1, got {self.attempts!r}")
        if not 0 <= self.initial_delay <= self.max_delay:
            raise ValueError("HttpRetry needs 0 <= initial_delay <= max_delay, got "
                             f"{self.initial_delay!r} and {self.max_delay!r}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"HttpRetry.jitter must be between 0 and 1, got {self.jitter!r}")
        if self.budget is not None and self.budget < 0:
            raise ValueError(f"HttpRetry.budget must be >= 0 seconds, got {self.budget!r}")
        object.__setattr__(self, "statuses", _statuses(self.statuses))

    @property
    def retries(self) -> int:
        """Retries after the first try."""
        return self.attempts - 1


class HttpRetrySchedule:
    """Turns an :class:`HttpRetry` into answers for ``retry_delay``.

    Keeps, per thread and client, when the current call first failed (for the
    budget); a thread runs one call at a time, so that is the call being retried.
    """

    def __init__(self, config: HttpRetry, rng: Optional[random.Random] = None) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._local = threading.local()
        self._warned: set[int] = set()

    def delay(self, attempt: int, response: Optional[requests.Response],
              error: Optional[BaseException], context: CallContext) -> float:
        """Seconds to wait before retry number ``attempt + 1``, or ``GIVE_UP``."""
        cfg = self.config
        clock = context.clock
        now = clock.monotonic()
        first_failures: Dict[int, float] = self._local.__dict__.setdefault("first", {})
        if attempt == 0:
            first_failures[id(context)] = now
            self._warn_if_capped(context)
        started = first_failures.get(id(context), now)

        if attempt + 1 >= cfg.attempts:
            return GIVE_UP
        server_delay: Optional[float] = None
        if response is None:
            if not cfg.connection_errors:
                return GIVE_UP
        else:
            verdict = should_retry_header(response)
            if verdict is False:
                return GIVE_UP
            if verdict is None and response.status_code not in cfg.statuses:
                return GIVE_UP
            server_delay = retry_after_seconds(response, clock.time())

        wait = backoff_delay(attempt, initial=cfg.initial_delay, maximum=cfg.max_delay,
                             jitter=cfg.jitter, rng=self._rng)
        if server_delay is not None and server_delay >= 0:
            wait = min(max(wait, server_delay), cfg.max_delay)
        if cfg.budget is not None and (now - started) + wait > cfg.budget:
            return GIVE_UP
        return float(wait)

    def _warn_if_capped(self, context: CallContext) -> None:
        """Say once per client when its max_retries allows fewer attempts than configured."""
        max_retries = context.client.max_retries
        if id(context) in self._warned:
            return
        self._warned.add(id(context))
        if max_retries < self.config.retries:
            logger.warning(
                "HttpRetry(attempts=%d) is capped by the client's max_retries=%d: at most %d "
                "attempts per call; pass BatchClient(max_retries=%d) for all of them",
                self.config.attempts, max_retries, max_retries + 1, self.config.retries)
