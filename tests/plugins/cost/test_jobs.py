"""The tracker in whole jobs against the emulator, over real loopback HTTP."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from claudebatch_cost import BudgetExceededError, CostTracker

from claudebatch import BatchClient, ClaudeBatchError, hookimpl
from claudebatch.emulator import Emulator, Faults

#: List prices per MTok (input, output) of the ids the emulator answers with.
PRICES = {"claude-haiku-4-5-20251001": (1, 5), "claude-sonnet-4-5-20250929": (3, 15),
          "claude-opus-4-6": (5, 25)}
MODELS = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-6"]
POLICY = "Weigh the customer's plan, the users affected and any workaround. " * 300


def rows(count: int, *, max_tokens: int = 64, model: Optional[str] = None,
         cached: bool = True) -> List[Dict[str, Any]]:
    """Requests sharing a long system prompt, cached (1h breakpoints on every third)."""
    out = []
    for i in range(count):
        system: Dict[str, Any] = {"type": "text", "text": POLICY}
        if cached:
            system["cache_control"] = {"type": "ephemeral"}
            if i % 3 == 0:
                system["cache_control"]["ttl"] = "1h"
        out.append({"custom_id": f"r-{i}", "params": {
            "model": model or MODELS[i % len(MODELS)], "max_tokens": max_tokens,
            "system": [system],
            "messages": [{"role": "user", "content": f"ticket {i}: the app crashes"}]}})
    return out


def write_jsonl(path: Path, items: List[Dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return str(path)


def client_for(emu: Emulator, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01,
                       load_entry_points=False, plugins=plugins)


def cost_from_output(path: str) -> Fraction:
    """The batch cost of an output file, computed here from each line's usage."""
    total = Fraction(0)
    with open(path) as handle:
        for text in handle:
            result = json.loads(text)["result"]
            if result["type"] != "succeeded":
                continue
            message = result["message"]
            base, out = PRICES[message["model"]]
            u = message["usage"]
            split = u.get("cache_creation") or {}
            hour = split.get("ephemeral_1h_input_tokens", 0)
            five = u.get("cache_creation_input_tokens", 0) - hour
            searches = (u.get("server_tool_use") or {}).get("web_search_requests", 0)
            tokens = (u["input_tokens"] * base + five * Fraction(5, 4) * base
                      + hour * 2 * base + u.get("cache_read_input_tokens", 0) * Fraction(base, 10)
                      + u["output_tokens"] * out)
            total += Fraction(tokens, 1_000_000) / 2 + Fraction(searches, 100)
    return total


def usage_seen(path: str) -> Dict[str, int]:
    seen = {"five": 0, "hour": 0, "read": 0, "errored": 0}
    with open(path) as handle:
        for text in handle:
            result = json.loads(text)["result"]
            if result["type"] != "succeeded":
                seen["errored"] += 1
                continue
            u = result["message"]["usage"]
            seen["five"] += u["cache_creation"]["ephemeral_5m_input_tokens"]
            seen["hour"] += u["cache_creation"]["ephemeral_1h_input_tokens"]
            seen["read"] += u["cache_read_input_tokens"]
    return seen


def test_reported_cost_equals_the_sum_from_the_output_files_usage(tmp_path: Path) -> None:
    tracker = CostTracker()
    with Emulator(rate=float("inf"), seed=11, cache_hit_rate=0.8,
                  faults=Faults(errored=0.1)) as emu:
        report = client_for(emu, tracker).run(rows(240), output=str(tmp_path / "out.jsonl"),
                                              max_batch_requests=100)
    seen = usage_seen(report.output)
    assert seen["five"] and seen["hour"] and seen["read"] and seen["errored"]  # all exercised

    expected = cost_from_output(report.output)
    assert Fraction(tracker.total_usd) == expected
    assert Fraction(tracker.standard_usd) == 2 * expected  # no web searches: exactly double
    assert isinstance(tracker.total_usd, Decimal) and tracker.complete
    as_decimal = Decimal(expected.numerator) / expected.denominator
    assert report.plugins["cost"]["batch"] == f"${as_decimal:,.4f}"
    assert report.plugins["cost"]["standard API"] == f"${tracker.standard_usd:,.4f}"
    # per batch and per model add up to the total
    assert list(tracker.by_batch) == report.batch_ids and len(report.batch_ids) == 3
    assert sum(t.batch_usd for t in tracker.by_batch.values()) == tracker.total_usd
    assert set(tracker.by_model) == set(PRICES)
    assert sum(t.batch_usd for t in tracker.by_model.values()) == tracker.total_usd
    assert tracker.job.not_billed == seen["errored"]
    assert tracker.job.succeeded == report.counts["succeeded"]


