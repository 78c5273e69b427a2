"""Token counts per price, in plain ints: a job's results, priced only when a figure is read.

Pricing each result in ``Decimal`` and adding it to five running totals (all, job, batch,
model, job's model) cost about 30 µs a result, more than the rest of a job spends on it.
A :class:`Ledger` counts a result's billed quantities instead, in the bucket of the
:class:`Rate` it is billed at (model, the price in force on its batch's day, where
inference ran, the long-prompt tier). A money figure is each rate times its counts.

Decimal products and sums are exact while they fit the context's precision (28 digits:
a total of 10^18 tokens at a six-digit rate), so the figure is the very ``Decimal`` that
adding up each result's :class:`~.costing.ResultCost` gives: the same value and the same
exponent, the one of the finest rate ever applied.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .costing import ZERO, usage_numbers
from .pricing import ModelPrice, PricingTable
from .totals import Totals

#: A bucket's counts: succeeded results, then the billed quantities.
SUCCEEDED, INPUT, WRITE_5M, WRITE_1H, READ, OUTPUT, WEB_SEARCH = range(7)
#: The day a batch was created (its ``created_at``), which dates the price.
At = Optional[dt.datetime]


class Rate:
    """One way a result can be billed: a model's per-token rates (the tier already
    chosen), the multiplier of where inference ran; ``price`` None: not in the table."""

    __slots__ = ("model", "price", "rates", "scale")

    def __init__(self, model: Optional[str], price: Optional[ModelPrice],
                 rates: Optional[Dict[str, Decimal]], scale: Decimal) -> None:
        self.model = model
        self.price = price
        self.rates = rates
        self.scale = scale

    def charges(self, counts: List[int], table: PricingTable) -> Tuple[Decimal, Decimal]:
        """``(batch, standard)`` USD of ``counts``, as :func:`.costing._charges` prices
        one result (the same expressions, counts summed)."""
        rates, scale = self.rates, self.scale
        assert rates is not None
        s_input = rates["input"] * counts[INPUT] * scale
        s_write_5m = rates["cache_write_5m"] * counts[WRITE_5M] * scale
        s_write_1h = rates["cache_write_1h"] * counts[WRITE_1H] * scale
        s_read = rates["cache_read"] * counts[READ] * scale
        s_output = rates["output"] * counts[OUTPUT] * scale
        s_search = table.web_search_per_request * counts[WEB_SEARCH]
        half = table.batch_multiplier
        b_search = s_search * half if table.web_search_batch_discount else s_search
        standard = s_input + s_write_5m + s_write_1h + s_read + s_output + s_search
        batch = (s_input * half + s_write_5m * half + s_write_1h * half + s_read * half
                 + s_output * half + b_search)
        return batch, standard


class Ledger:
    """What some results used: ``results`` in all, the not billed per model (errored,
    canceled, expired: usually no model), and the billed counts per :class:`Rate`.

    Every result added adds one to ``results``: the priced figures are remembered until
    it moves.
    """

    __slots__ = ("_priced", "counts", "not_billed", "results")

    def __init__(self) -> None:
        self.results = 0
        self.not_billed: Dict[Optional[str], int] = {}
        self.counts: Dict[Rate, List[int]] = {}
        self._priced: Tuple[int, Decimal, Decimal] = (0, ZERO, ZERO)

    def add_not_billed(self, model: Optional[str]) -> None:
        self.results += 1
        self.not_billed[model] = self.not_billed.get(model, 0) + 1

    def add(self, rate: Rate, counts: Tuple[int, int, int, int, int, int]) -> None:
        """One succeeded result billed at ``rate``; ``counts`` as :func:`usage_numbers`."""
        self.results += 1
        bucket = self.counts.get(rate)
        if bucket is None:
            bucket = self.counts[rate] = [0, 0, 0, 0, 0, 0, 0]
        bucket[SUCCEEDED] += 1
        bucket[INPUT] += counts[0]
        bucket[WRITE_5M] += counts[1]
        bucket[WRITE_1H] += counts[2]
        bucket[READ] += counts[3]
        bucket[OUTPUT] += counts[4]
        bucket[WEB_SEARCH] += counts[5]

    def merge(self, other: Ledger) -> None:
        """Add ``other``'s counts (a batch's, once it ended) to these."""
        self.results += other.results
        for model, count in other.not_billed.items():
            self.not_billed[model] = self.not_billed.get(model, 0) + count
        for rate, counts in other.counts.items():
            mine = self.counts.get(rate)
            if mine is None:
                self.counts[rate] = list(counts)
            else:
                for i, count in enumerate(counts):
                    mine[i] += count

    def models(self) -> Iterable[str]:
        """The models of the billed results (the not billed name none)."""
        found = {rate.model for rate in self.counts}
        found.update(self.not_billed)
        return (model for model in found if model is not None)

    def batch_usd(self, table: PricingTable) -> Decimal:
        """The batch price of the priced results (cheap to ask again: remembered)."""
        return self._sums(table)[1]

    def _sums(self, table: PricingTable) -> Tuple[int, Decimal, Decimal]:
        if self._priced[0] != self.results or not self.results:
            batch = standard = ZERO
            for rate, counts in self.counts.items():
                if rate.price is not None:
                    more_batch, more_standard = rate.charges(counts, table)
                    batch += more_batch
                    standard += more_standard
            self._priced = (self.results, batch, standard)
        return self._priced


_ANY = object()


def totals_of(ledgers: Iterable[Ledger], table: PricingTable, model: Any = _ANY) -> Totals:
    """The :class:`Totals` of these ledgers' results (only ``model``'s, if given): the
    figures ``Totals.add`` gives adding each result's cost."""
    totals = Totals()
    for ledger in ledgers:
        if model is _ANY:
            totals.results += ledger.results
            totals.not_billed += sum(ledger.not_billed.values())
            _, batch, standard = ledger._sums(table)
            totals.batch_usd += batch
            totals.standard_usd += standard
        else:
            not_billed = ledger.not_billed.get(model, 0)
            totals.results += not_billed
            totals.not_billed += not_billed
        for rate, counts in ledger.counts.items():
            if model is not _ANY:
                if rate.model != model:
                    continue
                totals.results += counts[SUCCEEDED]
                if rate.price is not None:
                    batch, standard = rate.charges(counts, table)
                    totals.batch_usd += batch
                    totals.standard_usd += standard
            totals.succeeded += counts[SUCCEEDED]
            totals.input_tokens += counts[INPUT]
            totals.cache_write_5m_tokens += counts[WRITE_5M]
            totals.cache_write_1h_tokens += counts[WRITE_1H]
            totals.cache_read_tokens += counts[READ]
            totals.output_tokens += counts[OUTPUT]
            totals.web_search_requests += counts[WEB_SEARCH]
            if rate.price is None:
                totals.unknown += counts[SUCCEEDED]
                totals.unknown_models.add(rate.model or "(no model)")
    return totals


