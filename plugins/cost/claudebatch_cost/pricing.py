"""The cost plugin prices from the one model catalog (:mod:`claudebatch.catalog`)."""

from claudebatch.catalog import (
    MILLION,
    CacheMultipliers,
    ModelPrice,
    PricingSource,
    PricingTable,
    load_pricing,
    packaged_table,
    to_decimal,
)

__all__ = ["MILLION", "CacheMultipliers", "ModelPrice", "PricingSource", "PricingTable",
           "load_pricing", "packaged_table", "to_decimal"]