def test_a_broken_results_download_is_not_counted_twice(tmp_path: Path) -> None:
    tracker = CostTracker()
    with Emulator(rate=float("inf"), seed=4) as emu:
        emu.inject("drop_results", times=1, endpoint="results")
        report = client_for(emu, tracker).run(rows(60), output=str(tmp_path / "out.jsonl"))
        assert len(emu.requests_to("results")) >= 2  # the stream broke and was read again
    assert Fraction(tracker.total_usd) == cost_from_output(report.output)
    assert tracker.job.results == 60


def test_a_job_over_budget_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", rows(300))
    dry = CostTracker()
    plan_client = BatchClient(api_key="k", load_entry_points=False, plugins=[dry])
    plan_client.job(source, max_batch_requests=100).dry_run()
    assert dry.job_estimate is not None
    worst = dry.job_estimate.worst_batch_usd
    # The first batch alone (a third of the job) fits; the whole job does not.
    tracker = CostTracker(budget_usd=worst * Decimal("0.6"))
    with Emulator(rate=float("inf"), seed=2) as emu:
        with pytest.raises(BudgetExceededError) as caught:
            client_for(emu, tracker).run(source, output=str(tmp_path / "out.jsonl"),
                                         max_batch_requests=100)
        assert emu.batches_created == 0
    error = caught.value
    assert isinstance(error, ClaudeBatchError)
    assert error.estimate_usd == worst  # the same estimate as the dry run
    assert f"${worst:,.4f}" in str(error) and "300 requests" in str(error)
    assert "budget of" in str(error)


