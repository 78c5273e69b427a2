"""An approximate tokenizer, and the prompt's blocks in cache-prefix order.

One rule counts tokens everywhere in claudebatch (the emulator's usage, the
cache plugin's placement, the cost plugin's estimates), so their figures agree:
``ceil(characters / 4)``, plus a few tokens of framing per message and for the
system prompt. Real token counts differ; the free token-counting endpoint gives
them when precision matters.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, NamedTuple, Optional

from . import _json

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3  # role markers around each message
SYSTEM_OVERHEAD = 3
MEDIA_TOKENS = 1600  # an image, or a non-text document, whatever its size


def count_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def canonical(value: Any) -> str:
    return _json.dumps_sorted(value).decode("utf-8")


def strip_cache_control(block: Any) -> Any:
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
    return count_tokens(canonical(strip_cache_control(block)))


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
            yield Block("tools", tool, count_tokens(canonical(strip_cache_control(tool))), cc)
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
