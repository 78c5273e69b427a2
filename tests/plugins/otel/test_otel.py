"""The OpenTelemetry plugin: spans of a job, its passes and batches; request and token metrics.

Real SDK objects with in-memory exporters; the job goes over real HTTP to the emulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

pytest.importorskip("opentelemetry.sdk")

from claudebatch_otel import OpenTelemetry
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from claudebatch import BatchClient, hookimpl
from claudebatch.emulator import Emulator, Faults


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracing = TracerProvider()
        self.tracing.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.metering = MeterProvider(metric_readers=[self.reader])
        self.plugin = OpenTelemetry(self.tracing, self.metering)

    def points(self, name: str) -> List[Tuple[Dict[str, Any], float]]:
        found = []
        for resource in self.reader.get_metrics_data().resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            found.append((dict(point.attributes),
                                          value if value is not None else point.sum))
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    yield Telemetry()


def requests(n: int) -> List[Dict[str, Any]]:
    return [{"custom_id": f"r{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 16,
             "messages": [{"role": "user", "content": f"q{i}"}]}} for i in range(n)]


class Again:
    """A second pass of the errored requests."""

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: Any) -> Any:
        if pass_number > 1:
            return None
        failed = [v for v in map(json.loads, Path(context.output).read_bytes().splitlines())
                  if v["result"]["type"] == "errored"]
        return list(context.find_requests(v["custom_id"] for v in failed))


def test_a_job_is_a_span_with_a_child_per_pass_and_a_grandchild_per_batch(
        telemetry: Telemetry, tmp_path: Path) -> None:
    with Emulator(rate=float("inf"), seed=1, faults=Faults(errored=0.3)) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False,
                             plugins=[telemetry.plugin, Again()])
        report = client.run(requests(30), name="traced", output=str(tmp_path / "o.jsonl"),
                            poll_interval=0.01, max_batch_requests=20)
        batch_ids = list(emu.batch_ids)
    spans = telemetry.spans.get_finished_spans()
    (job,) = [s for s in spans if s.name == "claudebatch.job"]
    passes = sorted((s for s in spans if s.name == "claudebatch.pass"),
                    key=lambda s: s.attributes["claudebatch.pass"])
    batches = [s for s in spans if s.name == "claudebatch.batch"]
    assert job.attributes["claudebatch.job.name"] == "traced"
    assert job.attributes["gen_ai.system"] == "anthropic"
    assert job.attributes["claudebatch.requests"] == 30
    assert job.attributes["claudebatch.passes"] == report.passes == 2
    assert [p.parent.span_id for p in passes] == [job.context.span_id] * 2
    assert sorted(b.attributes["claudebatch.batch.id"] for b in batches) == sorted(batch_ids)
    by_pass = {p.attributes["claudebatch.pass"]: p.context.span_id for p in passes}
    for batch in batches:
        assert batch.parent.span_id == by_pass[batch.attributes["claudebatch.pass"]]
        results = sum(v for k, v in batch.attributes.items() if k.startswith(
            "claudebatch.results."))
        assert results == batch.attributes["claudebatch.batch.requests"]
    assert sum(b.attributes.get("gen_ai.usage.output_tokens", 0) for b in batches) > 0
    assert job.status.status_code != StatusCode.ERROR


def test_metrics_count_requests_by_type_and_tokens_by_kind(telemetry: Telemetry,
                                                           tmp_path: Path) -> None:
    with Emulator(rate=float("inf"), seed=2, faults=Faults(errored=0.3)) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False,
                             plugins=[telemetry.plugin])
        report = client.run(requests(25), output=str(tmp_path / "o.jsonl"),
                            poll_interval=0.01)
        served = [v for batch_id in emu.batch_ids
                  for v in client.results(batch_id, raw=True)]
    counted: Dict[str, float] = {}
    for attributes, value in telemetry.points("claudebatch.requests"):
        kind = attributes["claudebatch.result_type"]
        counted[kind] = counted.get(kind, 0) + value
    assert counted == {k: float(v) for k, v in report.counts.items()}
    tokens = {a["gen_ai.token.type"]: v for a, v in telemetry.points(
        "gen_ai.client.token.usage")}
    expected_output = sum(v["result"]["message"]["usage"]["output_tokens"] for v in served
                          if v["result"]["type"] == "succeeded")
    assert tokens["output"] == expected_output


def test_a_dry_run_ends_its_spans(telemetry: Telemetry) -> None:
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False,
                         plugins=[telemetry.plugin])
    client.job(requests(3), name="dry").dry_run()
    names = sorted(s.name for s in telemetry.spans.get_finished_spans())
    assert names == ["claudebatch.job", "claudebatch.pass"]
    (job,) = [s for s in telemetry.spans.get_finished_spans() if s.name == "claudebatch.job"]
    assert job.attributes["claudebatch.dry_run"] is True


# --- dollars, when a cost plugin counts them ------------------------------------------

def mixed(n: int) -> List[Dict[str, Any]]:
    models = ("claude-haiku-4-5", "claude-sonnet-4-5")
    return [{"custom_id": f"r{i}", "params": {"model": models[i % 2], "max_tokens": 32,
             "messages": [{"role": "user", "content": f"q{i}"}]}} for i in range(n)]


def test_dollars_are_a_metric_by_model_and_on_every_span(telemetry: Telemetry,
                                                         tmp_path: Path) -> None:
    from claudebatch_cost import CostTracker

    tracker = CostTracker()
    with Emulator(rate=float("inf"), seed=3, faults=Faults(errored=0.3)) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False,
                             plugins=[telemetry.plugin, tracker, Again()])
        report = client.run(mixed(30), name="priced", output=str(tmp_path / "o.jsonl"),
                            poll_interval=0.01, max_batch_requests=20)
    assert report.passes == 2 and tracker.job.batch_usd > 0
    by_model: Dict[str, float] = {}
    for attributes, value in telemetry.points("claudebatch.cost"):
        assert attributes["gen_ai.system"] == "anthropic"
        model = attributes["gen_ai.request.model"]
        by_model[model] = by_model.get(model, 0.0) + value
    assert set(by_model) == set(tracker.job_by_model) and len(by_model) == 2
    for model, totals in tracker.job_by_model.items():
        assert by_model[model] == pytest.approx(float(totals.batch_usd), abs=1e-9)

    spans = telemetry.spans.get_finished_spans()
    (job,) = [s for s in spans if s.name == "claudebatch.job"]
    assert job.attributes["claudebatch.cost_usd"] == round(float(tracker.job.batch_usd), 6)
    for kind in ("claudebatch.pass", "claudebatch.batch"):
        found = [s for s in spans if s.name == kind]
        assert len(found) >= 2
        assert sum(s.attributes["claudebatch.cost_usd"] for s in found) == pytest.approx(
            float(tracker.job.batch_usd), abs=1e-5)
    for batch in (s for s in spans if s.name == "claudebatch.batch"):
        batch_id = batch.attributes["claudebatch.batch.id"]
        assert batch.attributes["claudebatch.cost_usd"] == pytest.approx(
            float(tracker.by_batch[batch_id].batch_usd), abs=1e-6)


def test_without_a_cost_plugin_there_are_no_dollars(telemetry: Telemetry,
                                                    tmp_path: Path) -> None:
    with Emulator(rate=float("inf"), seed=3) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False,
                             plugins=[telemetry.plugin])
        client.run(mixed(6), output=str(tmp_path / "o.jsonl"), poll_interval=0.01)
    assert telemetry.points("claudebatch.cost") == []
    assert not any("claudebatch.cost_usd" in (s.attributes or {})
                   for s in telemetry.spans.get_finished_spans())


class Stopped(Exception):
    pass


class StopAtResult:
    """Stops the job at its ``n``-th result, as a crash would (after the store kept some)."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    @hookimpl(trylast=True)
    def on_result(self) -> None:
        self.seen += 1
        if self.seen == self.n:
            raise Stopped


