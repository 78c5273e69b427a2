"""The shortest prefix each model will cache (its minimum cacheable prompt length).

A breakpoint on a shorter prefix is accepted by the API but caches nothing, so the
plugin only marks prefixes at least this long. Sources disagree on a few models;
where they do, the table keeps the larger figure (marking too little costs a missed
saving, marking too much costs a cache write that is never read). A model the table
does not know gets :data:`DEFAULT_MIN_TOKENS`, the largest minimum in use.
"""

from __future__ import annotations

from typing import Mapping, Optional, Tuple

#: For model ids no entry matches: the largest minimum any current model has.
DEFAULT_MIN_TOKENS = 4096

#: (model id prefix, minimum tokens); the longest matching prefix wins, so dated
#: snapshots (``claude-haiku-4-5-20251001``) follow their family.
MIN_CACHEABLE_TOKENS: Tuple[Tuple[str, int], ...] = (
    ("claude-opus-5", 512),
    ("claude-fable-5", 512),
    ("claude-sonnet-5", 1024),
    ("claude-mythos", 4096),
    ("claude-opus-4-8", 1024),
    ("claude-opus-4-7", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-opus-4-1", 1024),
    ("claude-opus-4", 1024),
    ("claude-sonnet-4-6", 2048),
    ("claude-sonnet-4-5", 1024),
    ("claude-sonnet-4", 1024),
    ("claude-haiku-4-5", 4096),
    ("claude-3-7-sonnet", 1024),
    ("claude-3-5-sonnet", 1024),
    ("claude-3-5-haiku", 2048),
    ("claude-3-opus", 1024),
    ("claude-3-sonnet", 1024),
    ("claude-3-haiku", 2048),
)


def min_cacheable_tokens(model: str, overrides: Optional[Mapping[str, int]] = None) -> int:
    """The minimum for ``model``: the caller's ``overrides`` first (same prefix rule)."""
    for table in (overrides or {}).items(), MIN_CACHEABLE_TOKENS:
        best: Optional[Tuple[str, int]] = None
        for prefix, tokens in table:
            if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, tokens)
        if best is not None:
            return best[1]
    return DEFAULT_MIN_TOKENS
