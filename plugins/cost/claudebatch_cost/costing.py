"""The exact cost of one result, from the usage the service reported.

Billed components: uncached input, 5-minute and 1-hour cache writes, cache
reads, output, and web searches. A batch pays ``batch_multiplier`` (0.5) of
the standard price on every token component; the web-search fee is
discounted only if the table says so. Errored, canceled and expired results
cost nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from typing import Any, Dict, Optional, Tuple, Union

import attrs

from claudebatch import BatchResult, Usage

from .pricing import ModelPrice, PricingTable

#: The usage components, in the order they are shown.
TOKEN_COMPONENTS = ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output")
COMPONENTS = (*TOKEN_COMPONENTS, "web_search")

ZERO = Decimal(0)
#: A moment a price is asked for: a datetime, a date or an ISO date.
When = Union[str, dt.date, dt.datetime]


@attrs.frozen
class UsageCounts:
    """The billable quantities of one result: tokens per component and web searches."""

    input: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    output: int = 0
    web_search: int = 0

    @classmethod
    def from_usage(cls, usage: Union[Usage, Mapping[str, Any], None]) -> UsageCounts:
        """Read a ``Usage`` (or the raw ``usage`` object of a results line).

        Without a ``cache_creation`` breakdown every cache write counts as
        5-minute; creation tokens the breakdown does not account for count as
        5-minute too.
        """
        return cls(*usage_numbers(usage))

    def as_dict(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name in COMPONENTS}


def usage_numbers(usage: Union[Usage, Mapping[str, Any], None]
                  ) -> Tuple[int, int, int, int, int, int]:
    """The billable quantities of a usage, in :data:`COMPONENTS` order: what
    :meth:`UsageCounts.from_usage` reads, as a plain tuple (the per-result path)."""
    if usage is None:
        return (0, 0, 0, 0, 0, 0)
    if type(usage) is dict:
        return _dict_numbers(usage)
    if type(usage) is Usage:
        return _numbers(usage.input_tokens, usage.cache_creation_input_tokens,
                        usage.cache_creation, usage.cache_read_input_tokens,
                        usage.output_tokens, usage.server_tool_use)
    get = partial(_get, usage)  # a Mapping, or a Usage subclass
    return _numbers(get("input_tokens"), get("cache_creation_input_tokens"),
                    get("cache_creation"), get("cache_read_input_tokens"),
                    get("output_tokens"), get("server_tool_use"))


def _dict_numbers(usage: Dict[str, Any]) -> Tuple[int, int, int, int, int, int]:
    """:func:`_numbers` of a raw usage (a results line's), spelled out: it runs for
    every result a job streams. A count is taken as it is when it is a plain int >= 0."""
    get = usage.get
    input_tokens, created = get("input_tokens"), get("cache_creation_input_tokens")
    read, output = get("cache_read_input_tokens"), get("output_tokens")
    if type(input_tokens) is not int or input_tokens < 0:
        input_tokens = _int(input_tokens)
    if type(created) is not int or created < 0:
        created = _int(created)
    if type(read) is not int or read < 0:
        read = _int(read)
    if type(output) is not int or output < 0:
        output = _int(output)
    breakdown, tools = get("cache_creation"), get("server_tool_use")
    five: Any
    write_1h: Any
    if breakdown is None:
        write_5m, write_1h = created, 0
    elif type(breakdown) is dict:
        five = breakdown.get("ephemeral_5m_input_tokens")
        write_1h = breakdown.get("ephemeral_1h_input_tokens")
        if type(five) is not int or five < 0:
            five = _int(five)
        if type(write_1h) is not int or write_1h < 0:
            write_1h = _int(write_1h)
        rest = created - five - write_1h
        write_5m = five + rest if rest > 0 else five
    else:
        return _numbers(input_tokens, created, breakdown, read, output, tools)
    if tools is None:
        return (input_tokens, write_5m, write_1h, read, output, 0)
    return (input_tokens, write_5m, write_1h, read, output,
            _int(_get(tools, "web_search_requests")))


def _numbers(input_tokens: Any, created: Any, breakdown: Any, read: Any, output: Any,
             tools: Any) -> Tuple[int, int, int, int, int, int]:
    """Without a ``cache_creation`` breakdown every cache write counts as 5-minute;
    creation tokens the breakdown does not account for count as 5-minute too."""
    write_5m = created = _int(created)
    write_1h = 0
    if breakdown is not None:
        five = _int(_get(breakdown, "ephemeral_5m_input_tokens"))
        write_1h = _int(_get(breakdown, "ephemeral_1h_input_tokens"))
        write_5m = five + max(0, created - five - write_1h)
    searches = 0 if tools is None else _int(_get(tools, "web_search_requests"))
    return (_int(input_tokens), write_5m, write_1h, _int(read), _int(output), searches)


def _get(value: Any, name: str) -> Any:
    """A field of an API object, raw (dict) or parsed (attrs)."""
    if isinstance(value, dict):
        return value.get(name)
    found = getattr(value, name, _MISSING)
    if found is not _MISSING:
        return found
    return value.get(name) if isinstance(value, Mapping) else None


_MISSING = object()


def _int(value: Any) -> int:
    if type(value) is int:  # what JSON and the typed usage hold: the common case first
        return value if value > 0 else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@attrs.frozen
class Charges:
    """USD per component, and their sum."""

    input: Decimal = ZERO
    cache_write_5m: Decimal = ZERO
    cache_write_1h: Decimal = ZERO
    cache_read: Decimal = ZERO
    output: Decimal = ZERO
    web_search: Decimal = ZERO
    total: Decimal = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "total", self.input + self.cache_write_5m + self.cache_write_1h
                           + self.cache_read + self.output + self.web_search)

    def as_dict(self) -> Dict[str, Decimal]:
        return {name: getattr(self, name) for name in COMPONENTS}


@attrs.frozen
class ResultCost:
    """What one result cost through the batch, and what it would have cost through the
    standard Messages API. ``batch``/``standard`` are None when the model is not in the
    pricing table (``known`` is False): an unknown cost, never a zero."""

    custom_id: str
    result_type: str
    model: Optional[str]
    usage: UsageCounts
    batch: Optional[Charges]
    standard: Optional[Charges]
    priced_as: Optional[str] = None  # the table entry used

    @property
    def known(self) -> bool:
        return self.batch is not None

    @property
    def billed(self) -> bool:
        """Only succeeded results are billed."""
        return self.result_type == "succeeded"

    @property
    def batch_usd(self) -> Optional[Decimal]:
        return None if self.batch is None else self.batch.total

    @property
    def standard_usd(self) -> Optional[Decimal]:
        return None if self.standard is None else self.standard.total


_NOTHING = UsageCounts()
_FREE = Charges()


def charges(usage: UsageCounts, model: str, table: PricingTable, *,
            at: Optional[When] = None, geo: Optional[str] = None
            ) -> Optional[tuple[Charges, Charges]]:
    """``(batch, standard)`` charges for ``usage`` of ``model``, or None if it is unknown:
    at the price in force at ``at`` (a batch's ``created_at``), where ``geo`` says
    inference ran (``usage.inference_geo``: ``"us"`` costs more)."""
    price = table.lookup(model, at=at)
    return None if price is None else _charges(usage, price, table, geo)


def _charges(usage: UsageCounts, price: ModelPrice, table: PricingTable,
             geo: Optional[str] = None) -> tuple[Charges, Charges]:
    prompt = usage.input + usage.cache_write_5m + usage.cache_write_1h + usage.cache_read
    rates = price.rates_for_prompt(prompt)
    scale = table.geo_multiplier(geo)
    standard = Charges(rates["input"] * usage.input * scale,
                       rates["cache_write_5m"] * usage.cache_write_5m * scale,
                       rates["cache_write_1h"] * usage.cache_write_1h * scale,
                       rates["cache_read"] * usage.cache_read * scale,
                       rates["output"] * usage.output * scale,
                       table.web_search_per_request * usage.web_search)
    half = table.batch_multiplier
    batch = Charges(standard.input * half, standard.cache_write_5m * half,
                    standard.cache_write_1h * half, standard.cache_read * half,
                    standard.output * half,
                    standard.web_search * half if table.web_search_batch_discount
                    else standard.web_search)
    return batch, standard


def price_result(result: Union[BatchResult, Mapping[str, Any]], table: PricingTable,
                 at: Optional[When] = None) -> ResultCost:
    """The cost of one result: a ``BatchResult`` or a raw results-file line (dict), at the
    price in force at ``at`` (its batch's ``created_at``; None: today's price)."""
    custom_id, kind, model, usage = _unpack(result)
    if kind != "succeeded":
        return ResultCost(custom_id, kind, model, _NOTHING, _FREE, _FREE)
    counts = UsageCounts.from_usage(usage)
    price = table.lookup(model or "", at=at)
    if price is None:
        return ResultCost(custom_id, kind, model, counts, None, None)
    geo = _get(usage, "inference_geo") if usage is not None else None
    batch, standard = _charges(counts, price, table, geo if isinstance(geo, str) else None)
    return ResultCost(custom_id, kind, model, counts, batch, standard, priced_as=price.model)


def _unpack(result: Union[BatchResult, Mapping[str, Any]]
            ) -> tuple[str, str, Optional[str], Any]:
    if isinstance(result, Mapping):
        body = result.get("result") or {}
        kind = str(body.get("type", "unknown"))
        message = body.get("message") or {}
        return (str(result.get("custom_id", "")), kind, message.get("model"),
                message.get("usage"))
    kind = result.type
    message = getattr(result.result, "message", None)
    return (result.custom_id, kind, getattr(message, "model", None),
            getattr(message, "usage", None))
