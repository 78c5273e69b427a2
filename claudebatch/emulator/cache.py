"""Prompt-cache simulation shared by every batch of one emulator.

The service caches a prompt prefix at each ``cache_control`` breakpoint long enough
for the model (its minimum cacheable length); a later request with the same prefix,
within the TTL (which each hit refreshes), reads it instead. In batches hits are
best effort: ``hit_rate`` is the chance that an available entry is actually used.
The service works on many requests of a batch at once: with ``latency``, each
request starts that many seconds before it is done (never before its batch was
created) and reads only what was written by then, so the requests of a group
in flight together each write the prefix, as they do on the service unless a
primer wrote it first.

Outcomes are settled once, when a batch is accepted, in the order its requests will
be processed (their virtual processing times), so downloading results twice gives
the same usage figures. A canceled or expired batch's unprocessed requests still
count as having touched the cache: a simplification, documented.
"""

from __future__ import annotations

import threading
from array import array
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from .prompt import TTL_SECONDS, Breakpoint


class CacheUsage(NamedTuple):
    read: int
    write_5m: int
    write_1h: int


class Candidate(NamedTuple):
    time: float  # when the request is done: what it writes is there from then
    request: int  # its position in the batch's input
    breakpoints: Tuple[Breakpoint, ...]
    min_tokens: int
    start: float  # when it began: it reads what was written by then


class _Entry:
    __slots__ = ("alive_until", "written_at")

    def __init__(self, written_at: float, alive_until: float) -> None:
        self.written_at = written_at
        self.alive_until = alive_until

    def live(self, t: float) -> bool:
        return self.written_at <= t <= self.alive_until


class CacheArrays(NamedTuple):
    """Per-request usage for one batch, three compact arrays indexed by input index."""

    read: array[int]
    write_5m: array[int]
    write_1h: array[int]

    def get(self, index: int) -> CacheUsage:
        return CacheUsage(self.read[index], self.write_5m[index], self.write_1h[index])


class PromptCache:
    def __init__(self, hit_rate: float = 1.0) -> None:
        self.hit_rate = hit_rate
        self._entries: Dict[bytes, _Entry] = {}
        self._lock = threading.Lock()
        self.reads = 0
        self.writes = 0

    def settle(
        self, size: int, candidates: List[Candidate], coin: Callable[[int], float]
    ) -> Optional[CacheArrays]:
        """Decide every candidate's cache usage; ``coin(index)`` draws in [0, 1)."""
        if not candidates:
            return None
        out = CacheArrays(array("l", [0]) * size, array("l", [0]) * size,
                          array("l", [0]) * size)
        candidates.sort()
        with self._lock:
            if len(self._entries) > 10_000:
                self._prune(candidates[0].time)
            for cand in candidates:
                usage = self._one(cand, coin)
                if usage is not None:
                    out.read[cand.request] = usage.read
                    out.write_5m[cand.request] = usage.write_5m
                    out.write_1h[cand.request] = usage.write_1h
        return out

    def _prune(self, before: float) -> None:
        for key in [k for k, e in self._entries.items() if e.alive_until < before]:
            del self._entries[key]

    def _one(self, cand: Candidate, coin: Callable[[int], float]) -> Optional[CacheUsage]:
        eligible = [bp for bp in cand.breakpoints if bp.position >= cand.min_tokens]
        if not eligible:
            return None
        t = cand.time
        hit: Optional[int] = None
        for i in range(len(eligible) - 1, -1, -1):
            entry = self._entries.get(eligible[i].key)
            if entry is not None and entry.live(cand.start):
                hit = i
                break
        if hit is not None and coin(cand.request) >= self.hit_rate:
            hit = None  # best effort: the entry was there but this request missed it
        read = eligible[hit].position if hit is not None else 0
        writes = {"5m": 0, "1h": 0}
        previous = read
        for i, bp in enumerate(eligible):
            ttl = TTL_SECONDS[bp.ttl]
            entry = self._entries.get(bp.key)
            if hit is not None and i <= hit and entry is not None:
                entry.alive_until = max(entry.alive_until, t + ttl)  # a hit refreshes
                continue
            if bp.position > previous:
                writes[bp.ttl] += bp.position - previous
                previous = bp.position
            if entry is None or t > entry.alive_until:
                self._entries[bp.key] = _Entry(t, t + ttl)
            elif t < entry.written_at:  # another batch writes it later in virtual time
                if t + ttl >= entry.written_at:
                    entry.written_at = t
            else:
                entry.alive_until = max(entry.alive_until, t + ttl)
        if read:
            self.reads += 1
        if writes["5m"] or writes["1h"]:
            self.writes += 1
        return CacheUsage(read, writes["5m"], writes["1h"])
