"""The built-in policies, registered as an ordinary plugin on every client.

Each is ``trylast``, so any plugin that answers the same ``firstresult`` hook
replaces it (the retry plugin does, for HTTP retries).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Optional

from ._plugins import hookimpl
from .context import CallContext
from .hookspecs import GIVE_UP
from .models import MessageBatch

if TYPE_CHECKING:
    import requests

#: Statuses worth retrying: timeouts, conflicts, rate limits, server errors, overload.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: A server's retry-after is honoured up to this many seconds.
MAX_RETRY_AFTER = 60.0

#: A create refused for a full queue (429) is tried again after the service's retry-after
#: (at most MAX_QUEUE_RETRY_AFTER), else with backoff from QUEUE_RETRY_DELAY to
#: MAX_QUEUE_RETRY_DELAY: room comes as queued requests are processed, minutes apart.
QUEUE_RETRY_DELAY = 5.0
MAX_QUEUE_RETRY_DELAY = 300.0
MAX_QUEUE_RETRY_AFTER = 3600.0

#: The first wait between status checks, for the real service; it grows by
#: POLL_BACKOFF up to ten times the first wait, capped at MAX_POLL_INTERVAL.
DEFAULT_POLL_INTERVAL = 30.0
POLL_BACKOFF = 1.5
MAX_POLL_INTERVAL = 300.0
#: Backoff exponents stop growing here: the caps are reached long before, and a
#: float power past ~1,000 overflows (a job polls for hours).
MAX_EXPONENT = 64


def is_retryable(response: Optional[requests.Response]) -> bool:
    if response is None:  # connection error or timeout
        return True
    verdict = should_retry_header(response)
    if verdict is not None:
        return verdict
    return response.status_code in RETRYABLE_STATUSES or response.status_code >= 500


def backoff_delay(attempt: int, *, initial: float = INITIAL_RETRY_DELAY,
                  maximum: float = MAX_RETRY_DELAY, jitter: float = 0.25,
                  rng: Any = random) -> float:
    """Exponential backoff with jitter that only ever shortens the wait (by up to ``jitter``)."""
    delay = min(initial * (2.0 ** min(attempt, MAX_EXPONENT)), maximum)
    return float(delay * (1.0 - jitter * rng.random()))


class DefaultPolicies:
    """HTTP retry delay and poll schedule used when no plugin answers."""

    @hookimpl(trylast=True)
    def retry_delay(self, attempt: int, response: Optional[requests.Response],
                    context: CallContext) -> Optional[float]:
        if not is_retryable(response):
            return GIVE_UP
        if response is not None:
            server = retry_after_seconds(response, context.clock.time())
            if server is not None and 0 <= server <= MAX_RETRY_AFTER:
                return server
        return backoff_delay(attempt)

    @hookimpl(trylast=True)
    def poll_delay(self, batch: MessageBatch, attempt: int, first_interval: float) -> float:
        cap = max(first_interval, min(MAX_POLL_INTERVAL, first_interval * 10))
        return float(min(first_interval * (POLL_BACKOFF ** min(attempt, MAX_EXPONENT)), cap))


def queue_retry_delay(attempt: int, retry_after: Optional[float]) -> float:
    """Seconds before a create refused for a full queue is tried again (``attempt`` from 0):
    the service's ``retry-after`` (at most an hour), else backoff."""
    if retry_after is not None and retry_after >= 0:
        return float(min(retry_after, MAX_QUEUE_RETRY_AFTER))
    return backoff_delay(attempt, initial=QUEUE_RETRY_DELAY, maximum=MAX_QUEUE_RETRY_DELAY)


def retry_after_seconds(response: requests.Response, now: float) -> Optional[float]:
    """The server's requested delay: ``retry-after-ms``, else ``retry-after`` (seconds or date)."""
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime
            try:
                return parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError):
                return None
    return None


def should_retry_header(response: requests.Response) -> Optional[bool]:
    """The server's ``x-should-retry`` verdict, or None when it gave none."""
    value = response.headers.get("x-should-retry", "").strip().lower()
    return {"true": True, "false": False}.get(value)

