"""Live progress for ``claudebatch run`` / ``demo``: plugins like any other.

``Progress``: on a terminal it redraws one line; otherwise (logs, CI) it prints a
plain line at most every ``interval`` seconds, and at each batch's end.
``JsonProgress`` (``--progress json``): one JSON event a line, for scripts.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any, Dict, Optional, Set

from ._plugins import hookimpl
from ._report import JobReport
from .context import CallContext, JobContext
from .models import MessageBatch


class Progress:
    def __init__(self, stream: Optional[IO[str]] = None, *, interval: float = 10.0):
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last_print: Optional[float] = None

    def line(self, job: JobContext) -> str:
        done = total = 0
        for batch in job.batch_states:
            counts = batch.request_counts
            total += counts.total
            done += counts.total - counts.processing
        elapsed = job.clock.monotonic() - job.started_at
        return (f"pass {job.pass_number}: {done:,}/{total:,} requests done, "
                f"{job.results_written:,} results written, {len(job.batches)} batch(es), "
                f"{elapsed:.0f} s")

    def show(self, job: CallContext, *, force: bool = False) -> None:
        if not isinstance(job, JobContext):
            return  # a single endpoint call, not a job
        now = job.clock.monotonic()
        if self.interactive:
            self.stream.write("\r\x1b[K" + self.line(job))
        elif force or self._last_print is None or now - self._last_print >= self.interval:
            self.stream.write(self.line(job) + "\n")
        else:
            return
        self._last_print = now
        self.stream.flush()

    @hookimpl
    def after_submit(self, batch: MessageBatch, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self.stream.write(("\r\x1b[K" if self.interactive else "")
                              + f"submitted {batch.id} "
                              f"({batch.request_counts.total:,} requests)\n")
            self.stream.flush()

    @hookimpl
    def on_poll(self, batch: MessageBatch, context: CallContext) -> None:
        self.show(context)

    @hookimpl
    def on_batch_end(self, batch: MessageBatch, context: JobContext) -> None:
        self.show(context, force=True)

    @hookimpl
    def on_job_end(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


class JsonProgress:
    """``--progress json``: one JSON object a line for scripts and schedulers.

    Events: ``job_start`` (the input planned), ``batch_submitted``, ``poll``,
    ``batch_ended``, ``pass_end``, ``job_end``. Each has ``event``, ``time`` (Unix
    seconds on the job's clock), ``job`` and ``pass``; the rest is the event's own.
    """

    def __init__(self, stream: Optional[IO[str]] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._passes_ended: Set[int] = set()
        self._started = False

    def emit(self, event: str, context: JobContext, **fields: Any) -> None:
        record = {"event": event, "time": round(context.clock.time(), 3), "job": context.name,
                  "pass": context.pass_number, **fields}
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()

    @hookimpl
    def on_job_start(self) -> None:
        self._passes_ended.clear()
        self._started = False

    @hookimpl(trylast=True)
    def before_pass(self, context: JobContext) -> None:
        if not self._started and not context.dry_run:
            self._started = True
            self.emit("job_start", context, requests=context.total_requests,
                      resumed=context.resumed, output=context.output, table=context.table)

    @hookimpl
    def after_submit(self, batch: MessageBatch, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self.emit("batch_submitted", context, batch_id=batch.id,
                      requests=batch.request_counts.total)

    @hookimpl
    def on_poll(self, batch: MessageBatch, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self.emit("poll", context, batch_id=batch.id, status=batch.processing_status,
                      counts=_counts(batch))

    @hookimpl
    def on_batch_end(self, batch: MessageBatch, context: JobContext, complete: bool) -> None:
        self.emit("batch_ended", context, batch_id=batch.id, complete=complete,
                  counts=_counts(batch), results_written=context.results_written)

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: JobContext) -> None:
        self._pass_end(context, pass_number)

    def _pass_end(self, context: JobContext, pass_number: int) -> None:
        if pass_number not in self._passes_ended:
            self._passes_ended.add(pass_number)
            self.emit("pass_end", context, results_written=context.results_written)

    @hookimpl
    def on_job_end(self, report: JobReport, context: JobContext) -> None:
        self._pass_end(context, context.pass_number)  # the last pass asks nothing after it
        self.emit("job_end", context, requests=report.total_requests, counts=report.counts,
                  missing=len(report.missing), passes=report.passes,
                  complete=report.complete, elapsed_seconds=round(report.elapsed_seconds, 3),
                  reused=report.reused, duplicates=report.duplicates, output=report.output,
                  table=report.table)


def _counts(batch: MessageBatch) -> Dict[str, int]:
    counts = batch.request_counts
    return {name: getattr(counts, name) for name in
            ("processing", "succeeded", "errored", "canceled", "expired")}
