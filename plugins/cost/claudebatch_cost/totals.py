"""Running totals of result costs: for a job, a batch, or one model.

``add`` runs for every result a job streams (several times: job, batch, model),
so it is plain attribute arithmetic, no loops.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, Set

import attrs

from .costing import ZERO, ResultCost


@attrs.define
class Totals:
    """Sums over results. ``batch_usd``/``standard_usd`` cover the priced results only;
    ``unknown`` counts billed results whose model had no price (their cost is unknown,
    and ``complete`` is False)."""

    results: int = 0
    succeeded: int = 0
    not_billed: int = 0  # errored, canceled, expired
    unknown: int = 0
    batch_usd: Decimal = ZERO
    standard_usd: Decimal = ZERO
    input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0
    unknown_models: Set[str] = attrs.field(factory=set)

    def add(self, cost: ResultCost) -> None:
        self.results += 1
        if not cost.billed:
            self.not_billed += 1
            return
        self.succeeded += 1
        usage = cost.usage
        self.input_tokens += usage.input
        self.cache_write_5m_tokens += usage.cache_write_5m
        self.cache_write_1h_tokens += usage.cache_write_1h
        self.cache_read_tokens += usage.cache_read
        self.output_tokens += usage.output
        self.web_search_requests += usage.web_search
        batch, standard = cost.batch, cost.standard
        if batch is None or standard is None:
            self.unknown += 1
            self.unknown_models.add(cost.model or "(no model)")
            return
        self.batch_usd += batch.total
        self.standard_usd += standard.total

    @property
    def tokens(self) -> Dict[str, int]:
        """Billed quantities per component (web searches counted as requests)."""
        return {"input": self.input_tokens, "cache_write_5m": self.cache_write_5m_tokens,
                "cache_write_1h": self.cache_write_1h_tokens,
                "cache_read": self.cache_read_tokens, "output": self.output_tokens,
                "web_search": self.web_search_requests}

    @property
    def saved_usd(self) -> Decimal:
        """What the batch discount saved over the standard Messages API."""
        return self.standard_usd - self.batch_usd

    @property
    def complete(self) -> bool:
        """Every billed result was priced."""
        return self.unknown == 0
