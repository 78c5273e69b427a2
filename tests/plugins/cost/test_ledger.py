"""The tracker counts tokens per price and prices them when a figure is read: every figure
must be the very Decimal that pricing each result and adding it up gives (value and
exponent), for any mix of models, prices, tiers, places, days, jobs and reused answers."""

from __future__ import annotations

import datetime as dt
import random
import types
from decimal import Decimal
from typing import Any, Dict, List, Optional

import attrs
import pytest
from claudebatch_cost import CostTracker, Totals, load_pricing, price_result
from claudebatch_cost.costing import UsageCounts, _dict_numbers, usage_numbers

from claudebatch import BatchClient, CallContext, JobContext, Request

UTC = dt.timezone.utc
MODELS = ["claude-haiku-4-5", "claude-haiku-4-5", "claude-sonnet-5",  # earlier price to 08-31
          "claude-haiku-5-5",  # a long-prompt tier above 100,000 tokens
          "claude-sonnet-4-20250514", "claude-opus-9", None]  # dated id; unknown; none
DAYS = [dt.datetime(2026, 8, 15, 9, tzinfo=UTC), dt.datetime(2026, 12, 1, 23, 59, tzinfo=UTC),
        dt.datetime(2026, 8, 31, 23, 0), None]  # a naive datetime; no created_at at all
ODD = [None, -5, True, 2.5, "7", 0]  # counts the service never sends: read as 0


def count(rng: random.Random, big: bool = False) -> Any:
    if rng.random() < 0.08:
        return rng.choice(ODD)
    return rng.randint(0, 150_000 if big else 4_000)


def random_usage(rng: random.Random) -> Any:
    if rng.random() < 0.03:
        return None
    usage: Dict[str, Any] = {"input_tokens": count(rng, big=rng.random() < 0.2),
                             "output_tokens": count(rng)}
    if rng.random() < 0.7:
        usage["cache_creation_input_tokens"] = count(rng)
    if rng.random() < 0.7:
        usage["cache_read_input_tokens"] = count(rng, big=rng.random() < 0.1)
    shape = rng.random()
    if shape < 0.5:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": count(rng),
                                   "ephemeral_1h_input_tokens": count(rng)}
    elif shape < 0.55:
        usage["cache_creation"] = {"ephemeral_1h_input_tokens": count(rng)}
    elif shape < 0.6:
        usage["cache_creation"] = ["not", "an", "object"]
    tools = rng.random()
    if tools < 0.2:
        usage["server_tool_use"] = {"web_search_requests": rng.choice([*ODD, 1, 3, 8])}
    elif tools < 0.3:
        usage["server_tool_use"] = None
    geo = rng.random()
    if geo < 0.6:
        usage["inference_geo"] = rng.choice(["us", "global", "eu", 5, None])
    return usage


def random_line(rng: random.Random, i: int) -> Dict[str, Any]:
    kind = rng.choices(["succeeded", "errored", "canceled", "expired"], [85, 7, 4, 4])[0]
    if kind != "succeeded":
        return {"custom_id": f"r{i}", "result": {"type": kind}}
    message: Dict[str, Any] = {"id": "m", "type": "message", "role": "assistant",
                               "content": [], "usage": random_usage(rng)}
    model = rng.choice(MODELS)
    if model is not None:
        message["model"] = model
    return {"custom_id": f"r{i}", "result": {"type": "succeeded", "message": message}}


class Reference:
    """The tracker's figures as they were worked out before: each result priced in Decimal
    (``price_result``) and added to every group it belongs to (``Totals.add``)."""

    def __init__(self, tracker: CostTracker) -> None:
        self.table = tracker.table
        self.totals, self.job, self.job_reused, self._batch = Totals(), Totals(), Totals(), \
            Totals()
        self.by_model: Dict[str, Totals] = {}
        self.job_by_model: Dict[str, Totals] = {}
        self.by_batch: Dict[str, Totals] = {}

    def on_job_start(self) -> None:
        self.job, self.job_reused, self._batch = Totals(), Totals(), Totals()
        self.job_by_model = {}

    def on_result(self, raw: Dict[str, Any], batch: Any, reusing: bool) -> None:
        cost = price_result(raw, self.table, batch.created_at)
        if reusing:
            self.job_reused.add(cost)
            return
        groups = [self.totals, self.job, self._batch]
        if cost.model is not None:
            for by_model in (self.by_model, self.job_by_model):
                groups.append(by_model.setdefault(cost.model, Totals()))
        for totals in groups:
            totals.add(cost)

    def on_batch_end(self, batch: Any) -> None:
        self.by_batch[batch.id] = self._batch
        self._batch = Totals()


def exactly(totals: Totals) -> Dict[str, Any]:
    """Every field, and each Decimal's digits and exponent (``==`` ignores the exponent)."""
    return {name: (value, value.as_tuple()) if isinstance(value, Decimal) else value
            for name, value in attrs.asdict(totals).items()}


def same_figures(tracker: CostTracker, reference: Reference) -> None:
    assert exactly(tracker.totals) == exactly(reference.totals)
    assert exactly(tracker.job) == exactly(reference.job)
    assert exactly(tracker.job_reused) == exactly(reference.job_reused)
    for mine, theirs in ((tracker.by_model, reference.by_model),
                         (tracker.job_by_model, reference.job_by_model),
                         (tracker.by_batch, reference.by_batch)):
        assert sorted(mine) == sorted(theirs)
        for key in theirs:
            assert exactly(mine[key]) == exactly(theirs[key]), key
    assert tracker.total_usd.as_tuple() == reference.totals.batch_usd.as_tuple()
    assert tracker.standard_usd.as_tuple() == reference.totals.standard_usd.as_tuple()
    assert tracker.complete == reference.totals.complete