class Replayed:
    def __init__(self) -> None:
        self.results: List[Any] = []

    @hookimpl
    def on_result(self, result: Any, context: Any) -> None:
        if context.replaying:
            self.results.append(result)


def test_results_replayed_on_a_resume_are_not_counted_again(tmp_path: Path) -> None:
    from claudebatch_cost import CostTracker
    from claudebatch_sqlite import SQLiteStore

    def run(*plugins: Any) -> Any:
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False,
                             plugins=[SQLiteStore(tmp_path / "s.db", commit_every=2),
                                      *plugins])
        return client.run(mixed(24), name="resumed", output=str(tmp_path / "o.jsonl"),
                          poll_interval=0.01, max_batch_requests=8)

    with Emulator(rate=float("inf"), seed=4) as emu:
        with pytest.raises(Stopped):
            run(CostTracker(), StopAtResult(13))
        telemetry, tracker, replayed = Telemetry(), CostTracker(), Replayed()
        report = run(telemetry.plugin, tracker, replayed)
    assert report.complete and report.counts == {"succeeded": 24}
    assert replayed.results  # the earlier run's results came back from the store
    bought_before = sum(tracker.price(r).batch_usd or 0 for r in replayed.results)
    counted = sum(value for _, value in telemetry.points("claudebatch.cost"))
    assert counted == pytest.approx(float(tracker.job.batch_usd - bought_before), abs=1e-9)
    (job,) = [s for s in telemetry.spans.get_finished_spans() if s.name == "claudebatch.job"]
    assert job.attributes["claudebatch.cost_usd"] == round(float(tracker.job.batch_usd), 6)
