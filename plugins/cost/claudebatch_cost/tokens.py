"""How many input tokens a request will be billed for, before it is sent.

The fast way approximates: characters / ``chars_per_token`` (4) over the text
of the tools, system prompt and messages, with a fixed allowance for images,
per-message framing and the tool-use system prompt. The exact way asks the
free token-counting endpoint (``POST /v1/messages/count_tokens``), one call
per request.

The prompt is walked in the order the service caches it (tools, system,
messages). In the worst case everything up to a ``cache_control`` breakpoint
is a cache write at that breakpoint's TTL (a write costs more than plain
input; a hit, or a prefix too short to cache, costs less). The expected case
counts a prefix seen before (same model, same content up to the breakpoint)
as a cache read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any, Dict, Iterator, Mapping, Optional, Set, Tuple

import attrs

logger = logging.getLogger("claudebatch.cost")

CHARS_PER_TOKEN = 4.0
#: Role markers around each message, and around the system prompt.
MESSAGE_OVERHEAD = 4
SYSTEM_OVERHEAD = 4
#: The system prompt the API adds when tools are given (a few hundred tokens).
TOOLS_OVERHEAD = 350
#: An image (or a non-text document page) after the service's resizing: at most ~1,600.
IMAGE_TOKENS = 1600
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
#: The params the token-counting endpoint takes.
COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


@attrs.frozen
class InputSplit:
    """Input tokens of one request: plain, written to the cache per TTL, read from it."""

    uncached: int = 0
    write_5m: int = 0
    write_1h: int = 0
    read: int = 0

    @property
    def total(self) -> int:
        return self.uncached + self.write_5m + self.write_1h + self.read

    def scaled_to(self, total: int) -> InputSplit:
        """The same shares over an exact ``total`` (from the token-counting endpoint)."""
        if self.total <= 0:
            return InputSplit(uncached=total)
        write_5m = round(self.write_5m * total / self.total)
        write_1h = round(self.write_1h * total / self.total)
        read = round(self.read * total / self.total)
        return InputSplit(max(0, total - write_5m - write_1h - read), write_5m, write_1h, read)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, Mapping) and "cache_control" in value:
        return {k: v for k, v in value.items() if k != "cache_control"}
    return value


def _ttl(cache_control: Mapping[str, Any]) -> str:
    return "1h" if cache_control.get("ttl") == "1h" else "5m"


#: Prompt prefixes remembered for the expected estimate (a bound on memory).
MAX_REMEMBERED_PREFIXES = 1_000_000


class Approximator:
    """Input tokens from characters; cheap enough for every request of a large job."""

    def __init__(self, chars_per_token: float = CHARS_PER_TOKEN):
        if chars_per_token <= 0:
            raise ValueError(f"chars_per_token must be > 0, got {chars_per_token}")
        self.chars_per_token = float(chars_per_token)

    def tokens(self, chars: int) -> int:
        return math.ceil(chars / self.chars_per_token) if chars > 0 else 0

    def split(self, params: Mapping[str, Any]) -> InputSplit:
        """The worst case: every cached prefix written."""
        return self.splits(params)[0]

    def splits(self, params: Mapping[str, Any], seen: Optional[Set[bytes]] = None
               ) -> Tuple[InputSplit, InputSplit]:
        """``(worst, expected)``. Worst: every prefix up to a breakpoint is a cache write.
        Expected: a prefix already in ``seen`` (same model, same content up to the
        breakpoint) is a cache read instead; new prefixes are added to ``seen``."""
        pending = 0
        written = {"5m": 0, "1h": 0}
        expected = {"5m": 0, "1h": 0, "read": 0}
        digest = None
        if seen is not None:
            digest = hashlib.blake2b(str(params.get("model")).encode(), digest_size=16)
        for tokens, cache_control, fingerprint in self._pieces(params):
            pending += tokens
            if digest is not None:
                digest.update(fingerprint.encode("utf-8", "surrogatepass") + b"\x00")
            if isinstance(cache_control, Mapping):
                ttl = _ttl(cache_control)
                written[ttl] += pending
                if digest is not None and seen is not None:
                    expected[_remember(seen, digest.digest()) or ttl] += pending
                pending = 0
        automatic = params.get("cache_control")
        if isinstance(automatic, Mapping) and pending:
            # Automatic caching puts a breakpoint on the last block: all of it is written.
            ttl = _ttl(automatic)
            written[ttl] += pending
            if digest is not None and seen is not None:
                expected[_remember(seen, digest.digest()) or ttl] += pending
            pending = 0
        worst = InputSplit(pending, written["5m"], written["1h"])
        if seen is None:
            return worst, worst
        return worst, InputSplit(pending, expected["5m"], expected["1h"], expected["read"])

    def _pieces(self, params: Mapping[str, Any]) -> Iterator[Tuple[int, Any, str]]:
        """``(tokens, cache_control, content)`` of each piece, in cache-prefix order."""
        tools = params.get("tools")
        if isinstance(tools, list) and tools:
            yield TOOLS_OVERHEAD, None, "tools"
            for tool in tools:
                cache_control = tool.get("cache_control") if isinstance(tool, Mapping) else None
                text = _canonical(_without_cache_control(tool))
                yield self.tokens(len(text)), cache_control, text
        system = params.get("system")
        if isinstance(system, str) and system:
            yield SYSTEM_OVERHEAD + self.tokens(len(system)), None, system
        elif isinstance(system, list) and system:
            yield SYSTEM_OVERHEAD, None, "system"
            for block in system:
                yield self.block_tokens(block), _cache_control(block), _fingerprint(block)
        for message in params.get("messages") or ():
            if not isinstance(message, Mapping):
                continue
            yield MESSAGE_OVERHEAD, None, str(message.get("role"))
            content = message.get("content")
            if isinstance(content, str):
                yield self.tokens(len(content)), None, content
            elif isinstance(content, list):
                for block in content:
                    yield self.block_tokens(block), _cache_control(block), _fingerprint(block)

    def block_tokens(self, block: Any) -> int:
        """Tokens of one content block (or a bare string)."""
        if isinstance(block, str):
            return self.tokens(len(block))
        if not isinstance(block, Mapping):
            return self.tokens(len(_canonical(block)))
        kind = block.get("type")
        if kind == "text":
            return self.tokens(len(str(block.get("text", ""))))
        if kind == "image":
            return IMAGE_TOKENS
        if kind == "document":
            return self._document_tokens(block)
        if kind in ("tool_use", "server_tool_use"):
            return self.tokens(len(str(block.get("name", ""))) + len(_canonical(
                block.get("input", {}))))
        if kind == "tool_result":
            content = block.get("content", "")
            if isinstance(content, list):
                return 2 + sum(self.block_tokens(b) for b in content)
            return 2 + self.block_tokens(content)
        if kind == "thinking":
            return self.tokens(len(str(block.get("thinking", ""))))
        return self.tokens(len(_canonical(_without_cache_control(block))))

    def _document_tokens(self, block: Mapping[str, Any]) -> int:
        source = block.get("source")
        if not isinstance(source, Mapping):
            return IMAGE_TOKENS
        if source.get("type") == "text":
            return self.tokens(len(str(source.get("data", ""))))
        if source.get("type") == "content":
            content = source.get("content")
            if isinstance(content, list):
                return sum(self.block_tokens(b) for b in content)
            return self.block_tokens(content)
        data = source.get("data")
        if isinstance(data, str):
            # A base64 PDF: its size is all we know without parsing it; this overestimates.
            return max(IMAGE_TOKENS, self.tokens(len(data)))
        return IMAGE_TOKENS  # a URL or file id: one page's worth, at least


def _cache_control(block: Any) -> Any:
    return block.get("cache_control") if isinstance(block, Mapping) else None


_PLAIN_TEXT = frozenset({"type", "text", "cache_control"})


def _fingerprint(block: Any) -> str:
    """What identifies a block's content in a cache prefix (not its cache_control)."""
    if isinstance(block, str):
        return block
    if isinstance(block, Mapping) and block.get("type") == "text" and set(block) <= _PLAIN_TEXT:
        return "text:" + str(block.get("text", ""))
    return _canonical(_without_cache_control(block))


