"""Typed results build their message when first read (#19), and are BatchResults in every
way a caller can tell: equality, repr, pickling, copies, attrs.evolve, unstructure."""

from __future__ import annotations

import copy
import pickle
import random
from typing import Any, Dict, List

import attrs
import pytest

from claudebatch import BatchResult, ResultsParseError, parse_result
from claudebatch._lazy import LazyBatchResult, plain_message
from claudebatch._serde import structure_result as build_whole
from claudebatch._serde import unstructure


def _message(rng: random.Random) -> Dict[str, Any]:
    content: List[Dict[str, Any]] = [{"type": "text", "text": "x" * rng.randrange(0, 50)}
                                     for _ in range(rng.randrange(0, 3))]
    if rng.random() < 0.2:
        content.append({"type": "text", "text": "cited", "citations": [{"type": "c"}]})
    if rng.random() < 0.2:
        content.append({"type": "tool_use", "id": "t", "name": "n", "input": {"a": 1}})
    if rng.random() < 0.1:
        content.append({"type": "future_block", "x": 1})
    usage: Any = {"input_tokens": rng.randrange(100), "output_tokens": rng.randrange(100)}
    if rng.random() < 0.3:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": 5}
    if rng.random() < 0.1:
        usage["server_tool_use"] = {"web_search_requests": 2}
    if rng.random() < 0.1:
        usage = rng.choice([None, {}])
    message: Dict[str, Any] = {"id": "msg", "model": "m", "content": content,
                               "stop_reason": rng.choice([None, "end_turn"]), "extra": 1}
    if usage is not None or rng.random() < 0.5:
        message["usage"] = usage
    return message


def test_a_lazy_result_is_a_batch_result_in_every_way_a_caller_can_tell() -> None:
    rng = random.Random(19)
    lazy_seen = 0
    for n in range(500):
        line = {"custom_id": f"r{n}", "result": {"type": "succeeded", "message": _message(rng)}}
        if rng.random() < 0.2:
            line["parsed"] = {"k": n}
        typed, whole = parse_result(line), build_whole(line)
        lazy_seen += isinstance(typed, LazyBatchResult)
        assert isinstance(typed, BatchResult)
        assert typed.type == "succeeded" and typed.custom_id == f"r{n}"
        assert typed.parsed == line.get("parsed")
        assert typed == whole and whole == typed and not typed != whole
        assert repr(typed) == repr(whole)
        assert unstructure(typed) == unstructure(whole)
        assert attrs.asdict(typed) == attrs.asdict(whole)
        for twin in (pickle.loads(pickle.dumps(typed)), copy.copy(typed), copy.deepcopy(typed),
                     attrs.evolve(typed, parsed="p")):
            assert type(twin) is BatchResult and twin == whole
        assert typed.result.message.text == whole.result.message.text
    assert lazy_seen > 250  # the common shape takes the lazy path


def test_a_lazy_result_builds_its_message_once_and_only_when_read() -> None:
    line = {"custom_id": "a", "result": {"type": "succeeded", "message": {
        "id": "m", "model": "x", "content": [{"type": "text", "text": "hi"}]}}}
    typed = parse_result(line)
    assert isinstance(typed, LazyBatchResult)
    assert (typed.custom_id, typed.type) == ("a", "succeeded")
    slot = BatchResult.__dict__["result"]
    with pytest.raises(AttributeError):
        slot.__get__(typed, BatchResult)  # not built by custom_id and type
    first = typed.result
    assert typed.result is first and first.message.text == "hi"


@pytest.mark.parametrize("message", [
    {"model": "x", "content": []},                              # no id
    {"id": "m", "model": "x", "content": [{"type": "text"}]},   # a text block without text
    {"id": "m", "model": "x", "content": [{"type": "tool_use"}]},
    {"id": "m", "model": "x", "content": "hi"},
    {"id": "m", "model": "x", "content": [], "usage": [1]},
    {"id": "m", "model": "x", "content": [], "usage": {"cache_creation": 5}},
    "not an object",
])
def test_a_malformed_message_is_still_refused_where_it_is_read(message: Any) -> None:
    assert not plain_message(message)
    with pytest.raises(ResultsParseError, match="custom_id 'bad'"):
        parse_result({"custom_id": "bad", "result": {"type": "succeeded", "message": message}})


def test_a_built_result_lets_go_of_its_json_and_threads_reading_it_agree() -> None:
    import threading

    line = {"custom_id": "a", "result": {"type": "succeeded", "message": {
        "id": "m", "model": "x", "content": [{"type": "text", "text": "hi"}]}}}
    for _ in range(200):
        typed = parse_result(line)
        seen: List[Any] = []
        threads = [threading.Thread(target=lambda t=typed, s=seen: s.append(t.result))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 4 and all(found == seen[0] for found in seen)
        with pytest.raises(AttributeError):
            typed._message  # noqa: B018 - dropped once built
