"""What a set of requests will cost at most, and what it will likely cost.

Worst case: input as estimated by :mod:`.tokens` (every cache breakpoint a
write) and every request producing its full ``max_tokens``. Expected: a
prompt prefix repeated within the job read from the cache after its first
write, and output at ``expected_output_fraction`` of ``max_tokens``. Web
searches count each web-search tool's ``max_uses`` in both; the tokens their
results add are not known in advance and are not included.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, FrozenSet, Iterable, List, NamedTuple, Optional, Set, Tuple

import attrs

from .costing import ZERO
from .pricing import PricingTable
from .tokens import (
    Approximator,
    InputSplit,
    TokenCountingEndpoint,
    loads_request,
    request_params,
    web_search_uses,
)

#: Searches assumed for a web-search tool without ``max_uses`` (it has no bound).
DEFAULT_WEB_SEARCHES = 5


@attrs.frozen
class EstimateCost:
    """An estimate in USD (batch price and standard-API price), with what it counted.

    ``unknown_requests`` had a model the table does not price: they are not in
    the amounts, and a budget cannot be checked against them.
    """

    requests: int = 0
    input_tokens: int = 0
    cache_write_tokens: int = 0  # worst case: every breakpoint written
    expected_cache_read_tokens: int = 0  # expected: repeated prefixes read
    max_output_tokens: int = 0
    web_searches: int = 0
    worst_batch_usd: Decimal = ZERO
    worst_standard_usd: Decimal = ZERO
    expected_batch_usd: Decimal = ZERO
    expected_standard_usd: Decimal = ZERO
    unknown_requests: int = 0
    unknown_models: FrozenSet[str] = frozenset()
    counted: bool = False  # input tokens from the token-counting endpoint

    def __add__(self, other: EstimateCost) -> EstimateCost:
        return EstimateCost(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            expected_cache_read_tokens=(self.expected_cache_read_tokens
                                        + other.expected_cache_read_tokens),
            max_output_tokens=self.max_output_tokens + other.max_output_tokens,
            web_searches=self.web_searches + other.web_searches,
            worst_batch_usd=self.worst_batch_usd + other.worst_batch_usd,
            worst_standard_usd=self.worst_standard_usd + other.worst_standard_usd,
            expected_batch_usd=self.expected_batch_usd + other.expected_batch_usd,
            expected_standard_usd=self.expected_standard_usd + other.expected_standard_usd,
            unknown_requests=self.unknown_requests + other.unknown_requests,
            unknown_models=self.unknown_models | other.unknown_models,
            counted=self.counted and other.counted)


#: A tally of requests (a list, added to for every request): what each position counts.
(REQUESTS, UNCACHED, WRITE_5M, WRITE_1H, MAX_OUTPUT, WEB_SEARCHES,
 EXPECTED_UNCACHED, EXPECTED_WRITE_5M, EXPECTED_WRITE_1H, EXPECTED_READ) = range(10)
_ModelTally = List[int]


class _Counted(NamedTuple):
    """A tally, read by name when it is priced."""

    requests: int
    uncached: int
    write_5m: int
    write_1h: int
    max_output: int
    web_searches: int
    expected_uncached: int
    expected_write_5m: int
    expected_write_1h: int
    expected_read: int


_UNSEEN: Any = object()

#: Requests are tallied by model, by ``inference_geo`` (its price multiplier) and by
#: whether their prompt is over the model's long-prompt tier (Haiku 5.5), if it has one.
_Key = Tuple[str, str, bool]


class Estimation:
    """One estimate in progress: ``add`` each request, then ``result``."""

    def __init__(self, estimator: Estimator, counter: Optional[TokenCountingEndpoint],
                 prefixes: Set[bytes]) -> None:
        self.estimator = estimator
        self.counter = counter
        self.prefixes = prefixes
        self.exact: Dict[_Key, _ModelTally] = {}
        self.approx: Dict[_Key, _ModelTally] = {}

    def reset(self) -> None:
        """Forget what was added (the batch's body is being written again)."""
        self.exact, self.approx = {}, {}

    def add_raw(self, data: bytes) -> None:
        """:meth:`add` for a request as the body carries it (``observe(raw=True)``): the
        body then needs no request parsed for the estimate alone."""
        self.add(loads_request(data))

    def add(self, item: Any) -> None:
        params = request_params(item)
        model = str(params.get("model") or "")
        estimator = self.estimator
        if self.counter is None:  # the approximation alone: plain ints, no objects
            uncached, write_5m, write_1h, expected_5m, expected_1h, read = \
                estimator.approximator.counts(params, self.prefixes)
            estimator._tally_counts(self.approx, model, params, uncached, write_5m, write_1h,
                                    expected_5m, expected_1h, read)
            return
        worst, expected = estimator.approximator.splits(params, self.prefixes)
        estimator._tally(self.approx, model, params, worst, expected)
        if self.counter is not None:
            total = self.counter.count(params)
            if total is not None:
                worst, expected = worst.scaled_to(total), expected.scaled_to(total)
            estimator._tally(self.exact, model, params, worst, expected)

    def result(self) -> Tuple[EstimateCost, EstimateCost]:
        """``(estimate, approximate)``, as :meth:`Estimator.estimate` answers."""
        approximate = self.estimator._price(self.approx, counted=False)
        exact = (self.estimator._price(self.exact, counted=True) if self.counter is not None
                 else approximate)
        return exact, approximate


class Estimator:
    """Estimates requests against a pricing table."""

    def __init__(self, table: PricingTable, *, expected_output_fraction: float = 0.5,
                 chars_per_token: float = 4.0, default_web_searches: int = DEFAULT_WEB_SEARCHES):
        fraction = Decimal(str(expected_output_fraction))
        if not 0 <= fraction <= 1:
            raise ValueError(f"expected_output_fraction must be in [0, 1], "
                             f"got {expected_output_fraction}")
        self.table = table
        self.expected_output_fraction = fraction
        self.approximator = Approximator(chars_per_token)
        self.default_web_searches = default_web_searches
        self._tiers: Dict[str, Optional[int]] = {}  # model -> its long-prompt threshold

    def estimate(self, requests: Iterable[Any],
                 counter: Optional[TokenCountingEndpoint] = None,
                 seen: Optional[Set[bytes]] = None) -> Tuple[EstimateCost, EstimateCost]:
        """``(estimate, approximate)``: with ``counter`` the first uses exact input
        counts; the second always uses the approximation (to compare like with like).

        ``seen`` holds the cache prefixes of earlier estimates of the same job, so a
        prefix written by an earlier batch is expected to be read in a later one.
        """
        estimation = self.start(counter, seen)
        for item in requests:
            estimation.add(item)
        return estimation.result()

    def start(self, counter: Optional[TokenCountingEndpoint] = None,
              seen: Optional[Set[bytes]] = None) -> Estimation:
        """An estimate built one request at a time (``add``), for a plugin that observes
        the requests as they are written instead of reading them again."""
        return Estimation(self, counter, set() if seen is None else seen)

    def _tally(self, tallies: Dict[_Key, _ModelTally], model: str, params: Dict[str, Any],
               worst: InputSplit, expected: InputSplit) -> None:
        assert worst.uncached == expected.uncached  # what a cached prefix changes is cached
        self._tally_counts(tallies, model, params, worst.uncached, worst.write_5m,
                           worst.write_1h, expected.write_5m, expected.write_1h, expected.read)

    def _tally_counts(self, tallies: Dict[_Key, _ModelTally], model: str,
                      params: Dict[str, Any], uncached: int, write_5m: int, write_1h: int,
                      expected_5m: int, expected_1h: int, read: int) -> None:
        geo = params.get("inference_geo")
        above = self._tiers.get(model, _UNSEEN)
        if above is _UNSEEN:
            price = self.table.lookup(model)
            tier = price.long_prompt if price is not None else None
            above = self._tiers[model] = None if tier is None else tier.above
        long_prompt = above is not None and uncached + write_5m + write_1h > above
        key = (model, geo if isinstance(geo, str) else "", long_prompt)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = [0] * 10
        tally[REQUESTS] += 1
        tally[UNCACHED] += uncached
        tally[EXPECTED_UNCACHED] += uncached
        if write_5m or write_1h or expected_5m or expected_1h or read:  # most cache nothing
            tally[WRITE_5M] += write_5m
            tally[WRITE_1H] += write_1h
            tally[EXPECTED_WRITE_5M] += expected_5m
            tally[EXPECTED_WRITE_1H] += expected_1h
            tally[EXPECTED_READ] += read
        max_tokens = params.get("max_tokens")
        if type(max_tokens) is int:
            tally[MAX_OUTPUT] += max_tokens if max_tokens > 0 else 0
        elif isinstance(max_tokens, int) and max_tokens > 0:
            tally[MAX_OUTPUT] += max_tokens
        if params.get("tools"):  # a web search is a tool
            tally[WEB_SEARCHES] += web_search_uses(params, self.default_web_searches)

    def _price(self, tallies: Dict[_Key, _ModelTally], *, counted: bool) -> EstimateCost:
        table = self.table
        total = EstimateCost(counted=counted)
        for (model, geo, long_prompt), tally in tallies.items():
            t = _Counted(*tally)
            counts = EstimateCost(
                requests=t.requests, input_tokens=t.uncached + t.write_5m + t.write_1h,
                cache_write_tokens=t.write_5m + t.write_1h, max_output_tokens=t.max_output,
                web_searches=t.web_searches, counted=counted)
            price = table.lookup(model)
            if price is None:
                total += attrs.evolve(counts, unknown_requests=t.requests,
                                      unknown_models=frozenset({model or "(no model)"}))
                continue
            tier = price.long_prompt
            rates = price.rates_for_prompt(tier.above + 1 if tier and long_prompt else 0)
            scale = table.geo_multiplier(geo)
            if scale != 1:
                rates = {name: rate * scale for name, rate in rates.items()}
            worst_input = (rates["input"] * t.uncached + rates["cache_write_5m"] * t.write_5m
                           + rates["cache_write_1h"] * t.write_1h)
            expected_input = (rates["input"] * t.expected_uncached
                              + rates["cache_write_5m"] * t.expected_write_5m
                              + rates["cache_write_1h"] * t.expected_write_1h
                              + rates["cache_read"] * t.expected_read)
            worst_output = rates["output"] * t.max_output
            expected_output = worst_output * self.expected_output_fraction
            search = table.web_search_per_request * t.web_searches
            discount = table.batch_multiplier
            search_batch = search * discount if table.web_search_batch_discount else search
            worst = worst_input + worst_output
            expected = expected_input + expected_output
            total += attrs.evolve(
                counts,
                expected_cache_read_tokens=t.expected_read,
                worst_standard_usd=worst + search,
                expected_standard_usd=expected + search,
                worst_batch_usd=worst * discount + search_batch,
                expected_batch_usd=expected * discount + search_batch)
        return total
