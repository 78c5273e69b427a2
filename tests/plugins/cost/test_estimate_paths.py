"""The estimate's quick paths (a prompt of text alone is not walked; prefixes are hashed
only when a breakpoint needs them; plain ints, no objects) give what walking every block
of every request gave: checked against that walk, kept here as it was, on varied prompts."""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import pytest
from claudebatch_cost import CostTracker, Estimator
from claudebatch_cost.estimate import _Key, _ModelTally
from claudebatch_cost.tokens import (
    TOOLS_OVERHEAD,
    Approximator,
    InputSplit,
    _base64_data,
    _content_bytes,
    _is_media,
    _plain_prompt_tokens,
    _remember,
    _ttl,
    request_params,
    web_search_uses,
)

from claudebatch import Request
from claudebatch.tokens import Block, block_tokens, iter_blocks


def walked_block_tokens(approx: Approximator, block: Block) -> int:
    """The block's tokens as every block was counted before."""
    value = block.value
    pdf = _base64_data(value)
    if pdf is None and approx._scale == 1:
        return block.tokens
    content = block_tokens(value) if value else 0
    framing = block.tokens - content
    if pdf is not None:
        return framing + max(1600, math.ceil(len(pdf) / approx.chars_per_token))
    if _is_media(value):
        return block.tokens
    return framing + math.ceil(content * approx._scale)


def walked_splits(approx: Approximator, params: Mapping[str, Any],
                  seen: Optional[Set[bytes]] = None) -> Tuple[InputSplit, InputSplit]:
    """``Approximator.splits`` as it was: every block walked and hashed."""
    tools = params.get("tools")
    pending = TOOLS_OVERHEAD if isinstance(tools, list) and tools else 0
    pending += approx.format_tokens(params)
    written = {"5m": 0, "1h": 0}
    expected = {"5m": 0, "1h": 0, "read": 0}
    digest = None
    if seen is not None:
        digest = hashlib.blake2b(str(params.get("model")).encode(), digest_size=16)
    for block in iter_blocks(params if isinstance(params, dict) else dict(params)):
        tokens = walked_block_tokens(approx, block)
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
        ttl = _ttl(automatic)
        written[ttl] += pending
        if digest is not None and seen is not None:
            expected[_remember(seen, digest.digest()) or ttl] += pending
        pending = 0
    worst = InputSplit(pending, written["5m"], written["1h"])
    if seen is None:
        return worst, worst
    return worst, InputSplit(pending, expected["5m"], expected["1h"], expected["read"])


def walked_tallies(estimator: Estimator, requests: List[Request]) -> Dict[_Key, _ModelTally]:
    """Each request walked and tallied as before (one object per tally, by name)."""
    seen: Set[bytes] = set()
    tallies: Dict[_Key, _ModelTally] = {}
    for item in requests:
        params = request_params(item)
        model = str(params.get("model") or "")
        worst, expected = walked_splits(estimator.approximator, params, seen)
        geo = params.get("inference_geo")
        price = estimator.table.lookup(model)
        tier = price.long_prompt if price is not None else None
        prompt = worst.uncached + worst.write_5m + worst.write_1h
        key = (model, geo if isinstance(geo, str) else "", bool(tier and prompt > tier.above))
        tally = tallies.setdefault(key, [0] * 10)
        max_tokens = params.get("max_tokens")
        for i, more in enumerate((
                1, worst.uncached, worst.write_5m, worst.write_1h,
                max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 0,
                web_search_uses(params, estimator.default_web_searches), expected.uncached,
                expected.write_5m, expected.write_1h, expected.read)):
            tally[i] += more
    return tallies


SYSTEMS = ["You label tickets. " * 30, "", None, 7,
           [{"type": "text", "text": "Rules. " * 200, "cache_control": {"type": "ephemeral"}}],
           [{"type": "text", "text": "Short rules."},
            {"type": "text", "text": "Long " * 500, "cache_control": {"type": "ephemeral",
                                                                      "ttl": "1h"}}]]
