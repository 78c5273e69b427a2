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
from collections import abc
from typing import Any, Callable, Dict, Mapping, Optional, Set, Tuple

import attrs

from claudebatch import Request
from claudebatch.apirules import output_format
from claudebatch.tokens import (
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
        uncached, write_5m, write_1h, expected_5m, expected_1h, read = self.counts(params, seen)
        worst = InputSplit(uncached, write_5m, write_1h)
        if seen is None:
            return worst, worst
        return worst, InputSplit(uncached, expected_5m, expected_1h, read)

    def counts(self, params: Mapping[str, Any], seen: Optional[Set[bytes]] = None
               ) -> Tuple[int, int, int, int, int, int]:
        """:meth:`splits` as plain ints, for the estimate of every request of a job:
        ``(uncached, write_5m, write_1h, expected write_5m, expected write_1h, expected
        read)``; without ``seen`` the expected case is the worst.

        The blocks are walked once; prefixes are hashed only when the request has a
        breakpoint, and only as far as one is.
        """
        if type(params) is not dict:
            params = dict(params)
        if self._scale == 1:
            plain = _plain_prompt_tokens(params)
            if plain is not None:  # text alone, nothing cached: no walk
                return (plain, 0, 0, 0, 0, 0)
        tools = params.get("tools")
        pending = TOOLS_OVERHEAD if isinstance(tools, list) and tools else 0
        if "output_config" in params or "output_format" in params:
            pending += self.format_tokens(params)
        blocks = list(iter_blocks(params))
        tokens = [self.block_tokens(block) for block in blocks]
        marks = [i for i, block in enumerate(blocks) if _is_mapping(block.cache_control)]
        automatic = params.get("cache_control")
        if not _is_mapping(automatic):
            if not marks:  # nothing is cached: the common case
                return (pending + sum(tokens), 0, 0, 0, 0, 0)
            automatic = None
        written = {"5m": 0, "1h": 0}
        expected = {"5m": 0, "1h": 0, "read": 0}
        digest = None
        if seen is not None:
            digest = hashlib.blake2b(str(params.get("model")).encode(), digest_size=16)
        # past the last breakpoint a digest is used only by automatic caching
        hashed = len(blocks) if automatic is not None else marks[-1] + 1
        for i, block in enumerate(blocks):
            count = tokens[i]
            pending += count
            if digest is not None and i < hashed:
                digest.update(f"\x1e{block.section}\x1f{count}\x1f".encode())
                digest.update(_content_bytes(block.value))
            cache_control = block.cache_control
            if cache_control is not None and _is_mapping(cache_control):
                ttl = _ttl(cache_control)
                written[ttl] += pending
                if digest is not None and seen is not None:
                    expected[_remember(seen, digest.digest()) or ttl] += pending
                pending = 0
        if automatic is not None and pending:
            # Automatic caching puts a breakpoint on the last block: all of it is written.
            ttl = _ttl(automatic)
            written[ttl] += pending
            if digest is not None and seen is not None:
                expected[_remember(seen, digest.digest()) or ttl] += pending
            pending = 0
        if seen is None:
            return (pending, written["5m"], written["1h"], written["5m"], written["1h"], 0)
        return (pending, written["5m"], written["1h"], expected["5m"], expected["1h"],
                expected["read"])

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
        if self._scale == 1 and (type(value) is str or type(value) is list or (
                type(value) is dict and value.get("type") != "document")):
            return block.tokens  # no PDF: the shared rule's count (the common case, quick)
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


#: Parameters that add input or cache some: a request with one of them is walked.
_NOT_PLAIN = frozenset({"tools", "cache_control", "output_config", "output_format"})


def _plain_prompt_tokens(params: Dict[str, Any]) -> Optional[int]:
    """The input tokens of a prompt of text alone with nothing cached (a system string,
    messages whose content is a string), counted as :func:`iter_blocks` counts them
    (framing, then ``count_tokens`` of each string); None for any other prompt, which
    is walked block by block."""
    if not _NOT_PLAIN.isdisjoint(params):
        return None
    system = params.get("system")
    total = 0
    if type(system) is str:
        if system:
            total = SYSTEM_OVERHEAD + count_tokens(system)
    elif system is not None:
        return None
    messages = params.get("messages")
    if type(messages) is not list:
        return None
    for message in messages:
        content = message.get("content") if type(message) is dict else None
        if type(content) is not str:
            return None
        total += MESSAGE_OVERHEAD + count_tokens(content)
    return total


def _is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, quick for what JSON holds (None, dict)."""
    return value is not None and (type(value) is dict or isinstance(value, abc.Mapping))


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
    if _is_mapping(value) and value.get("type") == "text" and value.keys() <= _PLAIN_TEXT:
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


def _std_loads(data: bytes) -> Any:
    return json.loads(data)


def _orjson_loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # what orjson will not read (an integer past 64 bits)
        return json.loads(data)


try:
    import orjson
except ImportError:  # pragma: no cover - the standard library reads the same
    loads_request: Callable[[bytes], Any] = _std_loads
else:
    loads_request = _orjson_loads


def request_params(item: Any) -> Dict[str, Any]:
    """The params of a Request or of a ``{"custom_id", "params"}`` dict."""
    params: Any
    if type(item) is Request:
        params = item.params
    else:
        params = item.get("params") if isinstance(item, abc.Mapping) \
            else getattr(item, "params", None)
    return params if isinstance(params, dict) else {}
