"""StructuredOutput in whole jobs against the emulator, over real loopback HTTP: each
failure class, the repair pass, typed values, and the plugins beside it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Literal

import attrs
import pytest
from claudebatch_cost import CostTracker
from claudebatch_retry import RetryPolicy
from claudebatch_structured import StructuredOutput

from claudebatch import BatchClient, hookimpl
from claudebatch.emulator import Emulator, Faults, ManualClock


@attrs.define
class Triage:
    sentiment: Literal["negative", "neutral", "positive"]
    urgency: int
    summary: str


SCHEMA = {"type": "object", "additionalProperties": False,
          "properties": {"sentiment": {"enum": ["negative", "neutral", "positive"]},
                         "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
                         "summary": {"type": "string"}},
          "required": ["sentiment", "urgency", "summary"]}


def rows(count: int, max_tokens: int = 300) -> List[Dict[str, Any]]:
    return [{"custom_id": f"t-{i:03d}", "params": {
        "model": "claude-sonnet-5-5", "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": f"Triage ticket {i}: the app crashes"}]}}
        for i in range(count)]


class FaultsFirstPassOnly:
    """The emulator's faults for the first pass only: what a repair pass expects is exact."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    @hookimpl
    def before_submit(self, context: Any) -> None:
        if getattr(context, "pass_number", 1) > 1:
            self.emulator.faults = Faults()


class Sent:
    """Every request as it went out, by custom_id."""

    def __init__(self) -> None:
        self.requests: Dict[str, List[Dict[str, Any]]] = {}

    @hookimpl
    def before_submit(self, requests: Any) -> None:
        requests.observe(lambda r: self.requests.setdefault(r.custom_id, []).append(r.params))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(rate=100.0, seed=9, clock=clock,
                  faults=Faults(invalid_json=0.1, schema_violation=0.1, truncated=0.1,
                                refused=0.05)) as emu:
        yield emu


def client_for(emulator: Emulator, clock: ManualClock, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="k", base_url=emulator.url, clock=clock, poll_interval=1.0,
                       load_entry_points=False, plugins=plugins)


def lines(path: Path) -> Dict[str, Dict[str, Any]]:
    return {value["custom_id"]: value for value in map(json.loads, path.read_text().splitlines())}


