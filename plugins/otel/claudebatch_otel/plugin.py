"""A span per job, pass and batch, and metrics of requests and tokens, through the
OpenTelemetry API (the program's SDK decides where they go).

Spans: ``claudebatch.job`` (from ``on_job_start`` to ``on_job_end``), a child
``claudebatch.pass`` per pass, and under it a ``claudebatch.batch`` per batch (from its
create, or its first result on a resume, to ``on_batch_end``). Attributes follow the
GenAI semantic conventions where they apply (``gen_ai.system``,
``gen_ai.request.model``, ``gen_ai.usage.input_tokens``/``output_tokens``) and
``claudebatch.*`` otherwise.

Metrics: ``claudebatch.requests`` (a counter by ``claudebatch.result_type`` and
``gen_ai.request.model``; answers reused from a store count with ``claudebatch.reused``)
and ``gen_ai.client.token.usage`` (a histogram per result, by ``gen_ai.token.type``:
``input``, ``output``, ``cache_creation``, ``cache_read``). Results replayed from a store
on a resume were counted by the run that bought them, and are not counted again.

Dollars, when a cost plugin counts them (``context.cost_usd()``, the ``job_cost`` hook):
the counter ``claudebatch.cost`` (unit ``USD``, by ``gen_ai.request.model``; the GenAI
conventions have no cost instrument yet) and ``claudebatch.cost_usd`` on the spans. Each
result's dollars are what the job's total grew by once every plugin saw it (a wrapper of
``on_result``), so nothing is priced twice.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Dict, Generator, List, Optional

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from claudebatch import (
    BatchResult,
    CallContext,
    JobContext,
    JobPlan,
    JobReport,
    MessageBatch,
    hookimpl,
)

SYSTEM = "anthropic"


def _version() -> str:
    """This instrumentation's version (the distribution's), as OpenTelemetry asks."""
    try:
        return metadata.version("claudebatch-otel")
    except metadata.PackageNotFoundError:
        return "0"


VERSION = _version()
_TOKEN_KINDS = (("input", "input_tokens"), ("output", "output_tokens"),
                ("cache_creation", "cache_creation_input_tokens"),
                ("cache_read", "cache_read_input_tokens"))


class _BatchTally:
    def __init__(self, span: Span) -> None:
        self.span = span
        self.counts: Dict[str, int] = {}
        self.tokens: Dict[str, int] = {}
        self.cost: Optional[float] = None  # dollars of its results collected by this run


class OpenTelemetry:
    """Traces and measures every job of the client it is given to.

    ``tracer_provider`` / ``meter_provider``: where spans and metrics go (default: the
    global ones the program's OpenTelemetry SDK set up; without one, nowhere).
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer = trace.get_tracer("claudebatch_otel", VERSION,
                                       tracer_provider=tracer_provider)
        meter = metrics.get_meter("claudebatch_otel", VERSION, meter_provider=meter_provider)
        self.requests = meter.create_counter(
            "claudebatch.requests", unit="{request}",
            description="Batch requests answered, by result type")
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Tokens used per batch request, by token type")
        self.cost = meter.create_counter(
            "claudebatch.cost", unit="USD",
            description="Dollars spent on batch results, as the cost plugin prices them")
        self._job: Optional[Span] = None
        self._pass: Optional[Span] = None
        self._pass_cost: Optional[float] = None
        self._batches: Dict[str, _BatchTally] = {}
        self._spent = 0.0  # the job's dollars (context.cost_usd()) at the last result

    def __repr__(self) -> str:
        return "OpenTelemetry()"

    # --- spans ----------------------------------------------------------------------

    def _child(self, name: str, parent: Optional[Span], **attributes: Any) -> Span:
        ctx = trace.set_span_in_context(parent) if parent is not None else \
            otel_context.get_current()
        return self.tracer.start_span(name, context=ctx, attributes=attributes)

    @hookimpl
    def on_job_start(self, context: JobContext) -> None:
        self._end_all()
        self._spent = 0.0
        self._job = self._child("claudebatch.job", None, **{
            "gen_ai.system": SYSTEM, "gen_ai.operation.name": "batch",
            "claudebatch.job.name": context.name,
            "claudebatch.dry_run": context.dry_run,
            "claudebatch.server": context.client.base_url})

    @hookimpl(trylast=True)
    def before_pass(self, batches: List[Any], context: JobContext) -> None:
        self._end_pass()
        self._pass = self._child("claudebatch.pass", self._job, **{
            "claudebatch.pass": context.pass_number,
            "claudebatch.pass.requests": sum(len(batch) for batch in batches),
            "claudebatch.pass.batches": len(batches)})

    def _batch(self, batch: MessageBatch, context: JobContext) -> _BatchTally:
        tally = self._batches.get(batch.id)
        if tally is None:  # created now, or found again on a resume
            tally = self._batches[batch.id] = _BatchTally(self._child(
                "claudebatch.batch", self._pass, **{
                    "claudebatch.batch.id": batch.id,
                    "claudebatch.batch.requests": batch.request_counts.total,
                    "claudebatch.pass": context.pass_number}))
        return tally

    @hookimpl
    def after_submit(self, batch: MessageBatch, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self._batch(batch, context)

    @hookimpl
    def on_result(self, result: BatchResult, context: CallContext,
                  batch: MessageBatch) -> None:
        if not isinstance(context, JobContext) or context.replaying:
            return  # replayed: the run that bought it counted it
        message = getattr(result.result, "message", None)
        model = str(getattr(message, "model", "") or "")
        attributes: Dict[str, Any] = {"claudebatch.result_type": result.type,
                                      "gen_ai.system": SYSTEM}
        if model:
            attributes["gen_ai.request.model"] = model
        if context.reusing:
            attributes["claudebatch.reused"] = True
            self.requests.add(1, attributes)
            return  # not bought now: no tokens used
        self.requests.add(1, attributes)
        tally = self._batch(batch, context)
        tally.counts[result.type] = tally.counts.get(result.type, 0) + 1
        usage = getattr(message, "usage", None)
        if usage is None:
            return
        for kind, field in _TOKEN_KINDS:
            count = getattr(usage, field, None)
            if isinstance(count, int) and count > 0:
                self.tokens.record(count, {"gen_ai.token.type": kind, "gen_ai.system": SYSTEM,
                                           "gen_ai.request.model": model})
                tally.tokens[kind] = tally.tokens.get(kind, 0) + count

    @hookimpl(wrapper=True, specname="on_result")
    def count_dollars(self, result: BatchResult, context: CallContext,
                      batch: MessageBatch) -> Generator[None, Any, Any]:
        """Once every plugin saw the result: what the job's dollars grew by, for it."""
        outcome = yield
        if not isinstance(context, JobContext):
            return outcome
        spent = context.cost_usd()
        if spent is None:
            return outcome
        grew, self._spent = spent - self._spent, spent
        if context.replaying or context.reusing:
            return outcome  # bought by an earlier run, or not bought now
        tally = self._batch(batch, context)
        tally.cost = (tally.cost or 0.0) + grew
        self._pass_cost = (self._pass_cost or 0.0) + grew
        if grew > 0:
            message = getattr(result.result, "message", None)
            attributes: Dict[str, Any] = {"gen_ai.system": SYSTEM}
            model = str(getattr(message, "model", "") or "")
            if model:
                attributes["gen_ai.request.model"] = model
            self.cost.add(grew, attributes)
        return outcome

    @hookimpl
    def on_batch_end(self, batch: MessageBatch, context: JobContext, complete: bool) -> None:
        tally = self._batch(batch, context)  # one found again on a resume has none yet
        del self._batches[batch.id]
        span = tally.span
        for kind, count in tally.counts.items():
            span.set_attribute(f"claudebatch.results.{kind}", count)
        for kind, count in tally.tokens.items():
            name = {"input": "gen_ai.usage.input_tokens",
                    "output": "gen_ai.usage.output_tokens"}.get(kind,
                                                                f"claudebatch.usage.{kind}")
            span.set_attribute(name, count)
        if tally.cost is not None:
            span.set_attribute("claudebatch.cost_usd", round(tally.cost, 6))
        span.set_attribute("claudebatch.batch.complete", complete)
        if not complete:
            span.set_status(Status(StatusCode.ERROR, "some results never came"))
        span.end()

    @hookimpl
    def job_summary(self, report: Any, context: JobContext) -> None:
        if isinstance(report, JobPlan):  # a dry run ends here
            self._end_all()

    @hookimpl
    def on_job_end(self, report: JobReport, context: JobContext) -> None:
        job = self._job
        if job is not None:
            job.set_attribute("claudebatch.requests", report.total_requests)
            job.set_attribute("claudebatch.passes", report.passes)
            job.set_attribute("claudebatch.batches", len(report.batches))
            job.set_attribute("claudebatch.reused", report.reused)
            job.set_attribute("claudebatch.duplicates", report.duplicates)
            job.set_attribute("claudebatch.missing", len(report.missing))
            for kind, count in report.counts.items():
                job.set_attribute(f"claudebatch.results.{kind}", count)
            spent = context.cost_usd()
            if spent is not None:
                job.set_attribute("claudebatch.cost_usd", round(spent, 6))
            if not report.complete:
                job.set_status(Status(StatusCode.ERROR, "some requests got no result"))
        self._end_all()

    def _end_pass(self) -> None:
        if self._pass is not None:
            if self._pass_cost is not None:
                self._pass.set_attribute("claudebatch.cost_usd", round(self._pass_cost, 6))
            self._pass.end()
            self._pass = None
        self._pass_cost = None

    def _end_all(self) -> None:
        for tally in self._batches.values():
            tally.span.end()
        self._batches.clear()
        self._end_pass()
        if self._job is not None:
            self._job.end()
            self._job = None
