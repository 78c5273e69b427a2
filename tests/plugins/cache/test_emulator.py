"""Whole jobs against the emulator over loopback HTTP: the marks are accepted, the cache
is read, and the plugin's figures are the output file's usage."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from claudebatch_cache import PromptCache

from claudebatch import BatchClient, PendingBatch, Request, hookimpl
from claudebatch._demo import support_tickets
from claudebatch.emulator import Emulator, ManualClock

from .helpers import ephemeral, long_text, request, tool

MODEL = "claude-sonnet-4-5"
SONNET_INPUT_PER_MTOK = Decimal(3)  # list price, USD per million input tokens
MILLION = Decimal(1_000_000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(seed=11, rate=200.0, clock=clock) as emu:
        yield emu


def client_for(emulator: Emulator, clock: ManualClock, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emulator.url, clock=clock,
                       plugins=list(plugins), poll_interval=1.0)


def tickets(count: int) -> List[Request]:
    """The demo's triage tickets (one shared ~2,200-token system prompt), on Sonnet 4.5."""
    return list(support_tickets(count, model=MODEL))


def usage_lines(path: str) -> List[Tuple[str, Dict[str, Any]]]:
    with open(path) as handle:
        lines = [json.loads(line) for line in handle]
    return [(line["custom_id"], line["result"]["message"]["usage"]) for line in lines
            if line["result"]["type"] == "succeeded"]


def totals(path: str) -> Dict[str, int]:
    out = {"read": 0, "write": 0, "write_5m": 0, "write_1h": 0, "with_reads": 0}
    for _, usage in usage_lines(path):
        out["read"] += usage["cache_read_input_tokens"]
        out["write"] += usage["cache_creation_input_tokens"]
        out["write_5m"] += usage["cache_creation"]["ephemeral_5m_input_tokens"]
        out["write_1h"] += usage["cache_creation"]["ephemeral_1h_input_tokens"]
        out["with_reads"] += usage["cache_read_input_tokens"] > 0
    return out


