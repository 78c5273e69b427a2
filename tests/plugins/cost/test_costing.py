"""Exact cost of a result from its usage, checked against figures worked out by hand."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Optional

import pytest
from claudebatch_cost import load_pricing, packaged_table, price_result

from claudebatch._results import to_result

D = Decimal


def line(model: str, usage: Dict[str, Any], kind: str = "succeeded",
         custom_id: str = "r-1") -> Dict[str, Any]:
    """A results-file line as the API writes it."""
    if kind != "succeeded":
        body: Dict[str, Any] = {"type": kind}
        if kind == "errored":
            body["error"] = {"type": "error", "error": {"type": "api_error", "message": "x"}}
        return {"custom_id": custom_id, "result": body}
    return {"custom_id": custom_id, "result": {"type": "succeeded", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": usage}}}


def usage(input_tokens: int = 0, output_tokens: int = 0, *, created: Optional[int] = None,
          read: Optional[int] = None, five: Optional[int] = None, hour: Optional[int] = None,
          searches: Optional[int] = None) -> Dict[str, Any]:
    body: Dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if created is not None:
        body["cache_creation_input_tokens"] = created
    if read is not None:
        body["cache_read_input_tokens"] = read
    if five is not None or hour is not None:
        body["cache_creation"] = {"ephemeral_5m_input_tokens": five or 0,
                                  "ephemeral_1h_input_tokens": hour or 0}
    if searches is not None:
        body["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
    return body


def test_sonnet_4_5_with_every_cache_field_and_web_searches() -> None:
    # Sonnet 4.5 at $3 in / $15 out per MTok:
    #   input       1,000 x $3     / 1M = $0.003
    #   5m writes   2,000 x $3.75  / 1M = $0.0075   (1.25 x input)
    #   1h writes   1,000 x $6     / 1M = $0.006    (2 x input)
    #   reads      10,000 x $0.30  / 1M = $0.003    (0.1 x input)
    #   output        500 x $15    / 1M = $0.0075
    #   web search      3 x $0.01       = $0.03
    # standard $0.057; batch: tokens x 0.5 = $0.0135, plus $0.03 for searches = $0.0435
    cost = price_result(line("claude-sonnet-4-5-20250929", usage(
        1000, 500, created=3000, read=10_000, five=2000, hour=1000, searches=3)),
        packaged_table())
    assert cost.standard is not None and cost.batch is not None
    assert cost.standard.as_dict() == {
        "input": D("0.003"), "cache_write_5m": D("0.0075"), "cache_write_1h": D("0.006"),
        "cache_read": D("0.003"), "output": D("0.0075"), "web_search": D("0.03")}
    assert cost.standard_usd == D("0.057")
    assert cost.batch.as_dict() == {
        "input": D("0.0015"), "cache_write_5m": D("0.00375"), "cache_write_1h": D("0.003"),
        "cache_read": D("0.0015"), "output": D("0.00375"), "web_search": D("0.03")}
    assert cost.batch_usd == D("0.0435")
    assert cost.priced_as == "claude-sonnet-4-5-20250929"


def test_without_the_cache_creation_breakdown_writes_count_as_5_minute() -> None:
    # Haiku 4.5 at $1 / $5: 200 in = $0.0002; 4,000 writes at $1.25 = $0.005;
    # 100 out = $0.0005. Standard $0.0057, batch $0.00285.
    cost = price_result(line("claude-haiku-4-5-20251001", usage(200, 100, created=4000)),
                        packaged_table())
    assert cost.usage.cache_write_5m == 4000 and cost.usage.cache_write_1h == 0
    assert cost.standard_usd == D("0.0057")
    assert cost.batch_usd == D("0.00285")


def test_creation_tokens_the_breakdown_misses_count_as_5_minute() -> None:
    cost = price_result(line("claude-haiku-4-5", usage(0, 0, created=1000, five=0, hour=600)),
                        packaged_table())
    assert (cost.usage.cache_write_5m, cost.usage.cache_write_1h) == (400, 600)
    # 400 x $1.25 + 600 x $2 = $0.0017 standard, half in a batch
    assert cost.batch_usd == D("0.00085")


@pytest.mark.parametrize(("model", "standard", "batch"), [
    # 1M input + 1M output tokens: standard = input + output price, batch = half
    ("claude-opus-4-5", "30", "15"),
    ("claude-opus-4-8", "30", "15"),
    ("claude-opus-5", "30", "15"),
    ("claude-fable-5", "60", "30"),
    ("claude-mythos-5", "60", "30"),
    ("claude-sonnet-5", "12", "6"),
    ("claude-sonnet-4-6", "18", "9"),
    ("claude-haiku-4-5", "6", "3"),
    ("claude-opus-4-1-20250805", "90", "45"),
    ("claude-sonnet-4-20250514", "18", "9"),
    ("claude-3-5-haiku-20241022", "4.80", "2.40"),
    ("claude-3-haiku-20240307", "1.50", "0.75"),
    ("claude-3-opus-20240229", "90", "45"),
])
def test_input_and_output_per_model(model: str, standard: str, batch: str) -> None:
    cost = price_result(line(model, usage(1_000_000, 1_000_000)), packaged_table())
    assert cost.standard_usd == D(standard)
    assert cost.batch_usd == D(batch)


def test_haiku_3_uses_its_own_cache_prices() -> None:
    # 1M 5m writes at $0.30 + 1M 1h writes at $0.50 + 1M reads at $0.03 = $0.83; batch $0.415
    cost = price_result(line("claude-3-haiku-20240307", usage(
        0, 0, created=2_000_000, five=1_000_000, hour=1_000_000, read=1_000_000)),
        packaged_table())
    assert cost.standard_usd == D("0.83")
    assert cost.batch_usd == D("0.415")


def test_opus_4_6_cache_reads_and_writes_are_discounted_in_a_batch_too() -> None:
    # Opus 4.6 at $5: 100,000 reads = $0.05, 100,000 1h writes = $1.00 standard
    cost = price_result(line("claude-opus-4-6", usage(0, 0, created=100_000, hour=100_000,
                                                      read=100_000)), packaged_table())
    assert cost.standard_usd == D("1.05")
    assert cost.batch_usd == D("0.525")


def test_web_searches_take_the_batch_discount_only_when_the_table_says_so() -> None:
    searches = line("claude-sonnet-4-6", usage(0, 0, searches=1000))
    assert price_result(searches, packaged_table()).batch_usd == D("10")
    discounted = load_pricing({"web_search_batch_discount": True, "models": {}})
    assert price_result(searches, discounted).batch_usd == D("5")


@pytest.mark.parametrize("kind", ["errored", "canceled", "expired"])
def test_results_that_did_not_succeed_cost_nothing(kind: str) -> None:
    cost = price_result(line("claude-opus-4-6", {}, kind=kind), packaged_table())
    assert not cost.billed
    assert cost.batch_usd == 0 and cost.standard_usd == 0


def test_an_unknown_model_has_an_unknown_cost_not_zero() -> None:
    cost = price_result(line("claude-opus-9", usage(100, 100)), packaged_table())
    assert not cost.known
    assert cost.batch_usd is None and cost.standard_usd is None
    assert cost.usage.input == 100  # the tokens are still counted


def test_a_parsed_result_and_its_raw_line_cost_the_same() -> None:
    raw = line("claude-sonnet-4-5", usage(1234, 567, created=89, read=1011, five=89))
    parsed = to_result(raw, source="test")
    table = packaged_table()
    assert price_result(parsed, table) == price_result(raw, table)


def test_money_is_decimal_never_float() -> None:
    cost = price_result(line("claude-3-5-haiku-latest", usage(3, 7)), packaged_table())
    assert cost.batch is not None
    assert all(type(v) is Decimal for v in cost.batch.as_dict().values())
    assert cost.batch_usd == D("0.0000152")  # (3 x 0.80 + 7 x 4) / 1M / 2, exactly


def test_us_only_inference_costs_1_1x_on_every_token_component() -> None:
    table = packaged_table()
    body = usage(1_000_000, 1_000_000, created=1_000_000, five=1_000_000, read=1_000_000)
    plain = price_result(line("claude-opus-5-5", body), table)
    us = price_result(line("claude-opus-5-5", {**body, "inference_geo": "us"}), table)
    # batch: input 2 + 5m write 2.5 + read 0.1 + output 10 = 14.60
    assert plain.batch_usd == D("14.60")
    assert us.batch_usd == D("14.60") * D("1.1")
    assert to_result(line("claude-opus-5-5", {**body, "inference_geo": "us"})
                     ).result.message.usage.inference_geo == "us"  # type: ignore[union-attr]


def test_haiku_5_5_prices_every_token_of_a_long_prompt_at_the_higher_tier() -> None:
    table = packaged_table()
    short = price_result(line("claude-haiku-5-5", usage(100_000, 1_000)), table)
    long = price_result(line("claude-haiku-5-5", usage(100_001, 1_000)), table)
    # standard: 100,000 x $0.10 + 1,000 x $0.50 per million; over the tier $0.50 / $2.50
    assert short.standard_usd == D("0.0105")
    assert long.standard_usd == D("0.0500005") + D("0.0025")
    cached = price_result(line("claude-haiku-5-5", usage(1_000, 0, read=99_001)), table)
    assert cached.standard.cache_read == 99_001 * D("0.05") / 1_000_000  # type: ignore[union-attr]


def test_a_result_is_priced_as_of_its_batchs_creation(tmp_path: Any) -> None:
    import datetime as dt
    import json

    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"claude-sonnet-5-5": {
        "input": 2, "output": 10, "earlier": [{"until": "2026-10-06", "input": 4,
                                               "output": 20}]}}}))
    table = load_pricing(str(path))
    result = line("claude-sonnet-5-5", usage(1_000_000, 0))
    before = dt.datetime(2026, 10, 6, 12, tzinfo=dt.timezone.utc)
    assert price_result(result, table, before).batch_usd == D(2)
    assert price_result(result, table, "2026-10-07").batch_usd == D(1)
    assert price_result(result, table).batch_usd == D(1)
