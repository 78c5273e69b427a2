"""The money caching saved, priced by the cost plugin's table when it is registered.

This plugin has no prices of its own (claudebatch-cost owns the pricing table); it
finds a ``CostTracker`` among the client's plugins and reads its table. Without one,
or for a model the table does not know, the saving is ``None`` and only tokens are
reported.

Saved = what the cached tokens would have cost as plain input, less what they cost as
cache reads and writes, at the batch price, less everything the primer requests cost
(they exist only to warm the cache).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional

MILLION = Decimal(1_000_000)
_TABLE_ATTRIBUTES = ("table", "pricing")


def find_pricing(client: Any) -> Optional[Any]:
    """The pricing table of a CostTracker registered on ``client``, if any."""
    plugins: Iterable[Any] = getattr(client, "plugins", ()) or ()
    for plugin in plugins:
        if type(plugin).__name__ != "CostTracker":
            continue
        for name in _TABLE_ATTRIBUTES:
            table = getattr(plugin, name, None)
            if callable(getattr(table, "lookup", None)) and hasattr(table, "batch_multiplier"):
                return table
    return None


def cache_saving(client: Any, by_model: Dict[str, List[int]],
                 primers: Optional[Dict[str, List[int]]] = None) -> Optional[Decimal]:
    """USD saved by caching: ``by_model`` maps model -> [read, write 5m, write 1h] tokens;
    ``primers`` maps model -> [input, write 5m, write 1h, read, output] of the primers."""
    table = find_pricing(client)
    if table is None:
        return None
    batch = Decimal(str(table.batch_multiplier))
    saved = Decimal(0)
    for model, (read, write_5m, write_1h) in by_model.items():
        price = table.lookup(model)
        if price is None:
            return None
        base = Decimal(price.input) / MILLION
        cache = price.cache
        saved += base * (read * (1 - Decimal(cache.read))
                         - write_5m * (Decimal(cache.write_5m) - 1)
                         - write_1h * (Decimal(cache.write_1h) - 1))
    for model, (inp, write_5m, write_1h, read, output) in (primers or {}).items():
        price = table.lookup(model)
        if price is None:
            return None
        base = Decimal(price.input) / MILLION
        cache = price.cache
        saved -= (base * (inp + write_5m * Decimal(cache.write_5m)
                          + write_1h * Decimal(cache.write_1h) + read * Decimal(cache.read))
                  + Decimal(price.output) / MILLION * output)
    return saved * batch