TOOLS = [{"name": "label", "description": "the label", "input_schema": {"type": "object"}},
         {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
         {"type": "web_search_20250305", "name": "web_search"},
         {"name": "big", "input_schema": {"type": "object", "properties": {"a": {}}},
          "cache_control": {"type": "ephemeral"}}]
PDF = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                      "data": "JVBERi0" * 3000}}
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}


def content(rng: random.Random, i: int) -> Any:
    kind = rng.random()
    if kind < 0.5:
        return f"Ticket {i}: it fails again on page {i % 7}. " * rng.randint(0, 30)
    blocks: List[Any] = [{"type": "text", "text": "Context " * rng.randint(0, 400)}]
    if rng.random() < 0.3:
        blocks.append(rng.choice([PDF, IMAGE, {"type": "document", "source": {
            "type": "text", "media_type": "text/plain", "data": "doc " * 100}}]))
    if rng.random() < 0.3:
        blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    if rng.random() < 0.05:
        blocks = []
    return blocks


def random_params(rng: random.Random, i: int) -> Dict[str, Any]:
    params: Dict[str, Any] = {
        "model": rng.choice(["claude-haiku-4-5", "claude-haiku-5-5", "claude-opus-9", None]),
        "max_tokens": rng.choice([256, 0, -1, True, "9", 64_000])}
    system = rng.choice(SYSTEMS)
    if system is not None:
        params["system"] = system
    turns = rng.randint(0, 3)
    messages: List[Any] = [{"role": "user" if t % 2 == 0 else "assistant",
                            "content": content(rng, i)} for t in range(turns)]
    if rng.random() < 0.03:
        messages.append("not a message")
    params["messages"] = messages
    if rng.random() < 0.2:
        params["tools"] = rng.sample(TOOLS, rng.randint(0, 3))
    if rng.random() < 0.1:
        params["cache_control"] = rng.choice([{"type": "ephemeral"}, {"ttl": "1h"}, None])
    if rng.random() < 0.05:
        params["output_config"] = {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"label": {"type": "string"}}}}}
    if rng.random() < 0.1:
        params["inference_geo"] = rng.choice(["us", "global"])
    if rng.random() < 0.05:  # a long prompt: Haiku 5.5's higher tier
        params["messages"] = [{"role": "user", "content": "x" * 410_000}]
    return params


@pytest.mark.parametrize("chars_per_token", [4.0, 2.5])
def test_each_request_splits_as_walking_every_block_did(chars_per_token: float) -> None:
    rng = random.Random(int(chars_per_token * 10))
    approx = Approximator(chars_per_token)
    seen_now: Set[bytes] = set()
    seen_before: Set[bytes] = set()
    for i in range(3000):
        params = random_params(rng, i)
        assert approx.splits(params) == walked_splits(approx, params), params
        assert approx.splits(params, seen_now) == walked_splits(approx, params, seen_before)
        assert seen_now == seen_before  # the same prefixes remembered


@pytest.mark.parametrize("chars_per_token", [4.0, 3.0])
def test_a_whole_estimate_is_what_walking_each_request_gave(chars_per_token: float) -> None:
    rng = random.Random(5)
    requests = [Request(f"r{i}", random_params(rng, i)) for i in range(2000)]
    estimator = CostTracker(chars_per_token=chars_per_token).estimator
    found, approximate = estimator.estimate(requests, seen=set())
    assert found == approximate
    assert found == estimator._price(walked_tallies(estimator, requests), counted=False)
    assert found.unknown_requests and found.web_searches and found.expected_cache_read_tokens


def test_a_prompt_of_text_alone_is_counted_as_its_blocks_are() -> None:
    rng = random.Random(8)
    plain = 0
    for i in range(3000):
        params = random_params(rng, i)
        total = _plain_prompt_tokens(params)
        if total is not None:
            plain += 1
            assert total == sum(block.tokens for block in iter_blocks(params)), params
    assert plain > 300  # the quick path was taken often enough to mean something
