"""The approximate tokenizer and the prompt's cacheable prefix structure.

One rule counts tokens everywhere: ``ceil(characters / 4)``, plus a few tokens of
framing per message and for the system prompt. The prompt is walked in the order the
service builds its cache prefix (tools, then system, then messages); each block that
carries ``cache_control`` is a breakpoint at the running token count, keyed by a hash
of the model and everything up to and including that block.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3  # role markers around each message
SYSTEM_OVERHEAD = 3
MEDIA_TOKENS = 1600  # an image, or a non-text document, whatever its size
TTL_SECONDS: Dict[str, float] = {"5m": 300.0, "1h": 3600.0}


def count_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _strip_cache_control(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def block_tokens(block: Any) -> int:
    """Tokens of one content block (or a bare string)."""
    if isinstance(block, str):
        return count_tokens(block)
    if not isinstance(block, dict):
        return count_tokens(canonical(block))
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return count_tokens(text) if isinstance(text, str) else 0
    if kind == "image":
        return MEDIA_TOKENS
    if kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text":
            data = source.get("data")
            return count_tokens(data) if isinstance(data, str) else 0
        if isinstance(source, dict) and source.get("type") == "content":
            content = source.get("content")
            if isinstance(content, list):
                return sum(block_tokens(b) for b in content)
            return block_tokens(content)
        return MEDIA_TOKENS
    if kind in ("tool_use", "server_tool_use"):
        return count_tokens(str(block.get("name", ""))) + count_tokens(
            canonical(block.get("input", {}))
        )
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            return 2 + sum(block_tokens(b) for b in content)
        return 2 + block_tokens(content)
    if kind == "thinking":
        return count_tokens(str(block.get("thinking", "")))
    if kind == "redacted_thinking":
        return count_tokens(str(block.get("data", "")))
    return count_tokens(canonical(_strip_cache_control(block)))


class Block(NamedTuple):
    section: str  # "tools", "system", "user", "assistant"
    value: Any
    tokens: int
    cache_control: Optional[Dict[str, Any]]


def iter_blocks(params: Dict[str, Any]) -> Iterator[Block]:
    """The prompt's blocks in cache-prefix order. Assumes ``params`` passed validation
    of its overall shape; odd values are counted, not rejected."""
    tools = params.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            cc = tool.get("cache_control") if isinstance(tool, dict) else None
            yield Block("tools", tool, count_tokens(canonical(_strip_cache_control(tool))), cc)
    system = params.get("system")
    if isinstance(system, str) and system:
        yield Block("system", system, SYSTEM_OVERHEAD + count_tokens(system), None)
    elif isinstance(system, list):
        first = True
        for block in system:
            cc = block.get("cache_control") if isinstance(block, dict) else None
            extra = SYSTEM_OVERHEAD if first else 0
            first = False
            yield Block("system", block, extra + block_tokens(block), cc)
    messages = params.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            role = str(message.get("role"))
            content = message.get("content")
            if isinstance(content, list):
                first = True
                for block in content:
                    cc = block.get("cache_control") if isinstance(block, dict) else None
                    extra = MESSAGE_OVERHEAD if first else 0
                    first = False
                    yield Block(role, block, extra + block_tokens(block), cc)
                if first:  # an empty list still costs the framing
                    yield Block(role, [], MESSAGE_OVERHEAD, None)
            else:
                yield Block(role, content, MESSAGE_OVERHEAD + block_tokens(content or ""), None)


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
            digest.update(canonical(_strip_cache_control(block.value)).encode())
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
