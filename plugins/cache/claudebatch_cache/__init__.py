"""claudebatch-cache: prompt-cache injection for claudebatch.

Finds the prefix (tools, system, leading messages) that requests of a batch share,
marks it with ``cache_control``, optionally primes it with a one-request-per-prefix
batch, and reports the cache reads, writes, hit rate and saving after the job::

    from claudebatch import BatchClient
    from claudebatch_cache import PromptCache

    cache = PromptCache(ttl="1h", prime=False)
    report = BatchClient(plugins=[cache]).run("requests.jsonl", output="out.jsonl")
    print(cache.hit_rate, report.plugins["cache"])
"""

from .minimums import DEFAULT_MIN_TOKENS, min_cacheable_tokens
from .plugin import PromptCache

__all__ = ["DEFAULT_MIN_TOKENS", "PromptCache", "min_cacheable_tokens"]
