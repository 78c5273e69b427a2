"""Which model ids the emulator knows, and the limits each one has.

By default any ``claude-`` id is known (new models appear faster than a table is
updated); ``models=[...]`` narrows that to an exact list. Limits come from the one
model catalog (:mod:`claudebatch.catalog`): the largest ``max_tokens`` a family
accepts and the shortest prefix it will cache.
"""

from __future__ import annotations

from typing import Collection, Dict, NamedTuple, Optional

from ..catalog import max_output_tokens, min_cacheable_tokens, resolve


class ModelInfo(NamedTuple):
    requested: str
    resolved: str  # the id the answer names (an alias resolves to its dated snapshot)
    max_output: int
    min_cache_tokens: int


class Catalog:
    def __init__(
        self,
        models: Optional[Collection[str]] = None,
        cache_min_tokens: Optional[int] = None,
    ) -> None:
        self._models = frozenset(models) if models is not None else None
        self._cache_min_tokens = cache_min_tokens
        self._known: Dict[str, Optional[ModelInfo]] = {}

    def lookup(self, model: str) -> Optional[ModelInfo]:
        """The model's limits, or None when the service would answer not_found_error."""
        try:
            return self._known[model]
        except KeyError:
            pass
        info = self._lookup(model)
        if len(self._known) < 10_000:
            self._known[model] = info
        return info

    def _lookup(self, model: str) -> Optional[ModelInfo]:
        if self._models is not None:
            if model not in self._models:
                return None
        elif not model.startswith("claude-") or len(model) <= len("claude-"):
            return None
        resolved = resolve(model)
        max_output, min_cache = max_output_tokens(model), min_cacheable_tokens(model)
        if self._cache_min_tokens is not None:
            min_cache = self._cache_min_tokens
        return ModelInfo(model, resolved, max_output, min_cache)