def test_a_single_batch_over_budget_sends_nothing(tmp_path: Path) -> None:
    tracker = CostTracker(budget_usd="0.01")
    with Emulator(rate=float("inf"), seed=2) as emu:
        with pytest.raises(BudgetExceededError, match="worst-case estimate is"):
            client_for(emu, tracker).run(rows(30), output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 0
    assert tracker.total_usd == 0


def test_a_one_shot_source_is_checked_as_a_whole_before_anything_is_sent(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A generator can be read once, but the job spools it: before_pass sees every batch.
    whole, _ = CostTracker().estimator.estimate(rows(300))
    one_batch, _ = CostTracker().estimator.estimate(rows(300)[:100])
    tracker = CostTracker(budget_usd=one_batch.worst_batch_usd * Decimal("1.5"))
    with Emulator(rate=float("inf"), seed=2) as emu:
        with caplog.at_level(logging.WARNING, logger="claudebatch.cost"):
            with pytest.raises(BudgetExceededError, match="300 requests") as caught:
                client_for(emu, tracker).run(iter(rows(300)), output=str(tmp_path / "o.jsonl"),
                                             max_batch_requests=100)
        assert emu.batches_created == 0  # not even the first batch, which would have fitted
    assert caught.value.estimate_usd == whole.worst_batch_usd
    assert tracker.in_flight_usd == 0 and tracker.total_usd == 0
    assert "batch by batch" not in caplog.text


def test_the_pass_estimate_sees_the_cache_plugins_breakpoints_in_every_batch(
        tmp_path: Path) -> None:
    cache = pytest.importorskip("claudebatch_cache")
    work = rows(60, cached=False)  # no cache_control of their own: the cache plugin adds it
    raw, _ = CostTracker().estimator.estimate(work)
    dry = CostTracker()
    BatchClient(api_key="k", load_entry_points=False, plugins=[cache.PromptCache(), dry]).job(
        work, max_batch_requests=20).dry_run()
    assert dry.job_estimate is not None
    tracker = CostTracker()
    with Emulator(rate=float("inf"), seed=3) as emu:
        report = client_for(emu, cache.PromptCache(), tracker).run(
            work, output=str(tmp_path / "out.jsonl"), max_batch_requests=20)
    assert len(report.batch_ids) == 3
    found = tracker.job_estimate
    assert found == dry.job_estimate  # all three batches as sent, not the first one scaled
    assert found.cache_write_tokens > 0 and found.worst_batch_usd > raw.worst_batch_usd
    # one tokenizer: the estimate's input is the emulator's, token for token
    seen = usage_seen(report.output)
    with open(report.output) as handle:
        usage = [json.loads(line)["result"]["message"]["usage"] for line in handle]
    assert found.input_tokens == sum(u["input_tokens"] + u["cache_creation_input_tokens"]
                                     + u["cache_read_input_tokens"] for u in usage)
    assert found.cache_write_tokens == seen["five"] + seen["hour"] + seen["read"]


def test_a_pass_over_budget_only_with_the_cache_breakpoints_is_refused(
        tmp_path: Path) -> None:
    cache = pytest.importorskip("claudebatch_cache")
    work = rows(30, cached=False)
    raw, _ = CostTracker().estimator.estimate(work)
    dry = CostTracker()
    BatchClient(api_key="k", load_entry_points=False, plugins=[cache.PromptCache(), dry]).job(
        work).dry_run()
    assert dry.job_estimate is not None
    marked = dry.job_estimate.worst_batch_usd
    assert marked > raw.worst_batch_usd  # 1-hour cache writes cost twice the input
    tracker = CostTracker(budget_usd=(raw.worst_batch_usd + marked) / 2)
    with Emulator(rate=float("inf"), seed=2) as emu:
        with pytest.raises(BudgetExceededError) as caught:
            client_for(emu, cache.PromptCache(), tracker).run(
                work, output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 0
    assert caught.value.estimate_usd == marked


class ResubmitEverythingOnce:
    """A policy that sends the whole job a second time after pass 1."""

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: Any) -> Optional[Iterator[Any]]:
        if pass_number > 1:
            return None
        return context.find_requests(f"r-{i}" for i in range(context.total_requests))


def test_no_resubmission_pass_once_spent_plus_its_estimate_passes_the_budget(
        tmp_path: Path) -> None:
    work = rows(60, max_tokens=16, cached=False)  # no cache hits: spending nears the estimate
    found, _ = CostTracker().estimator.estimate(work)
    tracker = CostTracker(budget_usd=found.worst_batch_usd * Decimal("1.5"))
    with Emulator(rate=float("inf"), seed=8) as emu:
        report = client_for(emu, ResubmitEverythingOnce(), tracker).run(
            work, output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 1  # pass 2 was never sent
    assert report.passes == 1 and report.all_succeeded
    assert tracker.budget_usd is not None
    assert tracker.total_usd + found.worst_batch_usd > tracker.budget_usd
    assert tracker.notes and "resubmission pass 2 (60 requests" in tracker.notes[0]
    assert "not sent" in report.summary()


def test_a_resubmission_pass_within_budget_is_sent_and_counted(tmp_path: Path) -> None:
    work = rows(30, max_tokens=16)
    tracker = CostTracker(budget_usd="100")
    with Emulator(rate=float("inf"), seed=8) as emu:
        report = client_for(emu, ResubmitEverythingOnce(), tracker).run(
            work, output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 2
    assert report.passes == 2 and tracker.job.results == 60  # both attempts were billed
    assert len(tracker.by_batch) == 2


def test_an_unknown_model_is_a_warning_and_an_unknown_cost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    work = rows(9, model="claude-haiku-4-5")
    for item in work[:6]:
        item["params"]["model"] = "claude-opus-9"
    tracker = CostTracker()
    with Emulator(rate=float("inf"), seed=2) as emu:
        with caplog.at_level(logging.WARNING, logger="claudebatch.cost"):
            report = client_for(emu, tracker).run(work, output=str(tmp_path / "out.jsonl"))
    assert "'claude-opus-9' is not in the pricing table" in caplog.text
    assert not tracker.complete and tracker.unknown_models == {"claude-opus-9"}
    assert tracker.by_model["claude-opus-9"].unknown == 6
    assert tracker.total_usd > 0  # the Haiku results are still priced
    section = report.plugins["cost"]
    assert section["batch"].endswith("+ unknown")
    assert "6 result(s) of claude-opus-9 not priced" in section["unknown"]


def test_with_a_budget_an_unpriced_model_is_refused(tmp_path: Path) -> None:
    tracker = CostTracker(budget_usd=1000)
    with Emulator(rate=float("inf"), seed=2) as emu:
        with pytest.raises(BudgetExceededError, match="not in the pricing table"):
            client_for(emu, tracker).run(rows(3, model="claude-opus-9"),
                                         output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 0


def test_a_pricing_mapping_prices_a_new_model(tmp_path: Path) -> None:
    tracker = CostTracker(pricing={"claude-opus-9": {"input": 4, "output": 20}})
    with Emulator(rate=float("inf"), seed=2) as emu:
        report = client_for(emu, tracker).run(rows(5, model="claude-opus-9"),
                                              output=str(tmp_path / "out.jsonl"))
    PRICES["claude-opus-9"] = (4, 20)
    try:
        assert Fraction(tracker.total_usd) == cost_from_output(report.output)
    finally:
        del PRICES["claude-opus-9"]
    assert tracker.complete


def test_keep_results_gives_the_cost_of_each_result(tmp_path: Path) -> None:
    tracker = CostTracker(keep_results=True)
    with Emulator(rate=float("inf"), seed=2) as emu:
        client_for(emu, tracker).run(rows(9), output=str(tmp_path / "out.jsonl"))
    assert sorted(c.custom_id for c in tracker.result_costs) == sorted(f"r-{i}" for i in range(9))
    assert sum(c.batch_usd or 0 for c in tracker.result_costs) == tracker.total_usd


def test_a_resubmission_pass_is_checked_again_as_it_will_be_sent(tmp_path: Path) -> None:
    """The wrapper weighs the requests as they are in the source; the pass's before_pass
    weighs them with the cache plugin's breakpoints, and vetoes if only those pass it."""
    cache = pytest.importorskip("claudebatch_cache")
    work = rows(30, max_tokens=16, cached=False)
    probe = CostTracker()  # what pass 1 spends (the emulator is deterministic)
    with Emulator(rate=float("inf"), seed=8) as emu:
        client_for(emu, cache.PromptCache(), probe).run(work, output=str(tmp_path / "p.jsonl"))
    raw, _ = CostTracker().estimator.estimate(work)
    assert probe.job_estimate is not None
    marked = probe.job_estimate.worst_batch_usd
    spent = probe.total_usd
    # pass 1 fits, and pass 2 fits as in the source but not with its breakpoints
    low, high = max(marked, spent + raw.worst_batch_usd), spent + marked
    assert low < high
    tracker = CostTracker(budget_usd=(low + high) / 2)
    with Emulator(rate=float("inf"), seed=8) as emu:
        with pytest.raises(BudgetExceededError, match="pass 2 \\(30 requests\\)"):
            client_for(emu, ResubmitEverythingOnce(), cache.PromptCache(), tracker).run(
                work, output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 1  # pass 2 was never sent
    assert tracker.total_usd == spent and not tracker.notes


def test_a_transform_added_in_before_submit_is_what_the_budget_weighs(tmp_path: Path) -> None:
    """A plugin that raises max_tokens as the batch goes out cannot slip past the budget."""
    import attrs

    class Bigger:
        @hookimpl(tryfirst=True)
        def before_submit(self, requests: Any) -> None:
            requests.transform(lambda r: attrs.evolve(
                r, params={**r.params, "max_tokens": 4000}))

    plain = CostTracker()
    with Emulator(rate=float("inf"), seed=2) as emu:
        plan = client_for(emu, plain).job(rows(20)).dry_run()
        worst = plain.job_estimate.worst_batch_usd if plain.job_estimate else Decimal(0)
        assert worst > 0 and "cost" in plan.plugins
        tracker = CostTracker(budget_usd=worst * 2)  # enough for the batch as planned
        with pytest.raises(BudgetExceededError):
            client_for(emu, tracker, Bigger()).run(rows(20), output=str(tmp_path / "o.jsonl"))
        assert emu.batches_created == 0


@pytest.mark.parametrize("created, price", [("2026-09-30T12:00:00+00:00", 6),
                                            ("2026-10-01T00:00:01+00:00", 3)])
def test_results_are_priced_as_of_their_batchs_created_at(
        tmp_path: Path, created: str, price: int) -> None:
    """A price cut on 2026-10-01: a batch created the day before pays the old price."""
    import datetime as dt

    from claudebatch.emulator import ManualClock

    start = dt.datetime.fromisoformat(created).timestamp()
    clock = ManualClock(start)
    pricing = {"models": {"claude-sonnet-4-5-20250929": {
        "input": 3, "output": 15, "aliases": ["claude-sonnet-4-5"],
        "earlier": [{"until": "2026-09-30", "input": 6, "output": 30}]}}}
    tracker = CostTracker(pricing=pricing)
    with Emulator(rate=float("inf"), seed=3, clock=clock) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01, clock=clock,
                             load_entry_points=False, plugins=[tracker])
        report = client.run(rows(6, model="claude-sonnet-4-5", cached=False),
                            output=str(tmp_path / "out.jsonl"))
    assert report.counts["succeeded"] == 6
    tokens = Fraction(0)
    with open(report.output) as handle:
        for text in handle:
            u = json.loads(text)["result"]["message"]["usage"]
            tokens += u["input_tokens"] * price + u["output_tokens"] * 5 * price
    assert Fraction(tracker.total_usd) == tokens / 1_000_000 / 2
