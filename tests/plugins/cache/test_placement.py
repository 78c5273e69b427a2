"""Where PromptCache puts breakpoints, rule by rule (no HTTP: the before_submit hook alone)."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from claudebatch_cache import PromptCache, min_cacheable_tokens

from claudebatch import PendingBatch
from claudebatch._pending import dumps

from .helpers import (
    CONTEXT,
    ephemeral,
    long_text,
    markers,
    place,
    request,
    snapshot,
    tool,
)

SYSTEM = long_text(1500)  # over Sonnet 4.5's 1,024-token minimum
DOC = long_text(2000, "contract")


def assert_api_valid(params: Dict[str, Any]) -> None:
    """The API's rules: at most 4 breakpoints, never a 1h one after a 5m one, none on
    thinking blocks or empty text."""
    found = [cc for _, cc in markers(params)]
    if params.get("cache_control") is not None:
        found.append(params["cache_control"])
    assert len(found) <= 4
    ttls = [cc.get("ttl", "5m") for cc in found]
    assert "1h" not in ttls[ttls.index("5m"):] if "5m" in ttls else True
    for message in params["messages"]:
        if isinstance(message["content"], list):
            for block in message["content"]:
                if block.get("type") in ("thinking", "redacted_thinking"):
                    assert "cache_control" not in block
                if block.get("type") == "text" and not block.get("text"):
                    assert "cache_control" not in block


def test_tools_only_prefix_is_marked_on_the_last_tool() -> None:
    tools = [tool("search", 600), tool("fetch", 600)]  # ~1,250 tokens together
    out = place([request(f"r{i}", tools=tools) for i in range(3)])
    for r in out:
        assert markers(r.params) == [(("tools", 1), ephemeral("1h"))]
        assert r.params["messages"][0]["content"].startswith("question")  # left as a string
        assert_api_valid(r.params)


def test_shared_system_string_becomes_a_marked_block() -> None:
    out = place([request(f"r{i}", system=SYSTEM) for i in range(3)])
    for r in out:
        assert r.params["system"] == [{"type": "text", "text": SYSTEM,
                                       "cache_control": ephemeral("1h")}]
        assert isinstance(r.params["messages"][0]["content"], str)


def test_shared_first_user_turn_block_is_marked_not_the_question() -> None:
    def ask(i: int) -> Any:
        return request(f"r{i}", system="You answer questions about contracts.", messages=[
            {"role": "user", "content": [{"type": "text", "text": DOC},
                                         {"type": "text", "text": f"What does clause {i} say?"}]}])

    out = place([ask(i) for i in range(4)])
    for r in out:
        assert markers(r.params) == [(("messages", 0, 0), ephemeral("1h"))]
        assert isinstance(r.params["system"], str)  # the short system prompt is untouched


def test_shared_first_user_turn_as_a_string_is_converted_to_a_block() -> None:
    def turn(i: int) -> Any:
        return request(f"r{i}", messages=[
            {"role": "user", "content": DOC},
            {"role": "assistant", "content": f"Noted ({i})."},
            {"role": "user", "content": "Summarise it."}])

    out = place([turn(i) for i in range(3)])
    for r in out:
        assert r.params["messages"][0]["content"] == [
            {"type": "text", "text": DOC, "cache_control": ephemeral("1h")}]
        assert r.params["messages"][1]["content"].startswith("Noted")


def test_mixed_groups_are_marked_each_on_its_own_and_singletons_not_at_all() -> None:
    system_a, system_b = long_text(1500, "alpha"), long_text(1800, "beta")
    batch = ([request(f"a{i}", system=system_a) for i in range(3)]
             + [request(f"b{i}", system=system_b) for i in range(4)]
             + [request(f"c{i}", system=long_text(1500, f"solo{i}")) for i in range(2)])
    cache = PromptCache()
    pending = PendingBatch.from_requests(batch)
    cache.before_submit(requests=pending, context=CONTEXT)
    marked = {r.custom_id: markers(r.params) for r in pending}
    for custom_id in ("a0", "a1", "a2", "b0", "b1", "b2", "b3"):
        assert marked[custom_id] == [(("system", 0), ephemeral("1h"))]
    assert marked["c0"] == marked["c1"] == []
    batch_figures = cache.last_batch
    assert batch_figures is not None
    assert batch_figures.groups == 2 and batch_figures.requests_marked == 7
    assert batch_figures.unmarked == {"not-shared": 2}
    assert batch_figures.cacheable_tokens == 3 * (3 + 1500) + 4 * (3 + 1800)


def test_where_groups_branch_a_shallower_breakpoint_is_added() -> None:
    tools = [tool("search", 1100)]
    batch = ([request(f"a{i}", tools=tools, system=long_text(1500, "alpha")) for i in range(3)]
             + [request(f"b{i}", tools=tools, system=long_text(1500, "beta")) for i in range(3)])
    for r in place(batch):
        # the deepest shared prefix (tools + own system), and the tools all six share
        assert markers(r.params) == [(("tools", 0), ephemeral("1h")),
                                     (("system", 0), ephemeral("1h"))]


def test_prefix_under_the_model_minimum_is_left_unmarked() -> None:
    short = long_text(600)  # under Sonnet's 1,024
    cache = PromptCache()
    out = place([request(f"r{i}", system=short) for i in range(5)], cache)
    assert all(r.params["system"] == short for r in out)
    assert cache.last_batch is not None and cache.last_batch.unmarked == {"too-short": 5}


def test_the_minimum_is_per_model() -> None:
    system = long_text(2000)
    haiku = place([request(f"h{i}", system=system, model="claude-haiku-4-5") for i in range(3)])
    sonnet = place([request(f"s{i}", system=system) for i in range(3)])
    assert all(markers(r.params) == [] for r in haiku)  # Haiku 4.5 caches from 4,096
    assert all(markers(r.params) for r in sonnet)
    relaxed = PromptCache(min_tokens={"claude-haiku-4-5": 1024})
    out = place([request(f"h{i}", system=system, model="claude-haiku-4-5") for i in range(3)],
                relaxed)
    assert all(markers(r.params) for r in out)


def test_minimum_table_takes_the_longest_prefix_and_the_larger_when_unknown() -> None:
    assert min_cacheable_tokens("claude-haiku-4-5-20251001") == 4096
    assert min_cacheable_tokens("claude-opus-4-20250514") == 1024
    assert min_cacheable_tokens("claude-opus-4-5") == 4096
    assert min_cacheable_tokens("claude-sonnet-4-6") == 2048
    assert min_cacheable_tokens("claude-3-haiku-20240307") == 2048
    assert min_cacheable_tokens("claude-unknown-9") == 4096


def four_marked(i: int) -> Any:
    return request(
        f"r{i}",
        tools=[{**tool("a", 50), "cache_control": ephemeral("1h")},
               {**tool("b", 50), "cache_control": ephemeral("1h")}],
        system=[{"type": "text", "text": "Be brief.", "cache_control": ephemeral("1h")},
                {"type": "text", "text": "Be kind.", "cache_control": ephemeral("1h")}],
        messages=[{"role": "user", "content": [{"type": "text", "text": DOC},
                                               {"type": "text", "text": f"q{i}"}]}])


@pytest.mark.parametrize("override", [False, True])
def test_requests_already_holding_four_breakpoints_are_left_alone(override: bool) -> None:
    batch = [four_marked(i) for i in range(3)]
    before = snapshot(batch)
    cache = PromptCache(override=override)
    out = place(batch, cache)
    assert [r.params for r in out] == before
    reason = "full" if override else "user-marked"
    assert cache.last_batch is not None and cache.last_batch.unmarked == {reason: 3}


def test_with_override_a_request_with_three_breakpoints_gets_one_more() -> None:
    batch = []
    for i in range(3):
        r = four_marked(i)
        del r.params["system"][1]["cache_control"]
        batch.append(r)
    out = place(batch, PromptCache(override=True))
    for r in out:
        assert markers(r.params)[-1] == (("messages", 0, 0), ephemeral("1h"))
        assert len(markers(r.params)) == 4
        assert_api_valid(r.params)


def five_minute_tools(i: int) -> Any:
    return request(f"r{i}", tools=[{**tool("search", 100), "cache_control": ephemeral("5m")}],
                   system=SYSTEM)


def test_a_user_marked_request_is_left_as_it_is_by_default() -> None:
    batch = [five_minute_tools(i) for i in range(3)]
    before = snapshot(batch)
    assert [r.params for r in place(batch)] == before


def test_a_5m_breakpoint_before_the_shared_prefix_makes_ours_5m() -> None:
    out = place([five_minute_tools(i) for i in range(3)], PromptCache(override=True))
    for r in out:
        assert markers(r.params) == [(("tools", 0), ephemeral("5m")),
                                     (("system", 0), ephemeral("5m"))]  # not 1h after a 5m
        assert_api_valid(r.params)


def test_a_1h_breakpoint_after_the_shared_prefix_makes_a_5m_plugin_use_1h() -> None:
    batch = [request(f"r{i}", system=SYSTEM, messages=[{"role": "user", "content": [
        {"type": "text", "text": f"q{i}", "cache_control": ephemeral("1h")}]}])
        for i in range(3)]
    out = place(batch, PromptCache(ttl="5m", override=True))
    for r in out:
        assert markers(r.params)[0] == (("system", 0), ephemeral("1h"))
        assert_api_valid(r.params)


def test_automatic_caching_keeps_the_last_block_and_counts_as_a_breakpoint() -> None:
    batch = [request(f"r{i}", system=SYSTEM, cache_control={"type": "ephemeral"})
             for i in range(3)]
    assert [r.params for r in place(batch)] == snapshot(batch)  # user-marked: left alone
    out = place(batch, PromptCache(override=True))
    for r in out:
        assert markers(r.params) == [(("system", 0), ephemeral("1h"))]  # 1h before the 5m: ok
        assert r.params["cache_control"] == {"type": "ephemeral"}


def test_thinking_blocks_are_never_marked_the_block_before_them_is() -> None:
    def turn(i: int) -> Any:
        return request(f"r{i}", messages=[
            {"role": "user", "content": DOC},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Reading carefully.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "abc"}]},
            {"role": "user", "content": f"And clause {i}?"}])

    for r in place([turn(i) for i in range(3)]):
        assert markers(r.params) == [(("messages", 0, 0), ephemeral("1h"))]
        assert_api_valid(r.params)


def test_a_tool_result_carries_the_breakpoint_not_its_nested_content() -> None:
    def turn(i: int) -> Any:
        return request(f"r{i}", tools=[tool("fetch", 50)], messages=[
            {"role": "user", "content": "Fetch the contract."},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "fetch", "input": {"q": "c"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "text", "text": DOC}]},
                {"type": "text", "text": f"Question {i}"}]}])

    for r in place([turn(i) for i in range(3)]):
        assert markers(r.params) == [(("messages", 2, 0), ephemeral("1h"))]
        assert "cache_control" not in r.params["messages"][2]["content"][0]["content"][0]


def test_a_group_must_reach_the_break_even_size_for_its_ttl() -> None:
    pair = [request(f"r{i}", system=SYSTEM) for i in range(2)]
    # 1h: one write (2x) and one read (0.1x) cost more than two plain prefixes
    assert all(markers(r.params) == [] for r in place(pair))
    assert all(markers(r.params) for r in place(pair, PromptCache(ttl="5m")))
    assert all(markers(r.params) for r in place(pair, PromptCache(min_group=2)))


def test_the_callers_dicts_are_never_mutated() -> None:
    tools = [tool("search", 1100)]
    batch = [request(f"r{i}", tools=tools, system=SYSTEM,
                     messages=[{"role": "user", "content": DOC},
                               {"role": "assistant", "content": "ok"},
                               {"role": "user", "content": f"q{i}"}]) for i in range(3)]
    before = snapshot(batch)
    pending = PendingBatch.from_requests(batch)
    PromptCache(ttl="5m").before_submit(requests=pending, context=CONTEXT)
    first, second = list(pending), list(pending)  # iterated twice, as body and estimates do
    assert [r.params for r in batch] == before
    assert [r.params for r in first] == [r.params for r in second]
    for original, sent in zip(batch, first):
        # the deepest shared prefix ends with the assistant's "ok"
        assert markers(sent.params) == [(("messages", 1, 0), ephemeral("5m"))]
        assert sent.params is not original.params  # marked on copies ...
        assert sent.params["messages"] is not original.params["messages"]
        assert sent.params["messages"][1] is not original.params["messages"][1]
        assert sent.params["tools"] is original.params["tools"]  # ... untouched parts shared
        assert sent.params["messages"][2] is original.params["messages"][2]


def test_a_batch_the_breakpoints_would_push_past_the_size_limit_is_left_unmarked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import claudebatch_cache.plugin as plugin_module

    batch = [request(f"r{i}", system=SYSTEM) for i in range(3)]
    body = len(b'{"requests":[,,]}') + sum(len(dumps(r.to_dict())) for r in batch)
    monkeypatch.setattr(plugin_module, "MAX_BATCH_BYTES", body + 40)  # 3 marks add ~200
    cache = PromptCache()
    out = place(batch, cache)
    assert [r.params for r in out] == snapshot(batch)
    assert cache.last_batch is not None and cache.last_batch.batches_too_large == 1


def test_a_prefix_an_earlier_batch_marked_is_marked_even_alone() -> None:
    cache = PromptCache()
    first = PendingBatch.from_requests([request(f"r{i}", system=SYSTEM) for i in range(3)])
    cache.before_submit(requests=first, context=CONTEXT)
    list(first)
    cache.after_submit(batch=None, requests=first, context=CONTEXT)
    alone = PendingBatch.from_requests([request("r9", system=SYSTEM)], index=1)
    cache.before_submit(requests=alone, context=CONTEXT)
    assert markers(next(iter(alone)).params) == [(("system", 0), ephemeral("1h"))]


def test_constructor_rejects_what_the_api_would() -> None:
    with pytest.raises(ValueError, match="ttl"):
        PromptCache(ttl="10m")
    with pytest.raises(ValueError, match="min_group"):
        PromptCache(min_group=1)

