"""A request's prompt as the cache sees it: blocks in cache order, with prefix keys.

The walk and the token counts are the core's (:mod:`claudebatch.tokens`, the rule the
emulator's usage follows too), so plans and usage agree: tools, then the system blocks,
then the messages' content blocks, ``ceil(characters / 4)`` tokens plus a little framing
per message and for the system prompt. On English prose the real tokenizer counts more
tokens than this, so a prefix judged long enough here is long enough there too.

What is the plugin's own: at each block, a *boundary* holding the key of everything up
to and including that block (a hash of the model and the content, ``cache_control``
left out), the running token count, where the block lives in the params, and whether
the API accepts a breakpoint there.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from claudebatch.tokens import (
    CHARS_PER_TOKEN,
    MEDIA_TOKENS,
    MESSAGE_OVERHEAD,
    SYSTEM_OVERHEAD,
    block_tokens,
    canonical,
    count_tokens,
    strip_cache_control,
)

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
        if self.top_level_ttl is None:  # the common case: none at all
            for b in self.boundaries:
                if b.ttl is not None or b.nested:
                    break
            else:
                return []
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


def _ttl(marker: Any) -> Optional[str]:
    """The TTL a ``cache_control`` value asks for, or None when there is none."""
    if marker is None:
        return None
    if isinstance(marker, dict):
        ttl = marker.get("ttl")
        return ttl if ttl in ("5m", "1h") else "5m"
    return "5m"


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


def _markable(section: str, block: Any, whole_string: bool) -> bool:
    """Does the API accept ``cache_control`` on this block? A string prompt (``whole_string``)
    counts as the text block it becomes."""
    if section == "tools" or not isinstance(block, dict):
        return isinstance(block, dict) or (whole_string and bool(block))
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return isinstance(text, str) and bool(text)
    return section != "system" and kind in ACCEPTS_CACHE_CONTROL


_PLAIN_TEXT_KEYS = frozenset({"type", "text", "cache_control"})


def _content_bytes(block: Any) -> bytes:
    """What identifies a block in the prefix key, ``cache_control`` left out.

    A string and a plain text block (the bulk of most prompts) are keyed by their text
    alone, which is much cheaper than canonical JSON and keeps the key of a string
    prompt when it becomes a marked block; the leading NUL keeps the two forms apart.
    """
    if isinstance(block, str):
        return b"\x00text\x00" + block.encode("utf-8", "surrogatepass")
    if (isinstance(block, dict) and block.get("type") == "text"
            and isinstance(block.get("text"), str) and block.keys() <= _PLAIN_TEXT_KEYS):
        text: str = block["text"]
        return b"\x00text\x00" + text.encode("utf-8", "surrogatepass")
    return canonical(strip_cache_control(block)).encode("utf-8", "surrogatepass")


def is_string_at(params: Dict[str, Any], location: Location) -> bool:
    """Is the block at ``location`` a whole string prompt (``system`` or a message's content)?"""
    if location[0] == "system":
        return isinstance(params.get("system"), str)
    if location[0] == "messages":
        return isinstance(params["messages"][location[1]].get("content"), str)
    return False


#: Prefixes (model + system string, no tools) kept already hashed: most jobs share one
#: system prompt, and hashing it is most of the work of :func:`analyse` (a 4 KB prompt:
#: ~10 us of blake2b). Found by its model, length and ends, then compared whole: a
#: request's prompt is a new string, and hashing it as a dict key would read it all
#: (~1 us) where comparing it is a memcmp. Shorter prompts hash faster than that.
_PREFIXES: Dict[Tuple[str, int, str, str], Tuple[str, Any, int, Tuple[Boundary, ...]]] = {}
PREFIX_MEMO_SIZE = 32
PREFIX_MEMO_MIN_CHARS = 1024


def analyse(params: Dict[str, Any]) -> Prompt:
    """The boundaries of one request's params, in cache order (tools, system, messages).

    Walks the blocks as :func:`claudebatch.tokens.iter_blocks` does, counting each with
    the core's rule, in one loop (no generators: this runs for every request that may be
    cached, once counted and once marked). Assumes the params passed the core's
    validation of their overall shape; odd values are hashed and counted, never marked.
    """
    model = str(params.get("model", ""))
    tools, system = params.get("tools"), params.get("system")
    if isinstance(system, str) and len(system) >= PREFIX_MEMO_MIN_CHARS \
            and not (isinstance(tools, list) and tools):
        digest, tokens, out = _system_prefix(model, system)
    else:
        digest = hashlib.blake2b(model.encode("utf-8"), digest_size=8)
        out = []
        tokens = _walk_prefix(digest, out, tools, system)
    tokens = _walk_messages(digest, out, tokens, params.get("messages"))
    return Prompt(model, out, _ttl(params.get("cache_control")))


def _system_prefix(model: str, system: str) -> Tuple[Any, int, List[Boundary]]:
    """The digest, tokens and boundaries through a string system prompt (no tools),
    hashed once per distinct prompt."""
    probe = (model, len(system), system[:64], system[-64:])
    found = _PREFIXES.get(probe)
    if found is None or found[0] != system:  # new, or another prompt with the same ends
        digest = hashlib.blake2b(model.encode("utf-8"), digest_size=8)
        out: List[Boundary] = []
        tokens = _walk_prefix(digest, out, None, system)
        if len(_PREFIXES) >= PREFIX_MEMO_SIZE:
            _PREFIXES.clear()
        _PREFIXES[probe] = found = (system, digest.copy(), tokens, tuple(out))
    _, state, tokens, bounds = found
    return state.copy(), tokens, list(bounds)


def _walk_prefix(digest: Any, out: List[Boundary], tools: Any, system: Any) -> int:
    """Tools then system into ``digest`` and ``out``; their tokens."""
    update, copy = digest.update, digest.copy
    tokens = 0
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            tokens += count_tokens(canonical(strip_cache_control(tool)))
            if isinstance(tool, list):
                continue  # not a block: counted, nothing to key or mark
            update(b"\x1etools\x1f")
            update(_content_bytes(tool))
            marker = tool.get("cache_control") if isinstance(tool, dict) else None
            out.append(Boundary(int.from_bytes(copy().digest(), "big"), tokens, ("tools", i),
                                isinstance(tool, dict), _ttl(marker), _nested_ttls(tool)))
    if isinstance(system, str):
        if system:
            tokens += SYSTEM_OVERHEAD + count_tokens(system)
            update(b"\x1esystem\x1f\x00text\x00")
            update(system.encode("utf-8", "surrogatepass"))
            out.append(Boundary(int.from_bytes(copy().digest(), "big"), tokens, ("system", 0),
                                True, None, ()))
    elif isinstance(system, list):
        for i, block in enumerate(system):
            tokens += (SYSTEM_OVERHEAD if i == 0 else 0) + block_tokens(block)
            if isinstance(block, list):
                continue
            update(b"\x1esystem\x1f")
            update(_content_bytes(block))
            marker = block.get("cache_control") if isinstance(block, dict) else None
            out.append(Boundary(int.from_bytes(copy().digest(), "big"), tokens, ("system", i),
                                _markable("system", block, False), _ttl(marker),
                                _nested_ttls(block)))
    return tokens


def _walk_messages(digest: Any, out: List[Boundary], tokens: int, messages: Any) -> int:
    """The messages' blocks into ``digest`` and ``out``; the tokens through them."""
    update, copy = digest.update, digest.copy
    for m, message in enumerate(messages if isinstance(messages, list) else ()):
        if not isinstance(message, dict):
            continue
        role = str(message.get("role"))
        section = role.encode("utf-8")
        update(b"\x1d" + section)  # a new message starts
        head = b"\x1e" + section + b"\x1f"
        content = message.get("content")
        if isinstance(content, str):  # a string prompt: what the general case below does
            tokens += MESSAGE_OVERHEAD + count_tokens(content)
            update(head + b"\x00text\x00")
            update(content.encode("utf-8", "surrogatepass"))
            out.append(Boundary(int.from_bytes(copy().digest(), "big"), tokens,
                                ("messages", m, 0), bool(content), None, ()))
            continue
        if not isinstance(content, list):  # an odd value
            tokens += MESSAGE_OVERHEAD + block_tokens(content or "")
            update(head)
            update(_content_bytes(content))
            out.append(Boundary(int.from_bytes(copy().digest(), "big"), tokens,
                                ("messages", m, 0),
                                _markable(role, content, isinstance(content, str)), None,
                                _nested_ttls(content)))
            continue
        if not content:
            tokens += MESSAGE_OVERHEAD  # an empty message: framing, nothing to key or mark
            continue
        for b, block in enumerate(content):
            text = block.get("text") if type(block) is dict else None
            if type(text) is str and block.get("type") == "text" \
                    and block.keys() <= _PLAIN_TEXT_KEYS:  # a plain text block, inline
                tokens += (MESSAGE_OVERHEAD if b == 0 else 0) + count_tokens(text)
                update(head + b"\x00text\x00")
                update(text.encode("utf-8", "surrogatepass"))
                out.append(Boundary(int.from_bytes(copy().digest(), "big"), tokens,
                                    ("messages", m, b), role == "tools" or bool(text),
                                    _ttl(block.get("cache_control")), ()))
                continue
            tokens += (MESSAGE_OVERHEAD if b == 0 else 0) + block_tokens(block)
            if isinstance(block, list):
                continue
            update(head)
            update(_content_bytes(block))
            marker = block.get("cache_control") if isinstance(block, dict) else None
            out.append(Boundary(int.from_bytes(copy().digest(), "big"), tokens,
                                ("messages", m, b), _markable(role, block, False),
                                _ttl(marker), _nested_ttls(block)))
    return tokens


def short_and_unmarked(params: Dict[str, Any], minimum: int) -> bool:
    """True when the whole prompt counts fewer than ``minimum`` tokens and carries no
    ``cache_control``: no prefix can be cached and none is the caller's, so the request
    is "too-short" without :func:`analyse` (most requests of a job whose shared prefix
    is short end here, at a few dict lookups each).

    Counts as :func:`claudebatch.tokens.iter_blocks` does, for the common shapes only
    (string or text-block prompts, images); any other shape answers False and the
    caller analyses. The total bounds the deepest prefix's tokens from above.
    """
    if "cache_control" in params or params.get("tools"):
        return False
    tokens = 0
    system = params.get("system")
    if isinstance(system, str):
        if system:
            tokens = SYSTEM_OVERHEAD + -(-len(system) // CHARS_PER_TOKEN)
    elif isinstance(system, list):
        if system:
            tokens = SYSTEM_OVERHEAD
        for block in system:
            if type(block) is not dict or "cache_control" in block or "content" in block \
                    or block.get("type") != "text":
                return False
            text = block.get("text")
            if type(text) is not str:
                return False
            tokens += -(-len(text) // CHARS_PER_TOKEN)
    elif system is not None:
        return False
    if tokens >= minimum:
        return False
    messages = params.get("messages")
    if type(messages) is not list:
        return False
    for message in messages:
        if type(message) is not dict:
            return False
        content = message.get("content")
        tokens += MESSAGE_OVERHEAD
        if type(content) is str:
            tokens += -(-len(content) // CHARS_PER_TOKEN)
        elif type(content) is list:
            for block in content:
                if type(block) is not dict or "cache_control" in block or "content" in block:
                    return False  # a caller's breakpoint, or one nested in the block
                kind = block.get("type")
                if kind == "text":
                    text = block.get("text")
                    if type(text) is not str:
                        return False
                    tokens += -(-len(text) // CHARS_PER_TOKEN)
                elif kind == "image":
                    tokens += MEDIA_TOKENS
                else:
                    return False
        else:
            return False
        if tokens >= minimum:
            return False
    return True
