"""The emulator writes requests and results with orjson when installed (#19): the same
text json writes, Infinity and NaN included."""

from __future__ import annotations

import copy
import json
import math
import random
from typing import Any, Iterator

import pytest

from claudebatch import _json
from claudebatch.emulator import fastjson, results


def _std(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _values(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randrange(-2**70, 2**70)
    if kind == 2:
        return rng.choice([0.5, 1e-7, 3.14159, -2.5e-12, 1e300, math.inf, -math.inf, math.nan])
    if kind in (3, 4, 5):
        return "".join(chr(rng.choice([1, 10, 34, 92, 0x41, 0xE9, 0x2028, 0x1F600]))
                       for _ in range(rng.randrange(6)))
    if kind in (6, 7):
        return [_values(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}": _values(rng, depth + 1) for i in range(rng.randrange(4))}


def _many(seed: int) -> Iterator[Any]:
    rng = random.Random(seed)
    for _ in range(2000):
        yield _values(rng)


@pytest.mark.skipif(_json.fast_dumps is None, reason="orjson is not installed")
def test_encode_writes_what_json_writes_infinity_and_nan_included() -> None:
    for value in _many(19):
        assert fastjson.encode(value) == _std(value)


@pytest.mark.skipif(_json.fast_dumps is None, reason="orjson is not installed")
def test_a_result_line_is_the_same_with_and_without_orjson() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
               "content": [{"type": "text", "text": "é\u2028\x01 ok"},
                           {"type": "tool_use", "id": "t", "name": "n",
                            "input": {"x": math.inf, "y": 1e-7}}],
               "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 3, "output_tokens": 4}}
    text_only = dict(message, content=message["content"][:1])
    lines = {}
    try:
        for backend in (None, "orjson"):
            _json.use(backend)
            lines[backend] = [results._dump_message("a", copy.deepcopy(m))
                              for m in (message, text_only)]
    finally:
        _json.use("orjson")
    assert lines[None] == lines["orjson"]
    assert b'"x":Infinity' in lines[None][0]


@pytest.mark.skipif(_json.fast_loads is None, reason="orjson is not installed")
def test_decode_reads_what_json_reads_long_integers_and_infinity_included() -> None:
    for value in _many(20):
        text = _std(value).encode()
        got, want = fastjson.decode(text), json.loads(text)
        assert repr(got) == repr(want)  # repr: NaN is not equal to itself
