"""Closing the gap between sending ``create`` and recording the batch id.

The store records an intent (job, pass, batch index, request count, wall time)
before the create is sent. If the process died before the id was recorded, the
resumed job looks for a batch created around that time with that many requests,
as the core does for an ambiguous ``create``, and adopts it instead of sending
the requests again.

Unlike ``BatchClient.find_batch_created_since`` (newest match since a moment),
it bounds the window on both sides and takes the batch created closest to the
intent, since a resume may come days later; every batch id the store already
knows is excluded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Collection, Optional

from claudebatch import MessageBatch
from claudebatch.limits import ADOPTION_WINDOW_SECONDS, AMBIGUOUS_CREATE_SKEW_SECONDS


def find_created_batch(client: Any, intent_at: float, request_count: int,
                       exclude: Collection[str], *,
                       skew: float = AMBIGUOUS_CREATE_SKEW_SECONDS,
                       window: float = ADOPTION_WINDOW_SECONDS) -> Optional[MessageBatch]:
    """The batch made for an intent with no recorded id, or None if none was made.

    Among batches created between ``intent_at - skew`` and ``intent_at + window``
    with ``request_count`` requests and not in ``exclude``, the one created
    closest to the intent.
    """
    earliest = dt.datetime.fromtimestamp(intent_at - skew, dt.timezone.utc)
    latest = dt.datetime.fromtimestamp(intent_at + window, dt.timezone.utc)
    best: Optional[MessageBatch] = None
    for batch in client.list(limit=100):  # newest first
        if batch.created_at < earliest:
            break
        if batch.created_at > latest or batch.id in exclude:
            continue
        if batch.request_counts.total != request_count:
            continue
        if best is None or abs(batch.created_at.timestamp() - intent_at) < \
                abs(best.created_at.timestamp() - intent_at):
            best = batch
    return best
