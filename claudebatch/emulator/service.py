"""The six operations of the Message Batches API, over the store, free of HTTP."""

from __future__ import annotations

import dataclasses
import threading
from typing import (
    Any,
    Collection,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from ..limits import MAX_BATCH_BYTES
from .cache import PromptCache
from .catalog import Catalog
from .clock import Now
from .errors import invalid, not_found
from .ids import IdFactory
from .ingest import IngestSettings, count_requests, ingest
from .queue import ProcessingQueue
from .responder import Responder
from .results import iter_lines
from .store import Store
from .validation import Dialect

COUNTS_MODES = ("progressive", "at_end")


@dataclasses.dataclass(frozen=True)
class Settings:
    seed: object = 0
    rate: float = 500.0
    expiry: float = 24 * 3600.0
    cancel_delay: float = 1.0
    retention: float = 29 * 24 * 3600.0
    counts: str = "progressive"
    cache_hit_rate: float = 1.0
    cache_latency: float = 0.0
    cache_min_tokens: Optional[int] = None
    answer_tokens: Tuple[int, int] = (16, 400)
    pause_rate: float = 0.0
    refusal_rate: float = 0.0
    models: Optional[Collection[str]] = None
    max_body_bytes: int = MAX_BATCH_BYTES
    max_requests: int = 100_000
    #: Batch requests the processing queue may hold (None: no limit).
    queue_limit: Optional[int] = None

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be positive (math.inf: requests finish at once)")
        if self.expiry <= 0 or self.cancel_delay < 0 or self.retention <= 0:
            raise ValueError("expiry and retention must be positive, cancel_delay >= 0")
        if self.counts not in COUNTS_MODES:
            raise ValueError(f"counts must be one of {COUNTS_MODES}")
        for name in ("cache_hit_rate", "pause_rate", "refusal_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        low, high = self.answer_tokens
        if low < 1 or high < low:
            raise ValueError("answer_tokens must be (low, high) with 1 <= low <= high")
        if not self.cache_latency >= 0:
            raise ValueError("cache_latency must be >= 0 seconds")
        if self.max_requests < 1 or self.max_body_bytes < 1:
            raise ValueError("max_requests and max_body_bytes must be positive")
        if self.queue_limit is not None and self.queue_limit < 1:
            raise ValueError("queue_limit must be at least 1 (None: no limit)")


class BatchService:
    def __init__(self, settings: Settings, now: Now, spool_dir: str) -> None:
        self.settings = settings
        self.now = now
        self.catalog = Catalog(settings.models, settings.cache_min_tokens)
        self.cache = PromptCache(settings.cache_hit_rate)
        self.responder = Responder(settings.seed, settings.answer_tokens,
                                   pause_rate=settings.pause_rate,
                                   refusal_rate=settings.refusal_rate)
        self.store = Store()
        self.ids = IdFactory(settings.seed)
        self._ingest = IngestSettings(
            catalog=self.catalog,
            cache=self.cache,
            seed=settings.seed,
            max_requests=settings.max_requests,
            rate=settings.rate,
            expiry=settings.expiry,
            cancel_delay=settings.cancel_delay,
            retention=settings.retention,
            progressive=settings.counts == "progressive",
            spool_dir=spool_dir,
            cache_latency=settings.cache_latency,
        )
        self._lock = threading.Lock()
        self.batch_ids: List[str] = []
        self.queue = ProcessingQueue(settings.queue_limit, now)

    @property
    def batches_created(self) -> int:
        return len(self.batch_ids)

    def create(self, body_path: str, *, dialect: Dialect, errored_rate: float,
               answer_faults: Tuple[float, ...] = (),
               base_url: str) -> Dict[str, Any]:
        size = count_requests(body_path, self.settings.max_requests)
        with self.queue.admit(size):  # a full queue refuses it before anything is made
            batch_id = self.ids.batch_id()
            seq = self.store.next_seq()
            created = self.now()
            record = ingest(body_path, batch_id=batch_id, seq=seq, created_at=created,
                            dialect=dialect, errored_rate=errored_rate, settings=self._ingest,
                            size=size)
            record.answer_faults = answer_faults
            self.store.add(record)
            self.queue.add(record)
        with self._lock:
            self.batch_ids.append(batch_id)
        return record.to_json(created, base_url)

    def retrieve(self, batch_id: str, base_url: str) -> Dict[str, Any]:
        return self.store.get(batch_id).to_json(self.now(), base_url)

    def list(self, query: Mapping[str, Sequence[str]], base_url: str) -> Dict[str, Any]:
        limit = _limit(query.get("limit"))
        before = _one(query, "before_id")
        after = _one(query, "after_id")
        if before is not None and after is not None:
            raise invalid("before_id and after_id cannot be used together")
        records, has_more = self.store.page(limit, before, after)
        now = self.now()
        data = [r.to_json(now, base_url) for r in records]
        return {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def cancel(self, batch_id: str, base_url: str) -> Dict[str, Any]:
        now = self.now()
        return self.store.cancel(batch_id, now).to_json(now, base_url)

    def delete(self, batch_id: str) -> Dict[str, Any]:
        self.store.delete(batch_id, self.now())
        return {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str) -> Tuple[int, Iterator[bytes]]:
        """(number of lines, the lines) of an ended batch's results."""
        record = self.store.get(batch_id)
        view = record.view(self.now())
        if view.status != "ended":
            raise invalid(
                f"Message Batch {batch_id} has not finished processing (processing_status: "
                f"{view.status}); its results are available once it has ended."
            )
        if view.archived_at is not None:
            raise not_found(f"The results of Message Batch {batch_id} have been archived.")
        return record.size, iter_lines(record, view, self.responder, self.catalog)

    def close(self) -> None:
        self.store.close()


def _one(query: Mapping[str, Sequence[str]], name: str) -> Optional[str]:
    values = query.get(name)
    return values[-1] if values else None


def _limit(values: Optional[Sequence[str]]) -> int:
    if not values:
        return 20
    try:
        limit = int(values[-1])
    except ValueError:
        raise invalid("limit: Input should be a valid integer") from None
    if limit < 1:
        raise invalid("limit: Input should be greater than or equal to 1")
    if limit > 1000:
        raise invalid("limit: Input should be less than or equal to 1000")
    return limit