def a_job(client: BatchClient, name: str) -> JobContext:
    requests = [Request("r0", {"model": "claude-haiku-4-5", "max_tokens": 1,
                               "messages": [{"role": "user", "content": "hi"}]})]
    job = client.job(requests, name=name)
    return JobContext(job)


@pytest.mark.parametrize("seed", range(6))
def test_counted_totals_are_the_decimal_sums_of_each_result_priced(seed: int) -> None:
    rng = random.Random(seed)
    table = load_pricing()
    if seed % 3 == 1:  # batches discount searches; "claude-opus-9" priced, at odd rates
        table = attrs.evolve(load_pricing({"claude-opus-9": {"input": "3.3333",
                                                             "output": "17.77"}}),
                             web_search_batch_discount=True)
    tracker = CostTracker(pricing=table)
    reference = Reference(tracker)
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    outside = CallContext(client)
    numbered = iter(range(10**6))
    # results streamed outside any job (client.results) count for the tracker, not a job
    batch = types.SimpleNamespace(id="b-outside", created_at=DAYS[1])
    for _ in range(50):
        raw = random_line(rng, next(numbered))
        tracker.on_result(raw=raw, batch=batch, context=outside)
        reference.on_result(raw, batch, reusing=False)
    for job_number in range(3):
        context = a_job(client, f"job-{seed}-{job_number}")
        tracker.on_job_start(context)
        reference.on_job_start()
        for batch_number in range(rng.randint(1, 4)):
            batch = types.SimpleNamespace(id=f"b-{job_number}-{batch_number}",
                                          created_at=rng.choice(DAYS))
            for _ in range(rng.randint(0, 400)):
                raw = random_line(rng, next(numbered))
                context.reusing = rng.random() < 0.1
                bought = types.SimpleNamespace(id="earlier", created_at=rng.choice(DAYS))
                where = bought if context.reusing else batch
                tracker.on_result(raw=raw, batch=where, context=context)
                reference.on_result(raw, where, reusing=context.reusing)
                if rng.random() < 0.02:  # figures read mid-batch, as progress does
                    same_figures(tracker, reference)
                    assert tracker.job_cost(context) == float(reference.job.batch_usd)
            context.reusing = False
            tracker.on_batch_end(batch)
            reference.on_batch_end(batch)
            same_figures(tracker, reference)
    assert reference.totals.not_billed and reference.totals.unknown  # the mix had both


def test_keep_results_keeps_each_result_priced() -> None:
    rng = random.Random(9)
    tracker = CostTracker(keep_results=True)
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    batch = types.SimpleNamespace(id="b", created_at=DAYS[0])
    lines = [random_line(rng, i) for i in range(200)]
    for raw in lines:
        tracker.on_result(raw=raw, batch=batch, context=CallContext(client))
    assert tracker.result_costs == [price_result(raw, tracker.table, DAYS[0]) for raw in lines]


def usage_cases() -> List[Any]:
    rng = random.Random(3)
    cases: List[Any] = [random_usage(rng) for _ in range(2000)]
    cases += [{}, {"cache_creation": None}, {"server_tool_use": {"web_search_requests": -1}},
              {"cache_creation_input_tokens": 10,
               "cache_creation": {"ephemeral_5m_input_tokens": 8,
                                  "ephemeral_1h_input_tokens": 8}},
              {"server_tool_use": types.SimpleNamespace(web_search_requests=4)}]
    return cases


def test_a_raw_usage_is_read_as_any_mapping_is() -> None:
    """The raw dict's spelled-out path reads what the general one reads, odd values too."""
    for usage in usage_cases():
        if usage is None:
            continue
        general = usage_numbers(types.MappingProxyType(usage))  # not a dict: the general path
        assert _dict_numbers(usage) == general == usage_numbers(usage), usage
        assert UsageCounts.from_usage(usage) == UsageCounts(*general)


def test_a_typed_usage_is_read_as_its_raw_line() -> None:
    from claudebatch._results import to_result

    from .test_costing import line

    for usage in usage_cases():
        if usage is None or any(isinstance(v, (bool, float, str, list)) for v in usage.values()
                                if not isinstance(v, dict)):
            continue  # lines a typed result refuses
        try:
            typed = to_result(line("claude-haiku-4-5", usage)).result.message.usage
        except Exception:
            continue
        assert usage_numbers(typed) == usage_numbers(usage), usage


def test_a_figure_read_twice_is_not_priced_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress asks ``job_cost`` at every poll: the priced sum is remembered until a result
    comes."""
    from claudebatch_cost import ledger

    tracker = CostTracker()
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    context = a_job(client, "j")
    tracker.on_job_start(context)
    batch = types.SimpleNamespace(id="b", created_at=DAYS[1])
    rng = random.Random(1)
    for i in range(20):
        tracker.on_result(raw=random_line(rng, i), batch=batch, context=context)
    priced: List[Optional[int]] = []
    charges = ledger.Rate.charges
    monkeypatch.setattr(ledger.Rate, "charges",
                        lambda self, *a: priced.append(1) or charges(self, *a))
    first = tracker.job_cost(context)
    calls = len(priced)
    assert tracker.job_cost(context) == first and len(priced) == calls
    tracker.on_result(raw=random_line(rng, 99), batch=batch, context=context)
    tracker.job_cost(context)
    assert len(priced) > calls
