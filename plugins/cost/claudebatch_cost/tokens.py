"""How many input tokens a request will be billed for, before it is sent.

The fast way is the core's approximation (:mod:`claudebatch.tokens`: the rule the
emulator's usage and the cache plugin's placement follow too), walked in the order
the service caches the prompt (tools, system, messages). What is this plugin's own:

- the split of those tokens into plain input, cache writes per TTL and cache reads,
  following the ``cache_control`` breakpoints along the walk. In the worst case
  everything up to a breakpoint is a cache write at that breakpoint's TTL (a write
  costs more than plain input; a hit, or a prefix too short to cache, costs less).
  The expected case counts a prefix seen before (same model, same content up to the
  breakpoint) as a cache read;
- what the real API bills that the shared approximation leaves out, so a worst case
  stays an upper bound: the tool-use system prompt the service adds when tools are
  given (the emulator adds none), and a base64 PDF's data length where the shared
  rule counts one page;
- ``chars_per_token`` other than 4 rescales the text of each block.

The exact way asks the free token-counting endpoint (``POST
/v1/messages/count_tokens``), one call per request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any, Dict, Mapping, Optional, Set, Tuple

import attrs

from claudebatch.apirules import output_format
from claudebatch.tokens import (
    CHARS_PER_TOKEN,
    MEDIA_TOKENS,
    Block,
    block_tokens,
    canonical,
    iter_blocks,
    strip_cache_control,
)

logger = logging.getLogger("claudebatch.cost")

#: The system prompt the API adds when tools are given: 159 to 530 tokens depending on
#: the model and tool_choice (Anthropic's tool-use pricing page); billed as input.
TOOLS_OVERHEAD = 350


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
        self._scale = CHARS_PER_TOKEN / self.chars_per_token

    def split(self, params: Mapping[str, Any]) -> InputSplit:
        """The worst case: every cached prefix written."""
        return self.splits(params)[0]

    def splits(self, params: Mapping[str, Any], seen: Optional[Set[bytes]] = None
               ) -> Tuple[InputSplit, InputSplit]:
        """``(worst, expected)``. Worst: every prefix up to a breakpoint is a cache write.
        Expected: a prefix already in ``seen`` (same model, same content up to the
        breakpoint) is a cache read instead; new prefixes are added to ``seen``."""
        tools = params.get("tools")
        pending = TOOLS_OVERHEAD if isinstance(tools, list) and tools else 0
        pending += self.format_tokens(params)
        written = {"5m": 0, "1h": 0}
        expected = {"5m": 0, "1h": 0, "read": 0}
        digest = None
        if seen is not None:
            digest = hashlib.blake2b(str(params.get("model")).encode(), digest_size=16)
        for block in iter_blocks(params if isinstance(params, dict) else dict(params)):
            tokens = self.block_tokens(block)
            pending += tokens
            if digest is not None:
                digest.update(f"\x1e{block.section}\x1f{tokens}\x1f".encode())
                digest.update(_content_bytes(block.value))
            if isinstance(block.cache_control, Mapping):
                ttl = _ttl(block.cache_control)
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

    def format_tokens(self, params: Mapping[str, Any]) -> int:
        """The input an output format adds: the service explains the schema in a system
        prompt of its own; counted as the schema's JSON, an approximation."""
        fmt = output_format(params)
        if not isinstance(fmt, Mapping):
            return 0
        text = json.dumps(fmt.get("schema"), separators=(",", ":"), ensure_ascii=False)
        return math.ceil(len(text) / self.chars_per_token)

    def block_tokens(self, block: Block) -> int:
        """Tokens of one block of the walk (its framing included)."""
        value = block.value
        pdf = _base64_data(value)
        if pdf is None and self._scale == 1:
            return block.tokens
        content = block_tokens(value) if value else 0
        framing = block.tokens - content
        if pdf is not None:  # its size is all we know without parsing it: an overestimate
            return framing + max(MEDIA_TOKENS, math.ceil(len(pdf) / self.chars_per_token))
        if _is_media(value):
            return block.tokens
        return framing + math.ceil(content * self._scale)


def _is_media(value: Any) -> bool:
    """An image, or a document that is not text: a fixed count whatever the ratio."""
    if not isinstance(value, Mapping):
        return False
    source = value.get("source")
    return value.get("type") == "image" or (
        value.get("type") == "document"
        and not (isinstance(source, Mapping) and source.get("type") in ("text", "content")))


def _base64_data(value: Any) -> Optional[str]:
    """The data of a base64 document (a PDF), which the shared rule counts as one page."""
    if not isinstance(value, Mapping) or value.get("type") != "document":
        return None
    source = value.get("source")
    if not isinstance(source, Mapping) or source.get("type") != "base64":
        return None
    data = source.get("data")
    return data if isinstance(data, str) else None


_PLAIN_TEXT = frozenset({"type", "text", "cache_control"})


def _content_bytes(value: Any) -> bytes:
    """What identifies a block's content in a cache prefix (not its cache_control)."""
    if isinstance(value, Mapping) and value.get("type") == "text" and set(value) <= _PLAIN_TEXT:
        value = str(value.get("text", ""))
    if isinstance(value, str):
        return b"\x00" + value.encode("utf-8", "surrogatepass")
    return canonical(strip_cache_control(value)).encode("utf-8", "surrogatepass")


def _remember(seen: Set[bytes], key: bytes) -> Optional[str]:
    """"read" if the prefix was seen before; else remember it (within a bound)."""
    if key in seen:
        return "read"
    if len(seen) < MAX_REMEMBERED_PREFIXES:
        seen.add(key)
    return None


class TokenCountingEndpoint:
    """Exact input tokens from ``POST /v1/messages/count_tokens`` (free, rate limited).

    Through the client's ``count_tokens`` (its key, base URL, retries). A request the
    endpoint refuses falls back to the approximation, with one warning.
    """

    def __init__(self, client: Any):
        self.client = client
        self.calls = 0
        self.failures = 0

    def count(self, params: Mapping[str, Any]) -> Optional[int]:
        self.calls += 1
        try:
            return int(self.client.count_tokens(dict(params)))
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