def _remember(seen: Set[bytes], key: bytes) -> Optional[str]:
    """"read" if the prefix was seen before; else remember it (within a bound)."""
    if key in seen:
        return "read"
    if len(seen) < MAX_REMEMBERED_PREFIXES:
        seen.add(key)
    return None


class TokenCountingEndpoint:
    """Exact input tokens from ``POST /v1/messages/count_tokens`` (free, rate limited).

    Uses the client's own transport (its key, base URL, retries). A request the
    endpoint refuses falls back to the approximation, with one warning.
    """

    def __init__(self, client: Any):
        self.transport = client.transport
        self.calls = 0
        self.failures = 0

    def count(self, params: Mapping[str, Any]) -> Optional[int]:
        body = {k: params[k] for k in COUNT_FIELDS if k in params}
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self.calls += 1
        try:
            answer = self.transport.json("POST", COUNT_TOKENS_PATH, body=lambda: data)
            return int(answer["input_tokens"])
        except Exception as exc:  # any refusal: the approximation still stands
            self.failures += 1
            if self.failures == 1:
                logger.warning("token counting failed (%s); using the approximation for "
                               "requests it cannot count", exc)
            return None


def web_search_uses(params: Mapping[str, Any], default: int) -> int:
    """Searches a request may make: each web-search tool's ``max_uses`` (else ``default``)."""
    searches = 0
    for tool in params.get("tools") or ():
        if isinstance(tool, Mapping) and str(tool.get("type", "")).startswith("web_search"):
            max_uses = tool.get("max_uses")
            searches += max_uses if isinstance(max_uses, int) and max_uses >= 0 else default
    return searches


def request_params(item: Any) -> Dict[str, Any]:
    """The params of a Request or of a ``{"custom_id", "params"}`` dict."""
    params = item.get("params") if isinstance(item, Mapping) else getattr(item, "params", None)
    return params if isinstance(params, dict) else {}
