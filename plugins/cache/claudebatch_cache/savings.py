"""The money caching saved, priced from the one model catalog (:mod:`claudebatch.catalog`).

For a model the catalog does not price, the saving is ``None`` and only tokens are
reported.

Saved = what the cached tokens would have cost as plain input, less what they cost as
cache reads and writes, at the batch price, less everything the primer requests cost
(they exist only to warm the cache).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, List, Optional

from claudebatch.catalog import MILLION, PricingTable


def cache_saving(table: PricingTable, by_model: Dict[str, List[int]],
                 primers: Optional[Dict[str, List[int]]] = None) -> Optional[Decimal]:
    """USD saved by caching: ``by_model`` maps model -> [read, write 5m, write 1h] tokens;
    ``primers`` maps model -> [input, write 5m, write 1h, read, output] of the primers."""
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
