"""Which model ids the emulator knows, and the limits each one has.

By default any ``claude-`` id is known (new models appear faster than a table is
updated); ``models=[...]`` narrows that to an exact list. Limits come from the model's
family: the largest ``max_tokens`` it accepts and the shortest prefix it will cache.
"""

from __future__ import annotations

from typing import Collection, Dict, NamedTuple, Optional, Tuple


class ModelInfo(NamedTuple):
    requested: str
    resolved: str  # the id the answer names (an alias resolves to its dated snapshot)
    max_output: int
    min_cache_tokens: int


# (prefix, max output tokens, minimum cacheable prompt tokens); longest prefix wins.
_FAMILIES: Tuple[Tuple[str, int, int], ...] = (
    ("claude-mythos", 128_000, 4096),
    ("claude-opus-4-7", 128_000, 4096),
    ("claude-opus-4-6", 128_000, 4096),
    ("claude-opus-4-5", 64_000, 4096),
    ("claude-opus-4-1", 32_000, 1024),
    ("claude-opus-4", 32_000, 1024),
    ("claude-sonnet-4-6", 64_000, 2048),
    ("claude-sonnet-4-5", 64_000, 1024),
    ("claude-sonnet-4", 64_000, 1024),
    ("claude-haiku-4-5", 64_000, 4096),
    ("claude-3-7-sonnet", 64_000, 1024),
    ("claude-3-5-sonnet", 8192, 1024),
    ("claude-3-5-haiku", 8192, 2048),
    ("claude-3-opus", 4096, 1024),
    ("claude-3-sonnet", 4096, 1024),
    ("claude-3-haiku", 4096, 2048),
)
_DEFAULT_LIMITS = (128_000, 1024)

# Aliases the service resolves to a dated snapshot (as listed in the OpenAPI spec).
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
        resolved = ALIASES.get(model, model)
        max_output, min_cache = _DEFAULT_LIMITS
        for prefix, out, cache in _FAMILIES:
            if resolved.startswith(prefix):
                max_output, min_cache = out, cache
                break
        if self._cache_min_tokens is not None:
            min_cache = self._cache_min_tokens
        return ModelInfo(model, resolved, max_output, min_cache)
