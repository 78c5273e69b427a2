"""A request's prompt as the cache sees it: blocks in cache order, with prefix keys.

The service builds its cache prefix from the tools, then the system blocks, then the
messages' content blocks. Walking a request in that order gives, at each block, a
*boundary*: the key of everything up to and including that block (a hash of the model
and the content, ``cache_control`` left out), the running token count, and whether a
breakpoint may sit there.

Tokens are approximated as the emulator counts them (``ceil(characters / 4)`` plus a
little framing per message and for the system prompt), so plans and the emulator's
usage agree. On English prose the real tokenizer counts more tokens than this, so a
prefix judged long enough here is long enough there too.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3  # role markers around each message
SYSTEM_OVERHEAD = 3
MEDIA_TOKENS = 1600  # an image, or a non-text document

#: Content block types whose request form accepts ``cache_control`` (from the API's
#: OpenAPI schemas). Thinking and redacted_thinking blocks do not; nor do the blocks
#: nested inside a tool_result or document: their parent carries the breakpoint.
ACCEPTS_CACHE_CONTROL = frozenset({
    "text", "image", "document", "search_result", "tool_use", "tool_result",
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
    "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result", "tool_search_tool_result",
    "mcp_tool_use", "mcp_tool_result", "container_upload", "tool_reference",
    "advisor_tool_result", "compaction",
})

#: Where a block lives in the params: ("tools", i), ("system", i), ("messages", m, b).
#: For a string ``system`` or a string message ``content`` the index is 0 and the
#: string becomes a one-block list when a breakpoint is put there.
Location = Tuple[Any, ...]


class Boundary(NamedTuple):
    key: int  # identifies the prefix through this block (model + content)
    tokens: int  # approximate prompt tokens through this block
    location: Location
    markable: bool  # a breakpoint may be put on this block
    ttl: Optional[str]  # the TTL of the caller's own cache_control here, if any
    nested: Tuple[str, ...]  # TTLs of cache_control inside this block (tool_result content)


class Prompt(NamedTuple):
    model: str
    boundaries: List[Boundary]
    top_level_ttl: Optional[str]  # automatic caching: ``params["cache_control"]``

    @property
    def user_marked(self) -> bool:
        """The caller put cache_control somewhere already."""
        return self.top_level_ttl is not None or any(
            b.ttl is not None or b.nested for b in self.boundaries)

    def user_breakpoints(self) -> List[Tuple[float, str]]:
        """``(position, ttl)`` of the caller's breakpoints, positions being boundary
        indexes (nested ones sit just before their parent's end; the automatic one at
        the end). Their number is what the 4-breakpoint limit already holds."""
        found: List[Tuple[float, str]] = []
        last_marked = False
        for index, b in enumerate(self.boundaries):
            found.extend((index - 0.5, ttl) for ttl in b.nested)
            if b.ttl is not None:
                found.append((float(index), b.ttl))
            last_marked = b.ttl is not None
        if self.top_level_ttl is not None and self.boundaries and not last_marked:
            found.append((float(len(self.boundaries)), self.top_level_ttl))
        return found


def count_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _without_cache_control(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _ttl(marker: Any) -> Optional[str]:
    """The TTL a ``cache_control`` value asks for, or None when there is none."""
    if marker is None:
        return None
    if isinstance(marker, dict):
        ttl = marker.get("ttl")
        return ttl if ttl in ("5m", "1h") else "5m"
    return "5m"


def block_tokens(block: Any) -> int:
    """Approximate tokens of one content block (or a bare string), as the emulator counts."""
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
            canonical(block.get("input", {})))
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            return 2 + sum(block_tokens(b) for b in content)
        return 2 + block_tokens(content)
    if kind == "thinking":
        return count_tokens(str(block.get("thinking", "")))
    if kind == "redacted_thinking":
        return count_tokens(str(block.get("data", "")))
    return count_tokens(canonical(_without_cache_control(block)))


def _nested_ttls(block: Any) -> Tuple[str, ...]:
    """TTLs of cache_control set inside a block (a tool_result's or document's content)."""
    if not isinstance(block, dict):
        return ()
    inner: Any = block.get("content")
    if block.get("type") == "document" and isinstance(block.get("source"), dict):
        inner = block["source"].get("content")
    if not isinstance(inner, list):
        return ()
    return tuple(t for t in (_ttl(b.get("cache_control")) for b in inner
                             if isinstance(b, dict)) if t is not None)


def _text_block(text: str) -> Dict[str, Any]:
    return {"type": "text", "text": text}


def _content_markable(block: Any) -> bool:
    if not isinstance(block, dict) or block.get("type") not in ACCEPTS_CACHE_CONTROL:
        return False
    if block.get("type") == "text":
        text = block.get("text")
        return isinstance(text, str) and bool(text)
    return True


_PLAIN_TEXT_KEYS = frozenset({"type", "text", "cache_control"})


def _content_bytes(block: Any) -> bytes:
    """What identifies a block in the prefix key, ``cache_control`` left out.

    A plain text block (the bulk of most prompts) is keyed by its text alone, which
    is much cheaper than canonical JSON; the leading NUL keeps the two forms apart.
    """
    if (isinstance(block, dict) and block.get("type") == "text"
            and isinstance(block.get("text"), str) and block.keys() <= _PLAIN_TEXT_KEYS):
        text: str = block["text"]
        return b"\x00text\x00" + text.encode("utf-8", "surrogatepass")
    return canonical(_without_cache_control(block)).encode("utf-8", "surrogatepass")


class _Walker:
    """Accumulates the prefix hash and token count block by block."""

    def __init__(self, model: str) -> None:
        self.digest = hashlib.blake2b(model.encode("utf-8"), digest_size=8)
        self.tokens = 0
        self.out: List[Boundary] = []

    def add(self, section: bytes, block: Any, tokens: int, location: Location,
            markable: bool) -> None:
        self.digest.update(b"\x1e" + section + b"\x1f")
        self.digest.update(_content_bytes(block))
        self.tokens += tokens
        cc = block.get("cache_control") if isinstance(block, dict) else None
        key = int.from_bytes(self.digest.copy().digest(), "big")
        self.out.append(Boundary(key, self.tokens, location, markable, _ttl(cc),
                                 _nested_ttls(block)))

    def separator(self, marker: bytes) -> None:
        self.digest.update(marker)


def analyse(params: Dict[str, Any]) -> Prompt:
    """The boundaries of one request's params, in cache order (tools, system, messages).

    Assumes the params passed the core's validation of their overall shape; odd
    values are hashed and counted, never marked.
    """
    model = str(params.get("model", ""))
    walker = _Walker(model)
    tools = params.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            tokens = count_tokens(canonical(_without_cache_control(tool)))
            walker.add(b"tools", tool, tokens, ("tools", i), isinstance(tool, dict))
    system = params.get("system")
    if isinstance(system, str) and system:
        walker.add(b"system", _text_block(system), SYSTEM_OVERHEAD + count_tokens(system),
                   ("system", 0), True)
    elif isinstance(system, list):
        for i, block in enumerate(system):
            extra = SYSTEM_OVERHEAD if i == 0 else 0
            markable = (isinstance(block, dict) and block.get("type") == "text"
                        and _content_markable(block))
            walker.add(b"system", block, extra + block_tokens(block), ("system", i), markable)
    messages = params.get("messages")
    if isinstance(messages, list):
        for m, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            role = str(message.get("role")).encode("utf-8")
            walker.separator(b"\x1d" + role)
            content = message.get("content")
            if isinstance(content, str):
                walker.add(role, _text_block(content), MESSAGE_OVERHEAD + count_tokens(content),
                           ("messages", m, 0), bool(content))
            elif isinstance(content, list):
                for b, block in enumerate(content):
                    extra = MESSAGE_OVERHEAD if b == 0 else 0
                    walker.add(role, block, extra + block_tokens(block), ("messages", m, b),
                               _content_markable(block))
                if not content:
                    walker.tokens += MESSAGE_OVERHEAD
    top = params.get("cache_control")
    return Prompt(model, walker.out, _ttl(top))
