"""The deterministic stand-in model: answers, token counts, stop reasons, prompt caching."""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Dict, List

import pytest

from claudebatch.emulator import Emulator, ManualClock

if TYPE_CHECKING:
    from conftest import Api

Req = Callable[..., Dict[str, Any]]
LONG = "The quick brown fox jumps over the lazy dog. " * 120  # 5,400 chars: 1,350 tokens


def run(api: Api, clock: ManualClock, requests_: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Submit, let it finish, and return ``{custom_id: message-or-result}``."""
    batch = api.create(requests_)
    clock.advance(3600)
    out: Dict[str, Any] = {}
    for line in api.results(batch["id"]):
        result = line["result"]
        out[line["custom_id"]] = result["message"] if result["type"] == "succeeded" else result
    return out


def text_of(message: Dict[str, Any]) -> str:
    return "".join(b["text"] for b in message["content"] if b["type"] == "text")


def test_answers_are_deterministic_and_derived_from_the_prompt(
    api: Api, clock: ManualClock, req: Req
) -> None:
    first = run(api, clock, [req("a", "What is 2+2?"), req("b", "Name a colour.")])
    second = run(api, clock, [req("x", "What is 2+2?")])
    assert text_of(first["a"]) == text_of(second["x"])
    assert text_of(first["a"]) != text_of(first["b"])
    assert "What is 2+2?" in text_of(first["a"])
    assert first["a"]["id"] != second["x"]["id"]
    assert re.fullmatch(r"msg_[0-9A-Za-z]{24}", first["a"]["id"])


def test_token_counts_follow_one_tokenizer(api: Api, clock: ManualClock, req: Req) -> None:
    out = run(api, clock, [req("a", "x" * 400), req("b", "x" * 401), req("c", "x" * 800)])
    # ceil(chars / 4), plus 3 tokens of framing per message
    assert [out[k]["usage"]["input_tokens"] for k in "abc"] == [103, 104, 203]
    for message in out.values():
        assert message["usage"]["output_tokens"] == -(-len(text_of(message)) // 4)
        assert message["usage"]["service_tier"] == "batch"


def test_answer_is_cut_at_max_tokens(api: Api, clock: ManualClock, req: Req) -> None:
    message = run(api, clock, [req("a", max_tokens=5)])["a"]
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 5 and len(text_of(message)) == 20


def test_answer_length_is_configurable(make_emulator: Callable[..., Emulator],
                                       make_api: Callable[..., Api], clock: ManualClock,
                                       req: Req) -> None:
    api = make_api(make_emulator(answer_tokens=(50, 50)))
    out = run(api, clock, [req(f"r{i}", f"q{i}", max_tokens=1000) for i in range(5)])
    for message in out.values():
        assert message["stop_reason"] == "end_turn"
        assert message["usage"]["output_tokens"] == 50


def test_stop_sequence_cuts_the_answer(make_emulator: Callable[..., Emulator],
                                       make_api: Callable[..., Api], clock: ManualClock,
                                       req: Req) -> None:
    api = make_api(make_emulator(answer_tokens=(400, 400)))
    message = run(api, clock, [req("a", stop_sequences=[". "])])["a"]
    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == ". "
    assert ". " not in text_of(message)


def test_forced_tool_choice_gives_tool_use(api: Api, clock: ManualClock, req: Req) -> None:
    tools = [{"name": "get_weather", "description": "Weather for a city",
              "input_schema": {"type": "object", "required": ["city", "days"],
                               "properties": {"city": {"type": "string"},
                                              "days": {"type": "integer"}}}}]
    message = run(api, clock, [req("a", tools=tools, tool_choice={"type": "any"})])["a"]
    assert message["stop_reason"] == "tool_use"
    (block,) = message["content"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather"
    assert block["input"] == {"city": "emulated", "days": 0}
    assert block["id"].startswith("toolu_")


def test_thinking_gives_a_thinking_block_first(api: Api, clock: ManualClock, req: Req) -> None:
    message = run(api, clock, [req("a", max_tokens=4000,
                                   thinking={"type": "enabled", "budget_tokens": 2000})])["a"]
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]
    assert message["content"][0]["signature"]


def test_aliases_resolve_to_dated_snapshots(api: Api, clock: ManualClock, req: Req) -> None:
    out = run(api, clock, [req("a", model="claude-sonnet-4-5"), req("b", model="claude-opus-4-6"),
                           req("c", model="claude-3-5-haiku-20241022")])
    assert [out[k]["model"] for k in "abc"] == [
        "claude-sonnet-4-5-20250929", "claude-opus-4-6", "claude-3-5-haiku-20241022"]


# --- prompt caching ------------------------------------------------------------------


def cached_request(custom_id: str, question: str, ttl: str = "5m", **params: Any) -> Dict[str, Any]:
    marker: Dict[str, Any] = {"type": "ephemeral"}
    if ttl != "5m":
        marker["ttl"] = ttl
    body: Dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": [{"type": "text", "text": LONG, "cache_control": marker}],
        "messages": [{"role": "user", "content": question}],
    }
    body.update(params)
    return {"custom_id": custom_id, "params": body}


SYSTEM_TOKENS = 1350 + 3  # the text plus the system prompt's framing


def usage(message: Dict[str, Any]) -> Dict[str, Any]:
    return message["usage"]  # type: ignore[no-any-return]


def test_first_request_writes_the_cache_and_later_ones_read_it(
    api: Api, clock: ManualClock
) -> None:
    out = run(api, clock, [cached_request(f"r{i}", f"Question {i}") for i in range(6)])
    writes = [u for u in map(usage, out.values()) if u["cache_creation_input_tokens"]]
    reads = [u for u in map(usage, out.values()) if u["cache_read_input_tokens"]]
    assert len(writes) == 1 and len(reads) == 5
    (write,) = writes
    assert write["cache_creation_input_tokens"] == SYSTEM_TOKENS
    assert write["cache_creation"] == {"ephemeral_5m_input_tokens": SYSTEM_TOKENS,
                                       "ephemeral_1h_input_tokens": 0}
    for u in reads:
        assert u["cache_read_input_tokens"] == SYSTEM_TOKENS
        assert u["cache_creation_input_tokens"] == 0
    for message in out.values():  # the three always add up to the whole prompt
        u = usage(message)
        total = u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]
        assert total == SYSTEM_TOKENS + 3 + 3  # + "Question N" (3) + message framing (3)


def test_one_hour_ttl_is_reported_separately(api: Api, clock: ManualClock) -> None:
    out = run(api, clock, [cached_request("a", "Q", ttl="1h")])
    assert usage(out["a"])["cache_creation"] == {"ephemeral_5m_input_tokens": 0,
                                                 "ephemeral_1h_input_tokens": SYSTEM_TOKENS}


def test_cache_is_read_across_batches_within_the_ttl_and_written_again_after(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api], clock: ManualClock
) -> None:
    api = make_api(make_emulator(rate=1000.0))
    batch = api.create([cached_request("a", "Q1")])
    clock.advance(200)  # within 5 minutes of the write
    again = api.create([cached_request("b", "Q2")])
    clock.advance(200)
    assert usage(api.results(again["id"])[0]["result"]["message"])["cache_read_input_tokens"]
    clock.advance(301)  # past the TTL of the last use
    late = run(api, clock, [cached_request("c", "Q3")])
    assert usage(late["c"])["cache_read_input_tokens"] == 0
    assert usage(late["c"])["cache_creation_input_tokens"] == SYSTEM_TOKENS
    assert api.results(batch["id"])  # the first batch still reads back the same


def test_requests_in_flight_together_each_write_unless_a_primer_wrote_first(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api], clock: ManualClock
) -> None:
    """``cache_latency``: 10 requests/s, each in flight 0.5 s, so the first five of a
    group start before any write is done and each write; a prefix written by an
    earlier, ended batch is read by all of them."""
    api = make_api(make_emulator(rate=10.0, cache_latency=0.5))
    out = run(api, clock, [cached_request(f"r{i}", f"Question {i}") for i in range(12)])
    writes = [m for m in out.values() if usage(m)["cache_creation_input_tokens"]]
    reads = [m for m in out.values() if usage(m)["cache_read_input_tokens"] == SYSTEM_TOKENS]
    assert len(writes) == 5 and len(reads) == 7  # processed in a shuffled order

    primed = make_api(make_emulator(rate=10.0, cache_latency=0.5))
    primer = primed.create([cached_request("primer", "Q", max_tokens=1)])
    clock.advance(10)  # the primer batch ends; its write is there for the next batch
    assert primed.retrieve(primer["id"])["processing_status"] == "ended"
    after = run(primed, clock, [cached_request(f"r{i}", f"Question {i}") for i in range(12)])
    assert all(usage(m)["cache_read_input_tokens"] == SYSTEM_TOKENS for m in after.values())


def test_prefix_below_the_model_minimum_is_not_cached(api: Api, clock: ManualClock) -> None:
    # claude-opus-4-5 caches from 4,096 tokens; this prefix has 1,353
    out = run(api, clock, [cached_request(f"r{i}", "Q", model="claude-opus-4-5") for i in range(3)])
    for message in out.values():
        u = usage(message)
        assert u["cache_creation_input_tokens"] == 0 and u["cache_read_input_tokens"] == 0
        assert u["input_tokens"] == SYSTEM_TOKENS + 1 + 3


def test_hit_rate_makes_caching_best_effort(make_emulator: Callable[..., Emulator],
                                            make_api: Callable[..., Api],
                                            clock: ManualClock) -> None:
    api = make_api(make_emulator(cache_hit_rate=0.5))
    out = run(api, clock, [cached_request(f"r{i}", f"Q{i}") for i in range(200)])
    kinds = Counter("read" if usage(m)["cache_read_input_tokens"] else "write"
                    for m in out.values())
    assert 60 < kinds["read"] < 140 and kinds["write"] == 200 - kinds["read"]
    assert api.emu.cache_stats["reads"] == kinds["read"]

    never = make_api(make_emulator(cache_hit_rate=0.0))
    out = run(never, clock, [cached_request(f"r{i}", f"Q{i}") for i in range(10)])
    assert all(usage(m)["cache_read_input_tokens"] == 0 for m in out.values())


def test_longest_cached_prefix_is_read_and_the_rest_written(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api], clock: ManualClock
) -> None:
    api = make_api(make_emulator(cache_min_tokens=100))
    tools = [{"name": "lookup", "input_schema": {"type": "object"},
              "cache_control": {"type": "ephemeral"}}]

    def conversation(custom_id: str, doc: str, question: str) -> Dict[str, Any]:
        return {"custom_id": custom_id, "params": {
            "model": "claude-sonnet-4-5", "max_tokens": 50, "tools": tools,
            "system": [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": doc, "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": question}]}],
        }}

    first = api.create([conversation("a", "Reference document. " * 100, "First?")])
    clock.advance(10)
    # same tools and system, another document: reads up to the system prompt, writes the rest
    second = api.create([conversation("b", "Another document here. " * 100, "Second?")])
    clock.advance(10)
    a = usage(api.results(first["id"])[0]["result"]["message"])
    b = usage(api.results(second["id"])[0]["result"]["message"])
    assert a["cache_read_input_tokens"] == 0
    assert a["cache_creation_input_tokens"] > SYSTEM_TOKENS + 503
    assert b["cache_read_input_tokens"] == a["cache_creation_input_tokens"] - 503  # 500 + 3
    assert b["cache_creation_input_tokens"] == 578  # 2,300 chars: 575 tokens + 3
    assert b["input_tokens"] == a["input_tokens"] == 2  # "First?" / "Second?"


def test_top_level_cache_control_marks_the_last_block(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api], clock: ManualClock,
    req: Req,
) -> None:
    api = make_api(make_emulator(cache_min_tokens=100, rate=1000.0))
    batch = api.create([req(f"r{i}", LONG, cache_control={"type": "ephemeral"})
                        for i in range(3)])
    clock.advance(1)
    messages = [line["result"]["message"] for line in api.results(batch["id"])]
    assert sorted(bool(usage(m)["cache_read_input_tokens"]) for m in messages) == [
        False, True, True]


@pytest.mark.parametrize("count, ok", [(4, True), (5, False)])
def test_at_most_four_breakpoints(api: Api, clock: ManualClock, req: Req, count: int,
                                  ok: bool) -> None:
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}}
              for i in range(count)]
    out = run(api, clock, [req("a", [*blocks])])
    assert ("content" in out["a"]) is ok


@pytest.mark.parametrize("content", [
    'He said "hi" \\ then\nleft; ünïcödé \x01', "plain", "x" * 3000])
@pytest.mark.parametrize("extra", [{}, {"stop_sequences": ["the"]}, {"stop_sequences": ["He"]},
                                   {"thinking": {"type": "enabled", "budget_tokens": 1024}}])
def test_long_answers_are_spliced_byte_for_byte_as_json_would_write_them(
    content: str, extra: Dict[str, Any]
) -> None:
    """Results skip escaping corpus prose; the line must equal plain JSON encoding."""
    import json

    from claudebatch.emulator.catalog import Catalog
    from claudebatch.emulator.responder import Responder
    from claudebatch.emulator.results import _dump_message

    responder = Responder(1, (300, 300))
    info = Catalog().lookup("claude-haiku-4-5")
    assert info is not None
    params = {"model": "claude-haiku-4-5", "max_tokens": 2000,
              "messages": [{"role": "user", "content": content}], **extra}
    line = _dump_message("c", responder.respond(params, info, "msg_x"))
    message = json.loads(json.dumps(responder.respond(params, info, "msg_x")))
    plain = json.dumps({"custom_id": "c", "result": {"type": "succeeded", "message": message}},
                       separators=(",", ":"), ensure_ascii=False) + "\n"
    assert line == plain.encode()
