"""Estimates before submitting: the approximation, cache breakpoints, worst vs expected,
the token-counting endpoint, and the dry run's summary."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Dict, List

import pytest
import responses
from claudebatch_cost import CostTracker, Estimator, packaged_table
from claudebatch_cost.tokens import TOOLS_OVERHEAD, Approximator, InputSplit

from claudebatch import BatchClient
from claudebatch.tokens import MEDIA_TOKENS

D = Decimal
BASE = "https://api.anthropic.com"


def req(i: int = 0, **params: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 100,
                            "system": "x" * 400,
                            "messages": [{"role": "user", "content": "y" * 40}]}
    body.update(params)
    return {"custom_id": f"r-{i}", "params": body}


def cached_system(ttl: str = "5m") -> List[Dict[str, Any]]:
    control: Dict[str, Any] = {"type": "ephemeral"}
    if ttl == "1h":
        control["ttl"] = "1h"
    return [{"type": "text", "text": "x" * 400, "cache_control": control}]


def test_input_tokens_are_characters_over_four_plus_framing() -> None:
    # the core's rule (claudebatch.tokens), as the emulator counts usage:
    # system: 3 framing + 400/4; one message: 3 framing + 40/4
    assert Approximator().split(req()["params"]) == InputSplit(uncached=116)
    assert Approximator(chars_per_token=2).split(req()["params"]) == InputSplit(uncached=226)


def test_a_cache_breakpoint_makes_its_prefix_a_cache_write_at_its_ttl() -> None:
    five = Approximator().split(req(system=cached_system())["params"])
    assert five == InputSplit(uncached=13, write_5m=103)
    hour = Approximator().split(req(system=cached_system("1h"))["params"])
    assert hour == InputSplit(uncached=13, write_1h=103)


def test_automatic_caching_writes_the_whole_prompt() -> None:
    split = Approximator().split(req(cache_control={"type": "ephemeral"})["params"])
    assert split == InputSplit(write_5m=116)


def test_tools_images_and_tool_results_are_counted() -> None:
    tool = {"name": "lookup", "description": "find", "input_schema": {"type": "object"}}
    params = req(tools=[tool], messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "A" * 100_000}},
        {"type": "tool_result", "tool_use_id": "t1", "content": "z" * 80},
    ]}])["params"]
    tool_tokens = -(-len(json.dumps(tool, sort_keys=True, separators=(",", ":"))) // 4)
    expected = TOOLS_OVERHEAD + tool_tokens + 103 + 3 + MEDIA_TOKENS + 2 + 20
    assert Approximator().split(params).total == expected


def test_a_base64_pdf_counts_its_data_length_and_an_image_a_fixed_allowance() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "A" * 40_000}}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "A" * 40_000}}
    with_pdf = req(messages=[{"role": "user", "content": [pdf]}])["params"]
    with_image = req(messages=[{"role": "user", "content": [image]}])["params"]
    # the shared rule counts a PDF as one page; the worst case takes its size instead
    assert Approximator().split(with_pdf).total == 103 + 3 + 10_000
    assert Approximator().split(with_image).total == 103 + 3 + MEDIA_TOKENS
    # a denser ratio scales text, not the image allowance or the framing
    assert Approximator(chars_per_token=2).split(with_image).total == 203 + 3 + MEDIA_TOKENS


def test_worst_case_uses_max_tokens_and_expected_a_fraction_of_it() -> None:
    # Haiku 4.5: 116 input tokens x $1 + 100 output x $5 = $0.000616 standard worst case;
    # expected output 50 tokens: $0.000366. Batch: half of each.
    found, _ = Estimator(packaged_table()).estimate([req()])
    assert found.worst_standard_usd == D("0.000616")
    assert found.worst_batch_usd == D("0.000308")
    assert found.expected_standard_usd == D("0.000366")
    assert found.expected_batch_usd == D("0.000183")
    assert (found.requests, found.input_tokens, found.max_output_tokens) == (1, 116, 100)


def test_cache_writes_are_priced_in_the_worst_case() -> None:
    # 13 plain + 103 written for 1h at 2x: (13 + 206) x $1 + 100 x $5 -> $0.000719 standard
    found, _ = Estimator(packaged_table()).estimate([req(system=cached_system("1h"))])
    assert found.worst_standard_usd == D("0.000719")
    assert found.cache_write_tokens == 103


def test_expected_case_reads_a_repeated_cache_prefix_after_its_first_write() -> None:
    # Haiku 4.5, three requests sharing a cached 103-token prefix, 13 plain tokens each.
    # Worst: 3 x (13 + 103 x 1.25) + 3 x 100 x 5 = 1,925.25 -> $0.00192525 standard.
    # Expected: 3 x 13 + 103 x 1.25 (first) + 2 x 103 x 0.1 (reads) + 3 x 50 x 5
    #   = 938.35 -> $0.00093835 standard.
    found, _ = Estimator(packaged_table()).estimate(
        [req(i, system=cached_system()) for i in range(3)])
    assert found.worst_standard_usd == D("0.00192525")
    assert found.expected_standard_usd == D("0.00093835")
    assert (found.cache_write_tokens, found.expected_cache_read_tokens) == (309, 206)


def test_different_prefixes_or_models_are_not_expected_to_hit() -> None:
    other = [{"type": "text", "text": "w" * 400, "cache_control": {"type": "ephemeral"}}]
    found, _ = Estimator(packaged_table()).estimate([
        req(0, system=cached_system()), req(1, system=other),
        req(2, system=cached_system(), model="claude-haiku-4-5-20251001")])
    assert found.expected_cache_read_tokens == 0


def test_prefixes_seen_in_an_earlier_batch_are_expected_to_hit() -> None:
    seen: set = set()  # type: ignore[type-arg]
    estimator = Estimator(packaged_table())
    estimator.estimate([req(0, system=cached_system())], seen=seen)
    later, _ = estimator.estimate([req(1, system=cached_system())], seen=seen)
    assert later.expected_cache_read_tokens == 103


def test_web_search_max_uses_counts_in_the_estimate() -> None:
    tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    found, _ = Estimator(packaged_table()).estimate([req(tools=[tool])])
    without, _ = Estimator(packaged_table()).estimate([req()])
    assert found.web_searches == 3
    assert found.worst_batch_usd - without.worst_batch_usd > D("0.03")  # searches + tool tokens


def test_unknown_models_are_reported_not_priced() -> None:
    found, _ = Estimator(packaged_table()).estimate([req(model="claude-opus-9"), req(1)])
    assert found.unknown_requests == 1 and found.unknown_models == {"claude-opus-9"}
    assert found.worst_batch_usd == D("0.000308")  # the known request only


def test_the_expected_fraction_is_configurable_and_checked() -> None:
    found, _ = Estimator(packaged_table(), expected_output_fraction=0.1).estimate([req()])
    assert found.expected_standard_usd == D("0.000166")  # 116 x $1 + 10 x $5
    with pytest.raises(ValueError):
        Estimator(packaged_table(), expected_output_fraction=1.5)


def test_dry_run_prints_worst_and_expected_and_the_budget_verdict() -> None:
    tracker = CostTracker(budget_usd="0.001")
    client = BatchClient(api_key="dry-run", plugins=[tracker], load_entry_points=False)
    plan = client.job([req(i) for i in range(10)], max_batch_requests=4).dry_run()
    section = plan.plugins["cost"]
    assert section["worst case"].startswith("$0.0031 ")  # 10 x $0.000308 = $0.00308
    assert section["expected"].startswith("$0.0018 ")
    assert section["standard API worst case"] == "$0.0062"
    assert section["budget"].startswith("$0.0010: OVER")
    assert "cost: worst case $0.0031" in plan.summary()
    assert tracker.job_estimate is not None and tracker.job_estimate.requests == 10


@responses.activate
def test_count_tokens_asks_the_endpoint_and_keeps_the_cache_split() -> None:
    calls: List[Dict[str, Any]] = []

    def answer(request: Any) -> Any:
        calls.append(json.loads(request.body))
        return (200, {}, json.dumps({"input_tokens": 1160}))

    responses.add_callback(responses.POST, f"{BASE}/v1/messages/count_tokens", callback=answer)
    tracker = CostTracker(count_tokens=True)
    client = BatchClient(api_key="sk-test", base_url=BASE, plugins=[tracker],
                         load_entry_points=False)
    plan = client.job([req(0, system=cached_system())]).dry_run()
    assert calls == [{"model": "claude-haiku-4-5", "system": cached_system(),
                      "messages": [{"role": "user", "content": "y" * 40}]}]
    found = tracker.job_estimate
    assert found is not None and found.counted
    # 1,160 exact tokens in the approximation's proportions (13 : 103): 130 plain,
    # 1,030 5m writes
    assert (found.input_tokens, found.cache_write_tokens) == (1160, 1030)
    # 130 x $1 + 1,030 x $1.25 + 100 x $5, per MTok
    assert found.worst_standard_usd == D("0.0019175")
    assert "counted" in plan.plugins["cost"]["input tokens"]


@responses.activate
def test_count_tokens_falls_back_to_the_approximation_when_refused() -> None:
    responses.add(responses.POST, f"{BASE}/v1/messages/count_tokens", status=404,
                  json={"type": "error", "error": {"type": "not_found_error",
                                                    "message": "model: claude-x"}})
    tracker = CostTracker(count_tokens=True)
    client = BatchClient(api_key="sk-test", base_url=BASE, plugins=[tracker],
                         load_entry_points=False, max_retries=0)
    client.job([req()]).dry_run()
    assert tracker.job_estimate is not None and tracker.job_estimate.input_tokens == 116
