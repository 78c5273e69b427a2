"""THE model catalog: ids and aliases, output limits, minimum cacheable tokens, dated prices.

One table that the emulator (limits, alias resolution), the prompt-cache plugin
(minimums, savings) and the cost plugin (prices) all read, so their figures
agree. Families match by the longest id prefix, so a dated snapshot
(``claude-haiku-4-5-20251001``) follows its family; prices are dated and name
their source (``catalog.json``: ``as_of``, ``source``).
"""

from __future__ import annotations

import functools
from typing import Dict, Mapping, Optional, Tuple

import attrs

from ._pricing import (
    MILLION,
    CacheMultipliers,
    EarlierPrice,
    LongPrompt,
    ModelPrice,
    PricingSource,
    PricingTable,
    load_pricing,
    packaged_table,
    to_decimal,
)

__all__ = [
    "ALIASES",
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_MIN_CACHE_TOKENS",
    "FAMILIES",
    "MILLION",
    "CacheMultipliers",
    "EarlierPrice",
    "Family",
    "LongPrompt",
    "ModelPrice",
    "PricingSource",
    "PricingTable",
    "family",
    "load_pricing",
    "max_output_tokens",
    "min_cacheable_tokens",
    "packaged_table",
    "resolve",
    "to_decimal",
]


@attrs.frozen
class Family:
    """Models whose id starts with ``prefix``: their largest ``max_tokens``, the
    shortest prompt prefix they cache (shorter breakpoints cache nothing), whether
    a batch may ask for up to 300,000 tokens with the extended-output beta, and
    whether they take ``inference_geo`` (older models answer it with an error)."""

    prefix: str
    max_output: int
    min_cache_tokens: int
    extended_output: bool = False
    inference_geo: bool = True


#: Longest matching prefix wins. Sources, read 2026-12-01: each model's overview page (max
#: output; "Max output (Batch API, beta) 300K" for extended output), the prompt-caching
#: page (minimums), the data-residency page (inference_geo from Opus 4.6 / Sonnet 4.6 on).
#: Where a minimum is unknown (Haiku 5.5) or sources disagree, the larger figure is kept:
#: marking too little costs a missed saving, too much a write never read.
FAMILIES: Tuple[Family, ...] = (
    Family("claude-opus-5-5", 128_000, 512, extended_output=True),
    Family("claude-opus-5", 128_000, 512, extended_output=True),
    Family("claude-fable-5", 128_000, 512),
    Family("claude-mythos-5", 128_000, 512),
    Family("claude-mythos", 128_000, 2048),
    Family("claude-sonnet-5-5", 128_000, 512, extended_output=True),
    Family("claude-sonnet-5", 128_000, 1024, extended_output=True),
    Family("claude-haiku-5-5", 128_000, 4096),
    Family("claude-opus-4-8", 128_000, 1024),
    Family("claude-opus-4-7", 128_000, 4096),
    Family("claude-opus-4-6", 128_000, 4096),
    Family("claude-opus-4-5", 64_000, 4096, inference_geo=False),
    Family("claude-opus-4-1", 32_000, 1024, inference_geo=False),
    Family("claude-opus-4", 32_000, 1024, inference_geo=False),
    Family("claude-sonnet-4-6", 128_000, 2048),
    Family("claude-sonnet-4-5", 64_000, 1024, inference_geo=False),
    Family("claude-sonnet-4", 64_000, 1024, inference_geo=False),
    Family("claude-haiku-4-5", 64_000, 4096, inference_geo=False),
    Family("claude-3-7-sonnet", 64_000, 1024, inference_geo=False),
    Family("claude-3-5-sonnet", 8192, 1024, inference_geo=False),
    Family("claude-3-5-haiku", 8192, 2048, inference_geo=False),
    Family("claude-3-opus", 4096, 1024, inference_geo=False),
    Family("claude-3-sonnet", 4096, 1024, inference_geo=False),
    Family("claude-3-haiku", 4096, 2048, inference_geo=False),
)
#: For an id no family matches: the largest output and the largest minimum in use.
DEFAULT_MAX_OUTPUT = 128_000
DEFAULT_MIN_CACHE_TOKENS = 4096

#: Aliases the service resolves to a dated snapshot (as listed in the OpenAPI spec).
ALIASES: Dict[str, str] = {
    "claude-opus-4-5": "claude-opus-4-5-20251101",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}


def resolve(model: str) -> str:
    """The id the service answers with: an alias's dated snapshot, else the id itself."""
    return ALIASES.get(model, model)


@functools.lru_cache(maxsize=256)
def family(model: str) -> Optional[Family]:
    """The family of ``model`` (an alias or a dated id), or None for an unknown id."""
    resolved = resolve(model)
    best: Optional[Family] = None
    for candidate in FAMILIES:
        if resolved.startswith(candidate.prefix) and (
                best is None or len(candidate.prefix) > len(best.prefix)):
            best = candidate
    return best


def max_output_tokens(model: str) -> int:
    found = family(model)
    return found.max_output if found is not None else DEFAULT_MAX_OUTPUT


def min_cacheable_tokens(model: str, overrides: Optional[Mapping[str, int]] = None) -> int:
    """The shortest prefix ``model`` caches; ``overrides`` (prefix -> tokens) win first."""
    best: Optional[Tuple[str, int]] = None
    for prefix, tokens in (overrides or {}).items():
        if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, tokens)
    if best is not None:
        return best[1]
    found = family(model)
    return found.min_cache_tokens if found is not None else DEFAULT_MIN_CACHE_TOKENS
