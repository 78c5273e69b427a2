"""A pass's batches sent as the service's processing queue has room.

The service limits the batch requests waiting in a workspace's processing queue (429
``rate_limit_error`` on create past it). A job keeps at most ``max_in_flight`` of its own
requests there, counted as the service reports them (each unfinished batch's
``request_counts.processing``; the real service reports a batch's requests as processing
until the whole batch ends), and sends the next batch as earlier ones end, from inside the
one poll loop. A create refused anyway (others fill the queue) is tried again after the
service's ``retry-after`` while the job keeps polling and collecting its own batches; with
none of its own in flight it waits at most ``patience`` seconds, then gives up.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Callable, Deque, List, Optional, Sequence, Tuple

from .._pending import PendingBatch
from ..errors import QueueFullError, RateLimitError
from ..policies import queue_retry_delay
from .collect import SubmittedBatch
from .plan import PlannedBatch

if TYPE_CHECKING:
    from .run import Job

logger = logging.getLogger("claudebatch.job")

#: Creates a job sends: a planned batch and its written body -> the batch as submitted.
Create = Callable[[PlannedBatch, PendingBatch], SubmittedBatch]


def in_flight(batches: Sequence[SubmittedBatch]) -> int:
    """Requests of these batches the service still counts as waiting to be processed."""
    total = 0
    for item in batches:
        batch = item.batch
        if batch is not None and not batch.ended:
            total += batch.request_counts.processing
    return total


class SubmitQueue:
    """The batches of one pass not sent yet, sent in order as the queue has room.

    The poll loop asks :meth:`send` after every round (and at :meth:`wake_at`, the time
    a refused create may be tried again); it returns the batches it created.
    """

    def __init__(self, job: Job, items: Sequence[Tuple[PlannedBatch, PendingBatch]],
                 create: Create) -> None:
        self.job = job
        self.clock = job.clock
        self._items: Deque[Tuple[PlannedBatch, PendingBatch]] = collections.deque(items)
        self._create = create
        self._retry_at: Optional[float] = None  # monotonic: a refused create's next try
        self._refusals = 0  # in a row, for the backoff
        self._alone_since: Optional[float] = None  # refused with nothing of ours in flight

    @property
    def pending(self) -> bool:
        return bool(self._items)

    @property
    def batches(self) -> int:
        """Batches not sent yet."""
        return len(self._items)

    @property
    def requests(self) -> int:
        """Requests of the batches not sent yet."""
        return sum(plan.count for plan, _ in self._items)

    def wake_at(self) -> Optional[float]:
        """When a refused create may be tried again (``clock.monotonic()``), if later."""
        if self._items and self._retry_at is not None \
                and self._retry_at > self.clock.monotonic():
            return self._retry_at
        return None

    def send(self, waiting: Sequence[SubmittedBatch]) -> List[SubmittedBatch]:
        """Create, in order, every batch that fits now; stop at the first that does not."""
        sent: List[SubmittedBatch] = []
        while self._items:
            if self._retry_at is not None and self.clock.monotonic() < self._retry_at:
                break
            plan, pending = self._items[0]
            flying = in_flight([*waiting, *sent])
            limit = self.job.max_in_flight
            if limit and flying and flying + plan.count > limit:
                break  # an earlier batch must end first (one alone always goes)
            self._items.popleft()  # not queued while it is sent (after_submit sees so)
            try:
                item = self._create(plan, pending)
            except BaseException as exc:
                self._items.appendleft((plan, pending))
                if not isinstance(exc, RateLimitError) or exc.spend_cap:
                    raise
                self._refused(exc, plan, pending, flying)
                break
            self._retry_at, self._refusals, self._alone_since = None, 0, None
            sent.append(item)
        return sent

    def _refused(self, error: RateLimitError, plan: PlannedBatch, pending: PendingBatch,
                 flying: int) -> None:
        """Schedule the next try, or give up past the patience with nothing of ours in
        flight (then only others' batches hold the queue, for as long as they like)."""
        now = self.clock.monotonic()
        patience = self.job.queue_patience
        if flying:
            self._alone_since = None
        elif self._alone_since is None:
            self._alone_since = now
        delay = queue_retry_delay(self._refusals, error.retry_after)
        self._refusals += 1
        if self._alone_since is not None and patience is not None:
            left = self._alone_since + patience - now
            if left <= 0:
                raise QueueFullError(
                    f"job {self.job.name}: pass {self.job.pass_number} batch {plan.index} "
                    f"({plan.count:,} requests) was refused for {now - self._alone_since:.0f} s "
                    f"with none of the job's batches in flight: the service's processing "
                    f"queue stays full of other batches (last answer: {error}). Nothing of "
                    "it was made; run the job again later (a job store resumes it), or "
                    "wait longer with queue_patience / --queue-patience", error=error)
            delay = min(delay, left)
        self._retry_at = now + delay
        logger.info("job %s: pass %d batch %d (%d requests) refused, the queue is full "
                    "(%d of the job's requests in flight); trying again in %.0f s",
                    self.job.name, self.job.pass_number, plan.index, plan.count, flying,
                    delay)
        self.job.hook.on_queue_wait(requests=pending, error=error, delay=delay,
                                    context=self.job.context)