def test_every_answer_is_parsed_or_classed_and_the_repair_pass_fixes_the_repairable(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    structured = StructuredOutput(Triage, repair_passes=1)
    sent = Sent()
    client = client_for(emulator, clock, structured, sent, FaultsFirstPassOnly(emulator))
    report = client.run(rows(200), output=str(tmp_path / "out.jsonl"))

    first = {c: p[0] for c, p in sent.requests.items()}
    assert all(p["output_config"]["format"]["schema"]["required"] ==
               ["sentiment", "urgency", "summary"] for p in first.values())
    again = {c: p[1] for c, p in sent.requests.items() if len(p) > 1}
    out = lines(tmp_path / "out.jsonl")
    refused = {c for c, v in out.items() if v.get("structured_error", {}).get("class") ==
               "refusal"}
    assert refused and not refused & set(again)  # a refusal is not sent again
    assert 30 < len(again) < 100 and report.passes == 2
    grown = [c for c in again if again[c]["max_tokens"] > first[c]["max_tokens"]]
    assert grown and all(again[c]["max_tokens"] == 600 for c in grown)  # truncated: twice

    assert structured.parsed + len(refused) == 200 and structured.repaired == len(again)
    assert structured.invalid == {"refusal": len(refused)}
    assert set(structured.failures) == refused
    assert report.plugins["structured"] == {"parsed": structured.parsed,
                                            "invalid": f"{len(refused)} (refusal "
                                                       f"{len(refused)})",
                                            "repaired": len(again), "repair_passes": 1}
    for custom_id, value in out.items():
        if custom_id in refused:
            assert "parsed" not in value
        else:
            assert set(value["parsed"]) >= {"sentiment", "urgency", "summary"}
    typed = [result.parsed for _, result in report.results() if result.parsed is not None]
    assert len(typed) == structured.parsed and all(isinstance(t, Triage) for t in typed)


def test_without_repair_each_failure_is_reported_with_its_class_and_path(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    structured = StructuredOutput(SCHEMA, repair_passes=0)
    report = client_for(emulator, clock, structured).run(
        rows(200), output=str(tmp_path / "out.jsonl"))
    assert report.passes == 1 and emulator.batches_created == 1
    invalid = structured.invalid
    assert set(invalid) == {"invalid_json", "schema_violation", "truncated", "refusal"}
    assert structured.parsed + sum(invalid.values()) == 200
    out = lines(tmp_path / "out.jsonl")
    violation = next(f for f in structured.failures.values()
                     if f.problem.kind == "schema_violation")
    assert violation.problem.path == "$" and "required property" in violation.problem.message
    assert out[violation.custom_id]["structured_error"]["class"] == "schema_violation"
    assert all(isinstance(r.parsed, dict) for _, r in report.results() if r.parsed is not None)
    assert "structured: parsed" in report.summary()


def test_repairs_join_the_retry_plugins_resubmissions_and_cost_counts_both(
        clock: ManualClock, tmp_path: Path) -> None:
    with Emulator(rate=100.0, seed=4, clock=clock,
                  faults=Faults(errored=0.1, invalid_json=0.1)) as emu:
        structured = StructuredOutput(SCHEMA)
        retry = RetryPolicy(passes=1, pause=0)
        tracker = CostTracker()
        client = client_for(emu, clock, retry, structured, tracker, FaultsFirstPassOnly(emu))
        report = client.run(rows(100), output=str(tmp_path / "out.jsonl"))
    assert report.all_succeeded and report.passes == 2
    assert retry.resubmitted > 0 and structured.repaired > 0
    assert structured.parsed == 100
    # the cost plugin priced every attempt: each request once, the repairs once more
    # (errored results cost nothing, and every retried one succeeded)
    assert tracker.job.results == 100 + retry.resubmitted
    assert tracker.job.succeeded == 100 + structured.repaired


def test_the_budget_covers_the_repair_pass(clock: ManualClock, tmp_path: Path) -> None:
    with Emulator(rate=100.0, seed=4, clock=clock, faults=Faults(invalid_json=0.9)) as emu:
        dry = CostTracker()
        BatchClient(api_key="k", load_entry_points=False, plugins=[
            StructuredOutput(SCHEMA), dry]).job(rows(100)).dry_run()
        assert dry.job_estimate is not None
        budget = dry.job_estimate.worst_batch_usd * Decimal("1.001")  # one pass, not two
        structured = StructuredOutput(SCHEMA)
        client = client_for(emu, clock, structured, CostTracker(budget_usd=budget))
        report = client.run(rows(100), output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 1  # the repair pass was weighed, and not sent
    assert "resubmission pass 2" in report.plugins["cost"]["note 1"]
    assert "would pass the budget" in report.plugins["cost"]["note 1"]
    assert len(lines(tmp_path / "out.jsonl")) == 100  # the first pass's answers are kept
    assert structured.invalid["invalid_json"] == 100 - structured.parsed  # and reported


def test_a_resumed_job_sends_the_repairs_the_stopped_run_decided(
        clock: ManualClock, tmp_path: Path) -> None:
    from claudebatch_sqlite import SQLiteStore

    from ..sqlite.helpers import Interrupted, StopAt

    with Emulator(rate=100.0, seed=9, clock=clock,
                  faults=Faults(invalid_json=0.1, truncated=0.1)) as emu:
        sent = Sent()
        first = StructuredOutput(SCHEMA)
        with pytest.raises(Interrupted):  # stopped once the repair batch exists
            client_for(emu, clock, SQLiteStore(tmp_path / "s.db"), first, sent,
                       FaultsFirstPassOnly(emu), StopAt("after_submit", 2)).run(
                rows(100), output=str(tmp_path / "out.jsonl"), name="labels")
        decided = {c: p[1] for c, p in sent.requests.items() if len(p) > 1}
        assert decided and emu.batches_created == 2

        again = StructuredOutput(SCHEMA)
        report = client_for(emu, clock, SQLiteStore(tmp_path / "s.db"), again).run(
            rows(100), output=str(tmp_path / "out.jsonl"), name="labels")
        assert emu.batches_created == 2  # the repair batch was made already: collected
    assert report.passes == 2 and again.parsed == 100 and again.invalid == {}
    assert again.repaired == len(decided)
    assert all("parsed" in line for line in lines(tmp_path / "out.jsonl").values())


def test_a_pydantic_model_gives_model_instances(clock: ManualClock, tmp_path: Path) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Label(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        sentiment: Literal["negative", "neutral", "positive"]
        urgency: int

    with Emulator(rate=100.0, seed=3, clock=clock) as emu:
        structured = StructuredOutput(Label)
        report = client_for(emu, clock, structured).run(
            rows(20), output=str(tmp_path / "out.jsonl"))
    assert structured.parsed == 20
    assert all(isinstance(result.parsed, Label) for _, result in report.results())


def test_batches_are_cut_with_room_for_the_schema_each_request_gains(
        clock: ManualClock, tmp_path: Path) -> None:
    """A big schema on small requests: the job's batches stay within the byte limit."""
    from claudebatch.limits import json_bytes

    wide = {"type": "object", "additionalProperties": False,
            "properties": {f"field_{i:03d}": {"type": "string"} for i in range(60)},
            "required": ["field_000"]}
    structured = StructuredOutput(wide)
    sent: List[int] = []

    class Sizes:
        @hookimpl
        def before_submit(self, requests: Any) -> None:
            sent.append(requests.write_body().seek(0, 2))

    request_bytes = len(json_bytes(rows(1)[0]))
    limit = 40 * request_bytes  # 40 plain requests; with the schema, far fewer
    with Emulator(rate=float("inf"), seed=1, clock=clock) as emu:
        report = client_for(emu, clock, structured, Sizes()).run(
            rows(60), output=str(tmp_path / "out.jsonl"), max_batch_bytes=limit)
    assert report.all_succeeded and len(report.batches) > 2
    assert max(sent) <= limit


def test_a_job_is_not_resumed_with_another_schema_or_api_version(
        clock: ManualClock, tmp_path: Path) -> None:
    from claudebatch_sqlite import InputChangedError, SQLiteStore

    from ..sqlite.helpers import Interrupted, StopAt

    other = {**SCHEMA, "required": ["sentiment"]}
    with Emulator(rate=100.0, seed=9, clock=clock) as emu:
        with pytest.raises(Interrupted):
            client_for(emu, clock, SQLiteStore(tmp_path / "s.db"), StructuredOutput(SCHEMA),
                       StopAt("on_batch_end", 1)).run(
                rows(10), output=str(tmp_path / "out.jsonl"), name="labels")
        with pytest.raises(InputChangedError, match=r"structured\.schema was"):
            client_for(emu, clock, SQLiteStore(tmp_path / "s.db"), StructuredOutput(other)).run(
                rows(10), output=str(tmp_path / "out.jsonl"), name="labels")
        legacy = BatchClient(api_key="k", base_url=emu.url, clock=clock, poll_interval=1.0,
                             load_entry_points=False, api_version="2023-06-01",
                             plugins=[SQLiteStore(tmp_path / "s.db"), StructuredOutput(SCHEMA)])
        with pytest.raises(InputChangedError, match="api_version was '2026-10-21'"):
            legacy.run(rows(10), output=str(tmp_path / "out.jsonl"), name="labels")
        report = client_for(emu, clock, SQLiteStore(tmp_path / "s.db"),
                            StructuredOutput(SCHEMA)).run(
            rows(10), output=str(tmp_path / "out.jsonl"), name="labels")
        assert report.all_succeeded and emu.batches_created == 1
