"""The one poll loop: ``client.wait`` and jobs both wait through it.

Each round retrieves every batch still waited for (``on_poll`` after each), hands
the ended ones to the caller, then sleeps the ``poll_delay`` policy's answer,
never past a deadline: the caller's timeout, or a batch's ``expires_at`` plus
the grace (the service ends every batch by then; waiting longer is a bug there).
A job's :class:`Feed` sends more batches between rounds, as the service's queue
has room, and may wake the loop earlier to try a refused create again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, List, Optional, Protocol, Sequence, TypeVar

import attrs

from .errors import WaitTimeoutError
from .limits import EXPIRY_GRACE_SECONDS
from .models import MessageBatch

if TYPE_CHECKING:
    from ._client import BatchClient
    from .context import CallContext


class Watched(Protocol):
    """What the loop polls: a batch id, and where it keeps the batch's latest state."""

    @property
    def id(self) -> str: ...

    batch: Optional[MessageBatch]


@attrs.define(eq=False)
class Watch:
    """One batch being waited for; ``batch`` is its latest state."""

    id: str
    batch: Optional[MessageBatch] = None


W = TypeVar("W", bound=Watched)
#: Seconds of float error forgiven when a sleep ends at the next poll's time.
SLACK = 1e-6


class Feed(Protocol[W]):
    """Batches still to send, sent by the loop as they may go (a job's pass)."""

    @property
    def pending(self) -> bool:
        """True while batches are left to send: the loop goes on even with none waited for."""

    def send(self, waiting: Sequence[W]) -> List[W]:
        """Send what may go now, beside the batches ``waiting``; the new watches."""

    def wake_at(self) -> Optional[float]:
        """A ``clock.monotonic()`` time to be asked again before the next poll, or None."""


def poll_until_ended(client: BatchClient, watches: Sequence[W], *, context: CallContext,
                     first_interval: float, on_ended: Callable[[W], bool],
                     timeout: Optional[float] = None, label: str = "",
                     feed: Optional[Feed[W]] = None) -> None:
    """Poll until every watched batch has ended and ``on_ended`` said it is done with it.

    ``on_ended`` may answer False to keep waiting (a job swaps in another batch, such
    as the real one for a wrong adoption, under the same watch). ``feed`` sends more
    batches after each round (and when it asks to be woken); the loop ends when it has
    none left and every batch has ended.

    Raises :class:`WaitTimeoutError` (with the last state) past ``timeout`` seconds,
    or when a batch is still running an hour past its ``expires_at``.
    """
    clock = client.clock
    started = clock.monotonic()
    waiting: List[W] = list(watches)
    attempt = 0
    if feed is not None:
        waiting.extend(feed.send(waiting))
    poll_at: Optional[float] = started if waiting else None  # the next status checks
    while waiting or (feed is not None and feed.pending):
        remaining = math.inf
        polled = False
        if waiting and poll_at is not None and clock.monotonic() >= poll_at - SLACK:
            polled = True
            for watch in list(waiting):
                batch = watch.batch = client.retrieve(watch.id)
                client.hook.on_poll(batch=batch, context=context)
                if batch.ended:
                    if feed is not None:  # its room is free: the next goes before it is read
                        waiting.extend(feed.send(waiting))
                    if on_ended(watch):
                        waiting.remove(watch)
                    continue
                left = batch.expires_at.timestamp() + EXPIRY_GRACE_SECONDS - clock.time()
                if left <= 0:
                    raise _gave_up(batch, "its expiry (expires_at plus an hour)", label)
                remaining = min(remaining, left)
        if feed is not None:
            waiting.extend(feed.send(waiting))  # room may have come as batches ended
        now = clock.monotonic()
        pause = math.inf
        if not waiting:
            if feed is None or not feed.pending:
                return
            poll_at = None
        elif polled or poll_at is None:
            first = waiting[0].batch
            assert first is not None
            if timeout is not None:
                left = started + timeout - now
                if left <= 0:
                    raise _gave_up(first, f"the timeout of {timeout} s", label)
                remaining = min(remaining, left)
            delay = client.hook.poll_delay(batch=first, attempt=attempt,
                                           first_interval=first_interval, context=context)
            pause = min(float(delay), remaining)
            poll_at = now + pause
            attempt += 1
        else:
            pause = max(0.0, poll_at - now)
        asked = feed.wake_at() if feed is not None else None
        if asked is not None:
            pause = min(pause, max(0.0, asked - now))
        clock.sleep(first_interval if math.isinf(pause) else pause)


def _gave_up(batch: MessageBatch, why: str, label: str) -> WaitTimeoutError:
    counts = batch.request_counts
    return WaitTimeoutError(
        f"{label}batch {batch.id} is still {batch.processing_status} after {why} "
        f"({counts.processing} of {counts.total} requests processing)", batch=batch)
