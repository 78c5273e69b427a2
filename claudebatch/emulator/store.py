"""Batches in memory: their fixed facts, and their state at any moment.

A batch's state is never updated by a background thread: it is a function of the
clock. Requests finish one after another at ``rate`` per second in the batch's
processing order (which is also the results order); a cancel stops processing and
the batch ends ``cancel_delay`` seconds later; the expiry window ends it with the
unprocessed requests expired. So a test that advances a manual clock sees exactly
what a client polling the real service would.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
from array import array
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple

from .cache import CacheArrays
from .errors import ApiError, invalid, not_found
from .ids import rfc3339
from .validation import Dialect

# outcome codes of a processed request, one byte per request
SUCCEEDED, INVALID, FAULT_API_ERROR, FAULT_OVERLOADED = 0, 1, 2, 3


class View(NamedTuple):
    """A batch as a client sees it at one moment."""

    status: str  # in_progress | canceling | ended
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int
    ended_at: Optional[float]
    archived_at: Optional[float]
    processed: int  # requests with a final outcome (succeeded or errored)
    tail: str  # what the unprocessed requests become: "canceled" or "expired"


@dataclass
class BatchRecord:
    id: str
    seq: int
    created_at: float
    size: int
    expires_at: float
    rate: float
    cancel_delay: float
    retention: float
    progressive: bool
    dialect: Dialect  # the headers of its create: what its requests are checked against
    spool_path: str
    offsets: array[int]  # byte offset of each request's line in the spool, by input index
    order: array[int]  # input indices in processing (= results) order
    codes: bytearray  # outcome code by input index
    errored_positions: array[int]  # positions in ``order`` whose outcome is an error
    cache: Optional[CacheArrays]
    cancel_initiated_at: Optional[float] = None
    deleted: bool = field(default=False)
    answer_faults: Tuple[float, ...] = ()  # the Faults' answer rates when it was created

    def processed_by(self, t: float) -> int:
        if t <= self.created_at:
            return 0
        if math.isinf(self.rate):
            return self.size
        return min(self.size, int((t - self.created_at) * self.rate))

    @property
    def done_at(self) -> float:
        """When the last request would finish if nothing stopped processing."""
        if math.isinf(self.rate):
            return self.created_at
        return self.created_at + self.size / self.rate

    def end(self) -> Tuple[float, int, str]:
        """(end time, requests processed by then, fate of the rest)."""
        if self.cancel_initiated_at is not None:
            return (self.cancel_initiated_at + self.cancel_delay,
                    self.processed_by(self.cancel_initiated_at), "canceled")
        if self.expires_at < self.done_at:
            return self.expires_at, self.processed_by(self.expires_at), "expired"
        return self.done_at, self.size, "expired"

    def _errored_among(self, processed: int) -> int:
        return bisect.bisect_left(self.errored_positions, processed)

    def view(self, now: float) -> View:
        end_at, final, tail = self.end()
        archived = self.created_at + self.retention
        archived_at = archived if now >= archived else None
        if now >= end_at and now > self.created_at:
            errored = self._errored_among(final)
            rest = self.size - final
            return View("ended", 0, final - errored, errored,
                        rest if tail == "canceled" else 0, rest if tail == "expired" else 0,
                        end_at, archived_at, final, tail)
        status = "in_progress"
        done = self.processed_by(now)
        if self.cancel_initiated_at is not None:
            status = "canceling"
            done = final
        if not self.progressive:
            return View(status, self.size, 0, 0, 0, 0, None, archived_at, done, tail)
        errored = self._errored_among(done)
        return View(status, self.size - done, done - errored, errored, 0, 0,
                    None, archived_at, done, tail)

    def to_json(self, now: float, base_url: str) -> Dict[str, object]:
        v = self.view(now)
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": v.status,
            "request_counts": {
                "processing": v.processing,
                "succeeded": v.succeeded,
                "errored": v.errored,
                "canceled": v.canceled,
                "expired": v.expired,
            },
            "ended_at": rfc3339(v.ended_at) if v.ended_at is not None else None,
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
            "archived_at": rfc3339(v.archived_at) if v.archived_at is not None else None,
            "cancel_initiated_at": (
                rfc3339(self.cancel_initiated_at) if self.cancel_initiated_at is not None else None
            ),
            "results_url": (
                f"{base_url}/v1/messages/batches/{self.id}/results" if v.status == "ended" else None
            ),
        }


def _unknown(batch_id: str) -> ApiError:
    return not_found(f"No message batch found with id '{batch_id}'.")


class Store:
    """Every batch made, newest last; deleted ones stay only as cursor positions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: Dict[str, BatchRecord] = {}
        self._seq: Dict[str, int] = {}  # every id ever made -> creation sequence
        self._next_seq = 0

    def next_seq(self) -> int:
        with self._lock:
            self._next_seq += 1
            return self._next_seq

    def add(self, record: BatchRecord) -> None:
        with self._lock:
            self._batches[record.id] = record
            self._seq[record.id] = record.seq

    def get(self, batch_id: str) -> BatchRecord:
        with self._lock:
            record = self._batches.get(batch_id)
        if record is None:
            raise _unknown(batch_id)
        return record

    def all(self) -> List[BatchRecord]:
        with self._lock:
            return sorted(self._batches.values(), key=lambda r: r.seq)

    def page(
        self, limit: int, before_id: Optional[str], after_id: Optional[str]
    ) -> Tuple[List[BatchRecord], bool]:
        """One page, newest first, and whether more lie in the direction asked."""
        with self._lock:
            newest_first = sorted(self._batches.values(), key=lambda r: -r.seq)
            cursor = after_id or before_id
            if cursor is not None and cursor not in self._seq:
                which = "after_id" if after_id else "before_id"
                raise invalid(f"{which}: no message batch with id '{cursor}'")
        if after_id is not None:
            s = self._seq[after_id]
            older = [r for r in newest_first if r.seq < s]
            return older[:limit], len(older) > limit
        if before_id is not None:
            s = self._seq[before_id]
            newer = [r for r in newest_first if r.seq > s]
            return newer[-limit:], len(newer) > limit
        return newest_first[:limit], len(newest_first) > limit

    def cancel(self, batch_id: str, now: float) -> BatchRecord:
        with self._lock:
            record = self._batches.get(batch_id)
            if record is None:
                raise _unknown(batch_id)
            if record.cancel_initiated_at is None and record.view(now).status == "in_progress":
                record.cancel_initiated_at = now
            return record

    def delete(self, batch_id: str, now: float) -> None:
        with self._lock:
            record = self._batches.get(batch_id)
            if record is None:
                raise _unknown(batch_id)
            status = record.view(now).status
            if status != "ended":
                raise invalid(
                    f"Message Batch {batch_id} is still processing (processing_status: "
                    f"{status}) and cannot be deleted. Cancel it first, and delete it once "
                    "it has ended."
                )
            record.deleted = True
            del self._batches[batch_id]
        try:
            os.unlink(record.spool_path)
        except OSError:
            pass

    def close(self) -> None:
        with self._lock:
            records = list(self._batches.values())
            self._batches.clear()
        for record in records:
            try:
                os.unlink(record.spool_path)
            except OSError:
                pass
