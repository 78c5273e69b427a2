"""Fault injection: seeded rates for a whole run, and one-off faults queued at runtime.

HTTP faults hit a request before it is handled (``rate_limit`` 429, ``server_error``
500, ``overloaded`` 529: the request has no effect) or change how it is answered
(``slow``: a delay first; ``drop_results``: the results stream is cut part-way;
``drop_create``: the batch is made, then the connection is closed with no answer).
``errored`` is a per-request rate: that share of a new batch's requests come back
``errored`` with a retryable ``api_error`` or ``overloaded_error``. The answer faults
are per-request rates too, for requests that ask for JSON (``output_config.format``):
``invalid_json`` (text that does not parse), ``schema_violation`` (JSON that breaks the
schema), ``truncated`` (cut at ``max_tokens``) and ``refused`` (``stop_reason:
"refusal"``).
"""

from __future__ import annotations

import collections
import dataclasses
import random
import threading
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

ENDPOINTS = frozenset({"create", "list", "retrieve", "cancel", "delete", "results"})
STATUS_FAULTS = ("rate_limit", "server_error", "overloaded")
KINDS = frozenset({*STATUS_FAULTS, "slow", "drop_results", "drop_create"})
_ONLY_ON = {"drop_results": "results", "drop_create": "create"}
#: Per-request faults of the answers to requests asking for JSON, in the order drawn.
ANSWER_FAULTS = ("invalid_json", "schema_violation", "truncated", "refused")


@dataclasses.dataclass(frozen=True)
class Faults:
    """Rates are probabilities per HTTP request (``errored``: per batch request)."""

    rate_limit: float = 0.0
    retry_after: float = 1.0  # seconds, sent in the 429's retry-after header
    server_error: float = 0.0
    overloaded: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 1.0
    drop_results: float = 0.0
    drop_after: float = 0.5  # share of the results sent before the cut
    drop_create: float = 0.0
    errored: float = 0.0
    invalid_json: float = 0.0
    schema_violation: float = 0.0
    truncated: float = 0.0
    refused: float = 0.0
    endpoints: Optional[FrozenSet[str]] = None  # endpoints the HTTP faults may hit; None: all

    def __post_init__(self) -> None:
        for name in ("rate_limit", "server_error", "overloaded", "slow", "drop_results",
                     "drop_create", "errored", "drop_after", *ANSWER_FAULTS):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, not {value!r}")
        if self.rate_limit + self.server_error + self.overloaded > 1.0:
            raise ValueError("rate_limit + server_error + overloaded must not exceed 1")
        if sum(getattr(self, name) for name in ANSWER_FAULTS) > 1.0:
            raise ValueError(f"{' + '.join(ANSWER_FAULTS)} must not exceed 1")
        if self.retry_after < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after and slow_seconds must not be negative")
        if self.endpoints is not None:
            unknown = set(self.endpoints) - ENDPOINTS
            if unknown:
                raise ValueError(f"unknown endpoints {sorted(unknown)}; known: {sorted(ENDPOINTS)}")
            object.__setattr__(self, "endpoints", frozenset(self.endpoints))


    def answer_rates(self) -> Tuple[float, ...]:
        """The answer faults' rates, in :data:`ANSWER_FAULTS` order (kept by each batch)."""
        return tuple(getattr(self, name) for name in ANSWER_FAULTS)


@dataclasses.dataclass
class Decision:
    """What to do to one HTTP request."""

    delay: float = 0.0
    status: Optional[str] = None  # one of STATUS_FAULTS
    retry_after: float = 1.0
    drop: Optional[str] = None  # "drop_results" or "drop_create"
    drop_after: float = 0.5
    kinds: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Queued:
    kind: str
    times: int
    endpoint: Optional[str]
    params: Dict[str, Any]


class FaultPlan:
    def __init__(self, faults: Optional[Faults], seed: object) -> None:
        self._faults = faults or Faults()
        self._rng = random.Random(f"faults:{seed}")
        self._queue: List[_Queued] = []
        self._lock = threading.Lock()
        self.fired: collections.Counter[str] = collections.Counter()

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, value: Optional[Faults]) -> None:
        with self._lock:
            self._faults = value or Faults()

    def inject(self, kind: str, times: int = 1, endpoint: Optional[str] = None,
               **params: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {sorted(KINDS)}")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {sorted(ENDPOINTS)}")
        only = _ONLY_ON.get(kind)
        if only is not None and endpoint not in (None, only):
            raise ValueError(f"{kind} applies only to the {only!r} endpoint")
        allowed = {"retry_after", "seconds", "after"}
        if set(params) - allowed:
            raise ValueError(f"unknown fault parameters {sorted(set(params) - allowed)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queue.append(_Queued(kind, times, endpoint or only, params))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(q.times for q in self._queue)

    def draw(self, endpoint: str) -> Decision:
        """Decide the faults for one request to ``endpoint``: queued ones first, then
        the seeded rates. A status fault (the request has no effect) excludes a drop."""
        with self._lock:
            f = self._faults
            d = Decision(retry_after=f.retry_after, drop_after=f.drop_after)
            for q in list(self._queue):  # status and slow before drops
                if q.endpoint not in (None, endpoint) or q.kind in _ONLY_ON:
                    continue
                if (q.kind == "slow" and d.delay) or (q.kind != "slow" and d.status):
                    continue
                self._take(d, q, f)
            rated = f.endpoints is None or endpoint in f.endpoints
            if rated:
                u = self._rng.random()
                edge = 0.0
                for kind in STATUS_FAULTS:
                    edge += getattr(f, kind)
                    if u < edge and d.status is None:
                        self._apply(d, kind, {}, f)
                        break
                if f.slow and self._rng.random() < f.slow and not d.delay:
                    self._apply(d, "slow", {}, f)
            if d.status is None:
                for q in list(self._queue):
                    if q.kind in _ONLY_ON and q.endpoint == endpoint and d.drop is None:
                        self._take(d, q, f)
                for kind, only in _ONLY_ON.items():
                    rate = getattr(f, kind)
                    if rated and rate and only == endpoint and d.drop is None:
                        if self._rng.random() < rate:
                            self._apply(d, kind, {}, f)
            for kind in d.kinds:
                self.fired[kind] += 1
            return d

    def _take(self, d: Decision, q: _Queued, f: Faults) -> None:
        self._apply(d, q.kind, q.params, f)
        q.times -= 1
        if q.times == 0:
            self._queue.remove(q)

    @staticmethod
    def _apply(d: Decision, kind: str, params: Dict[str, Any], f: Faults) -> None:
        d.kinds.append(kind)
        if kind in STATUS_FAULTS:
            d.status = kind
            d.retry_after = float(params.get("retry_after", f.retry_after))
        elif kind == "slow":
            d.delay = float(params.get("seconds", f.slow_seconds))
        else:
            d.drop = kind
            d.drop_after = float(params.get("after", f.drop_after))
