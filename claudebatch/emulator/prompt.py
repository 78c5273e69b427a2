"""The prompt's cacheable prefix structure, over the core's tokenizer (claudebatch.tokens).

The prompt is walked in the order the service builds its cache prefix (tools, then
system, then messages); each block that carries ``cache_control`` is a breakpoint at
the running token count, keyed by a hash of the model and everything up to and
including that block.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, NamedTuple, Tuple

from ..tokens import (  # the shared rule; re-exported for the emulator's modules
    CHARS_PER_TOKEN,
    MEDIA_TOKENS,
    MESSAGE_OVERHEAD,
    SYSTEM_OVERHEAD,
    Block,
    block_tokens,
    canonical,
    count_tokens,
    iter_blocks,
    strip_cache_control,
)

__all__ = [
    "CHARS_PER_TOKEN", "MEDIA_TOKENS", "MESSAGE_OVERHEAD", "SYSTEM_OVERHEAD", "TTL_SECONDS",
    "Block", "Breakpoint", "Prompt", "analyse", "block_tokens", "cache_markers", "canonical",
    "count_tokens", "iter_blocks", "strip_cache_control",
]

TTL_SECONDS: Dict[str, float] = {"5m": 300.0, "1h": 3600.0}


class Breakpoint(NamedTuple):
    position: int  # prompt tokens up to and including the marked block
    ttl: str  # "5m" or "1h"
    key: bytes  # identifies the prefix (model + content), b"" when not asked for


class Prompt(NamedTuple):
    tokens: int
    breakpoints: Tuple[Breakpoint, ...]


def cache_markers(params: Dict[str, Any]) -> List[Any]:
    """Every ``cache_control`` value in the prompt, the top-level one (automatic
    caching of the last block) included when the last block has none of its own."""
    markers: List[Any] = []
    last_marked = False
    any_block = False
    for block in iter_blocks(params):
        any_block = True
        last_marked = bool(block.cache_control)
        if block.cache_control:
            markers.append(block.cache_control)
    top = params.get("cache_control")
    if top is not None and any_block and not last_marked:
        markers.append(top)
    return markers


def analyse(params: Dict[str, Any], model: str, *, keys: bool = False) -> Prompt:
    """Token count of the prompt and its cache breakpoints (with prefix keys if asked)."""
    digest = hashlib.blake2b(model.encode(), digest_size=16) if keys else None
    position = 0
    breakpoints: List[Breakpoint] = []
    last_marked = False
    for block in iter_blocks(params):
        position += block.tokens
        if digest is not None:
            digest.update(b"\x1e" + block.section.encode() + b"\x1f")
            digest.update(canonical(strip_cache_control(block.value)).encode())
        last_marked = bool(block.cache_control)
        if block.cache_control:
            breakpoints.append(_breakpoint(position, block.cache_control, digest))
    top = params.get("cache_control")
    if isinstance(top, dict) and not last_marked and position:
        breakpoints.append(_breakpoint(position, top, digest))
    return Prompt(position, tuple(breakpoints))


def _breakpoint(position: int, marker: Dict[str, Any], digest: Any) -> Breakpoint:
    ttl = marker.get("ttl", "5m") if isinstance(marker, dict) else "5m"
    key = digest.copy().digest() if digest is not None else b""
    return Breakpoint(position, ttl if ttl in TTL_SECONDS else "5m", key)
