"""The shortest prefix each model will cache: read from the one model catalog.

A breakpoint on a shorter prefix is accepted by the API but caches nothing, so the
plugin only marks prefixes at least this long. The figures live in
:mod:`claudebatch.catalog`, which the emulator and the cost plugin read too.
"""

from claudebatch.catalog import DEFAULT_MIN_CACHE_TOKENS as DEFAULT_MIN_TOKENS
from claudebatch.catalog import min_cacheable_tokens

__all__ = ["DEFAULT_MIN_TOKENS", "min_cacheable_tokens"]