class Rates:
    """The :class:`Rate` of each result: the catalog is asked once per model, inference
    place and batch day, not once per result."""

    def __init__(self, table: PricingTable) -> None:
        self.table = table
        self._at: Any = _ANY
        #: (model, geo) -> (rate, the long-prompt tier's threshold, the rate above it)
        self._found: Dict[Tuple[Optional[str], Optional[str]],
                          Tuple[Rate, Optional[int], Rate]] = {}
        self._interned: Dict[Tuple[Any, ...], Rate] = {}
        self._last: Tuple[Any, ...] = (_ANY, _ANY, _ANY, None)

    def rate(self, model: Optional[str], geo: Optional[str], prompt: int, at: At) -> Rate:
        """The rate of a result of ``model`` run at ``geo`` (``usage.inference_geo``, a
        string or None) with a prompt of ``prompt`` tokens, in a batch created ``at``."""
        found: Tuple[Rate, Optional[int], Rate]
        last = self._last  # a batch's results are mostly one model's, run in one place
        if model == last[0] and geo == last[1] and at == last[2]:
            found = last[3]
        else:
            if at != self._at:
                self._at, self._found = at, {}
            known = self._found.get((model, geo))
            if known is None:
                known = self._found[(model, geo)] = self._resolve(model, geo, at)
            found = known
            self._last = (model, geo, at, found)
        rate, above, longer = found
        return rate if above is None or prompt <= above else longer

    def _resolve(self, model: Optional[str], geo: Optional[str], at: At
                 ) -> Tuple[Rate, Optional[int], Rate]:
        price = self.table.lookup(model or "", at=at)
        if price is None:
            unknown = self._intern((model, None), lambda: Rate(model, None, None, Decimal(1)))
            return unknown, None, unknown
        scale = self.table.geo_multiplier(geo)
        rate = self._intern((model, price, scale, False),
                            lambda: Rate(model, price, price.rates, scale))
        tier = price.long_prompt
        if tier is None:
            return rate, None, rate
        longer = self._intern((model, price, scale, True), lambda: Rate(
            model, price, price.rates_for_prompt(tier.above + 1), scale))
        return rate, tier.above, longer

    def _intern(self, key: Tuple[Any, ...], make: Callable[[], Rate]) -> Rate:
        """One Rate per distinct price, so batches of different days share buckets."""
        found = self._interned.get(key)
        if found is None:
            found = self._interned[key] = make()
        return found


__all__ = ["At", "Ledger", "Rate", "Rates", "totals_of", "usage_numbers"]
