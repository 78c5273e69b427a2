"""The workspace's processing queue: batch requests not yet processed, limited as the service does.

The service rate-limits "batch requests in the processing queue" per workspace: a request
counts from its batch's create until the model has processed it (Anthropic's rate-limit
docs, Message Batches API). A create that would take the queue over the limit is refused
with 429 ``rate_limit_error`` and a ``retry-after``; the request had no effect. The peak is
kept, limited or not, so tests and benchmarks can check a client never went over.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Dict, Iterator, Optional

from .clock import Now
from .errors import ApiError
from .store import BatchRecord

#: The retry-after sent when no wait can help (a batch larger than the whole limit).
NEVER_FITS_RETRY_AFTER = 60
DOCS = "https://docs.claude.com/en/api/rate-limits"


class ProcessingQueue:
    """Admits creates while the queue has room; counts what is queued, and its peak."""

    def __init__(self, limit: Optional[int], now: Now) -> None:
        self.limit = limit
        self._now = now
        self._lock = threading.Lock()
        self._active: Dict[str, BatchRecord] = {}  # batches that may still hold requests
        self._reserved = 0  # requests of creates admitted and being ingested
        #: The most requests ever in the queue at once (at an admitted create).
        self.peak = 0
        #: Creates refused for a full queue.
        self.refused = 0

    def queued(self) -> int:
        """Batch requests in the queue now: not yet processed, in batches not ended."""
        with self._lock:
            return self._queued(self._now()) + self._reserved

    @contextlib.contextmanager
    def admit(self, size: int) -> Iterator[None]:
        """Room for a batch of ``size`` requests while it is made (call :meth:`add` inside),
        or :class:`ApiError` 429 when it would take the queue over the limit."""
        with self._lock:
            now = self._now()
            queued = self._queued(now) + self._reserved
            if self.limit is not None and queued + size > self.limit:
                self.refused += 1
                raise self._refusal(queued, size, now)
            self._reserved += size
            self.peak = max(self.peak, queued + size)
        try:
            yield
        finally:
            with self._lock:
                self._reserved -= size

    def add(self, record: BatchRecord) -> None:
        with self._lock:
            self._active[record.id] = record

    def _queued(self, now: float) -> int:
        total = 0
        for batch_id, record in list(self._active.items()):
            left = _left(record, now)
            if left is None:
                del self._active[batch_id]  # ended: it holds nothing, and never will again
            else:
                total += left
        return total

    def _refusal(self, queued: int, size: int, now: float) -> ApiError:
        assert self.limit is not None
        if size > self.limit:
            wait = NEVER_FITS_RETRY_AFTER
            why = (f"This batch alone has {size:,} requests, more than the limit of "
                   f"{self.limit:,} batch requests in the processing queue")
        else:
            wait = self._wait(size, now)
            why = (f"Number of batch requests in the processing queue would exceed your "
                   f"rate limit of {self.limit:,} ({queued:,} queued, {size:,} in this batch)")
        message = (f"{why} ({DOCS}). Please try again once queued batch requests have been "
                   "processed.")
        return ApiError("rate_limit_error", message, status=429,
                        headers={"retry-after": str(wait)})

    def _wait(self, size: int, now: float) -> int:
        """Whole seconds until the queue has room for ``size`` more (at least 1)."""
        assert self.limit is not None
        room = self.limit - size - self._reserved

        def fits(t: float) -> bool:
            return sum(_left(r, t) or 0 for r in self._active.values()) <= room

        ends = [r.end()[0] for r in self._active.values()]
        high = max([now, *ends]) + 1e-6
        if room < 0 or not fits(high):
            return 1  # others' creates hold the room: their batches are not known yet
        low = now
        for _ in range(40):
            middle = (low + high) / 2
            if fits(middle):
                high = middle
            else:
                low = middle
        return max(1, math.ceil(high - now))


def _left(record: BatchRecord, now: float) -> Optional[int]:
    """Requests of ``record`` not yet processed at ``now``; None once it has ended."""
    view = record.view(now)
    if view.status == "ended":
        return None
    return record.size - view.processed