def test_a_job_reads_the_cache_and_the_figures_are_the_output_files_usage(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    cache = PromptCache()
    output = str(tmp_path / "out.jsonl")
    report = client_for(emulator, clock, cache).run(tickets(80), output=output)
    assert report.all_succeeded  # the emulator validated every breakpoint
    found = totals(output)
    assert found["read"] > 0 and found["with_reads"] == 79  # the first one writes
    assert found["write"] == found["write_1h"] > 0  # the default TTL is 1h
    assert (cache.cache_read_tokens, cache.cache_write_tokens) == (found["read"], found["write"])
    assert cache.hit_rate == found["read"] / (found["read"] + found["write"])
    section = report.plugins["cache"]
    assert section["hit_rate"] == round(cache.hit_rate, 4)
    assert section["cache_read_tokens"] == found["read"]
    assert section["requests_marked"] == 80 and section["groups"] == 1
    # predicted: 80 requests reach the shared prefix; 79 of them can read it
    prefix = section["cacheable_tokens_predicted"] // 80
    assert section["read_tokens_predicted"] == 79 * prefix == found["read"]
    # no cost plugin on this client: the saving is priced from the model catalog all the same
    assert cache.saved_usd is not None and cache.saved_usd > 0
    assert section["saved_usd"] == cache.saved_usd.quantize(Decimal("0.000001"))


def independent_saving(read: int, write_5m: int, write_1h: int) -> Decimal:
    """Batch price (0.5x) of Sonnet 4.5: reads cost 0.1x input, 5m writes 1.25x, 1h 2x."""
    base = SONNET_INPUT_PER_MTOK / MILLION
    return Decimal("0.5") * base * (read * Decimal("0.9") - write_5m * Decimal("0.25")
                                    - write_1h * 1)


def test_with_the_cost_plugin_the_saving_matches_the_output_file(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    cost = pytest.importorskip("claudebatch_cost")
    cache = PromptCache(ttl="5m", min_group=2)
    output = str(tmp_path / "out.jsonl")
    report = client_for(emulator, clock, cache, cost.CostTracker()).run(tickets(50),
                                                                        output=output)
    found = totals(output)
    assert found["read"] > 0 and found["write_5m"] > 0
    expected = independent_saving(found["read"], found["write_5m"], found["write_1h"])
    assert cache.saved_usd == expected > 0
    assert report.plugins["cache"]["saved_usd"] == expected.quantize(Decimal("0.000001"))


def test_priming_writes_once_then_every_request_reads(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    cache = PromptCache(prime=True)
    output = str(tmp_path / "out.jsonl")
    client = client_for(emulator, clock, cache)
    report = client.run(tickets(40), output=output)
    assert report.all_succeeded
    found = totals(output)
    assert found["write"] == 0 and found["with_reads"] == 40  # nobody raced to write
    # the primer is its own batch: not the job's, and not in its output
    assert emulator.batches_created == 2
    assert len(report.batch_ids) == 1 and cache.primer_batch_ids[0] not in report.batch_ids
    assert all(not cid.startswith("cache-primer") for cid, _ in usage_lines(output))
    assert report.plugins["cache"]["primers"] == 1
    primer_lines = list(client.results(cache.primer_batch_ids[0], raw=True))
    primer_writes = sum(line["result"]["message"]["usage"]["cache_creation_input_tokens"]
                        for line in primer_lines)
    assert cache.primer_usage.cache_write_tokens == primer_writes > 0
    # one token of answer: a batch refuses max_tokens 0
    assert primer_lines[0]["result"]["message"]["usage"]["output_tokens"] == 1
    assert cache.hit_rate == 1.0


def test_with_priming_the_saving_pays_for_the_primer(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    cost = pytest.importorskip("claudebatch_cost")
    cache = PromptCache(prime=True)
    client = client_for(emulator, clock, cache, cost.CostTracker())
    output = str(tmp_path / "out.jsonl")
    client.run(tickets(30), output=output)
    found = totals(output)
    (primer,) = client.results(cache.primer_batch_ids[0], raw=True)
    usage = primer["result"]["message"]["usage"]
    base = SONNET_INPUT_PER_MTOK / MILLION
    primer_cost = Decimal("0.5") * (
        base * (usage["input_tokens"] + 2 * usage["cache_creation"]["ephemeral_1h_input_tokens"])
        + Decimal(15) / MILLION * usage["output_tokens"])
    expected = independent_saving(found["read"], found["write_5m"], found["write_1h"])
    assert cache.saved_usd == expected - primer_cost


@pytest.mark.parametrize("count, batch_size", [(51, 25), (6, 2)])
def test_a_multi_batch_job_marks_what_the_batches_of_its_pass_share(
        emulator: Emulator, clock: ManualClock, tmp_path: Path, count: int,
        batch_size: int) -> None:
    cache = PromptCache()
    output = str(tmp_path / "out.jsonl")
    # 51 in batches of 25: the last batch holds a single request; 6 in batches of 2: no
    # batch alone reaches the 1-hour break-even group of 3. Prefixes are counted over the
    # whole pass, so every request is marked, and all but the first read the cache.
    report = client_for(emulator, clock, cache).run(tickets(count), output=output,
                                                    max_batch_requests=batch_size)
    assert len(report.batch_ids) == 3
    assert report.plugins["cache"]["requests_marked"] == count
    found = totals(output)
    assert found["with_reads"] == count - 1 and found["read"] == cache.cache_read_tokens


def test_user_marks_and_the_api_rules_hold_against_the_emulators_validation(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    system = long_text(1500)
    doc = long_text(1500, "contract")
    batch: List[Request] = []
    for i in range(4):  # a 5m breakpoint on the tools, before the shared system prompt
        batch.append(request(f"five-{i}", system=system, tools=[
            {**tool("search", 100), "cache_control": ephemeral("5m")}]))
    for i in range(4):  # four breakpoints already
        batch.append(request(
            f"four-{i}",
            tools=[{**tool("a", 50), "cache_control": ephemeral("1h")},
                   {**tool("b", 50), "cache_control": ephemeral("1h")}],
            system=[{"type": "text", "text": "Be brief.", "cache_control": ephemeral("1h")},
                    {"type": "text", "text": "Be kind.", "cache_control": ephemeral("1h")}],
            messages=[{"role": "user", "content": [{"type": "text", "text": doc},
                                                   {"type": "text", "text": f"q{i}"}]}]))
    for i in range(4):  # automatic caching at the top level
        batch.append(request(f"auto-{i}", system=doc, cache_control={"type": "ephemeral"}))
    cache = PromptCache(override=True)
    output = str(tmp_path / "out.jsonl")
    report = client_for(emulator, clock, cache).run(batch, output=output)
    assert report.all_succeeded, report.counts  # no invalid_request_error from the rules
    reads = {cid: usage["cache_read_input_tokens"] for cid, usage in usage_lines(output)}
    assert sum(reads[f"five-{i}"] > 0 for i in range(4)) == 3
    assert sum(reads[f"auto-{i}"] > 0 for i in range(4)) == 3
    assert cache.predicted.unmarked == {"full": 4}


def test_a_dry_run_predicts_and_sends_nothing(emulator: Emulator, clock: ManualClock) -> None:
    cache = PromptCache(prime=True)
    plan = client_for(emulator, clock, cache).job(tickets(30)).dry_run()
    section = plan.plugins["cache"]
    assert section["requests_marked"] == 30 and section["primers"] == 1
    # primed: every request can read, the first one too
    assert section["read_tokens_predicted"] == section["cacheable_tokens_predicted"]
    assert section["cacheable_tokens_predicted"] > 0
    assert "hit_rate" not in section
    assert emulator.batches_created == 0


class Veto:
    """A budget-like plugin: refuses batches whose first custom_id starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @hookimpl
    def before_submit(self, requests: Any) -> None:
        if next(iter(requests)).custom_id.startswith(self.prefix):
            raise RuntimeError("over budget")


def test_a_veto_of_the_batch_comes_before_any_primer_is_sent(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    client = client_for(emulator, clock, PromptCache(prime=True), Veto("ticket"))
    with pytest.raises(RuntimeError, match="over budget"):
        client.run(tickets(10), output=str(tmp_path / "out.jsonl"))
    assert emulator.batches_created == 0  # priming runs trylast: after the veto


def test_a_failed_primer_never_fails_the_job(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    cache = PromptCache(prime=True)
    output = str(tmp_path / "out.jsonl")
    report = client_for(emulator, clock, cache, Veto("cache-primer")).run(tickets(10),
                                                                          output=output)
    assert report.all_succeeded and emulator.batches_created == 1
    assert cache.primer_batch_ids == [] and "primers" not in report.plugins["cache"]
    assert totals(output)["with_reads"] == 9  # unprimed: the first request writes


def test_each_job_reports_its_own_figures(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    cache = PromptCache()
    client = client_for(emulator, clock, cache)
    client.run(tickets(10), output=str(tmp_path / "one.jsonl"))
    second = client.run(tickets(5), output=str(tmp_path / "two.jsonl"))
    assert second.plugins["cache"]["requests_marked"] == 5
    assert cache.observed.results == 5
    assert cache.cache_read_tokens == totals(str(tmp_path / "two.jsonl"))["read"]


def test_each_batch_is_transformed_once_in_a_job_and_in_a_plain_create(
        emulator: Emulator, clock: ManualClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    registered: List[int] = []
    original = PendingBatch.transform

    def spy(self: PendingBatch, fn: Any) -> None:
        registered.append(self.index)
        original(self, fn)

    monkeypatch.setattr(PendingBatch, "transform", spy)
    client = client_for(emulator, clock, PromptCache())
    report = client.run(tickets(30), output=str(tmp_path / "out.jsonl"), max_batch_requests=10)
    assert report.all_succeeded and registered == [0, 1, 2]  # before_pass, not again
    registered.clear()
    batch = client.create(tickets(5))  # no job: before_submit places the breakpoints
    assert registered == [0]
    ended = client.wait(batch.id)
    usage = [r.result.message.usage for r in client.results(ended)]
    assert sum(u.cache_read_input_tokens > 0 for u in usage) == 5  # the job's prefix, warm
