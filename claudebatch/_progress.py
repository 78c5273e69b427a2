"""Live progress for ``claudebatch run`` / ``demo``: plugins like any other.

``Progress``: on a terminal it redraws one line; otherwise (logs, CI) it prints a
plain line at most every ``interval`` seconds, and at each batch's end.
``JsonProgress`` (``--progress json``): one JSON event a line, for scripts.
``BarProgress``: on a terminal with rich installed, a live bar per pass.

Each shows the dollars spent so far when a cost plugin answers ``job_cost``
(``context.cost_usd()``): claudebatch-cost does.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import sys
from typing import IO, Any, Dict, List, Optional, Sequence, Set

from ._pending import PendingBatch
from ._plugins import hookimpl
from ._report import JobReport
from .context import CallContext, JobContext
from .errors import APIStatusError
from .models import MessageBatch


def pass_states(job: JobContext, new: Optional[MessageBatch] = None) -> List[MessageBatch]:
    """The latest state of each batch of the current pass; with ``new``, a batch just
    accepted (``after_submit`` comes before the job lists it)."""
    ids = {s.id for s in job.batches if s.pass_number == job.pass_number}
    states = [b for b in job.batch_states if b.id in ids]
    if new is not None and new.id not in ids:
        states.append(new)
    return states


def batch_counts(job: JobContext, states: Sequence[MessageBatch]) -> Dict[str, int]:
    """The pass's batches (``states``: :func:`pass_states`): ``queued`` (not sent yet: the
    service's queue has no room), ``in_flight`` (sent, not ended) and ``ended``."""
    ended = sum(1 for b in states if b.processing_status == "ended")
    return {"queued": job.queued_batches, "in_flight": len(states) - ended, "ended": ended}


def in_flight_requests(job: JobContext, new: Optional[MessageBatch] = None) -> int:
    """``job.in_flight_requests``, with a batch just accepted."""
    if new is None or any(s.id == new.id for s in job.batches):
        return job.in_flight_requests
    return job.in_flight_requests + new.request_counts.processing


def describe_batches(counts: Dict[str, int]) -> str:
    """``batches: 2 queued, 3 in flight, 5 ended`` (no queued part when none wait)."""
    queued = f"{counts['queued']:,} queued, " if counts["queued"] else ""
    return f"batches: {queued}{counts['in_flight']:,} in flight, {counts['ended']:,} ended"


def wait_note(requests: PendingBatch, error: BaseException, delay: float) -> str:
    """One line for a create refused because the service's queue is full."""
    asked = getattr(error, "retry_after", None)
    why = f"; it asked for {asked:g} s" if asked is not None else ""
    return (f"queue full: batch {requests.index} ({len(requests):,} requests) waits, "
            f"trying again in {delay:.0f} s (the service refused it with 429{why})")


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
        total += job.queued_requests
        elapsed = job.clock.monotonic() - job.started_at
        cost = job.cost_usd()
        spent = "" if cost is None else f"{dollars(cost)} so far, "
        return (f"pass {job.pass_number}: {done:,}/{total:,} requests done, "
                f"{job.results_written:,} results written, "
                f"{describe_batches(batch_counts(job, pass_states(job)))}, {spent}"
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
    def on_queue_wait(self, requests: PendingBatch, error: BaseException, delay: float,
                      context: JobContext) -> None:
        self.stream.write(("\r\x1b[K" if self.interactive else "")
                          + wait_note(requests, error, delay) + "\n")
        self.stream.flush()

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
    ``queue_wait`` (a create refused for a full queue), ``batch_ended``, ``pass_end``,
    ``job_end``. Each has ``event``, ``time`` (Unix seconds on the job's clock), ``job``
    and ``pass``; the rest is the event's own. Those about batches also carry
    ``batches`` (the pass's ``queued``, ``in_flight`` and ``ended``) and
    ``in_flight_requests``. ``poll``, ``batch_ended``, ``pass_end`` and ``job_end`` end
    with ``cost_usd``, the dollars spent so far, when a cost plugin counts them
    (``context.cost_usd()``).
    """

    #: The events that say what was spent so far.
    COSTED = frozenset({"poll", "batch_ended", "pass_end", "job_end"})

    def __init__(self, stream: Optional[IO[str]] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._passes_ended: Set[int] = set()
        self._started = False

    def emit(self, event: str, context: JobContext, **fields: Any) -> None:
        record = {"event": event, "time": round(context.clock.time(), 3), "job": context.name,
                  "pass": context.pass_number, **fields}
        if event in self.COSTED:
            cost = context.cost_usd()
            if cost is not None:
                record["cost_usd"] = round(cost, 6)
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

    def emit_queue(self, event: str, context: JobContext, new: Optional[MessageBatch] = None,
                   **fields: Any) -> None:
        """An event about batches, with where the pass's batches stand."""
        self.emit(event, context, **fields,
                  batches=batch_counts(context, pass_states(context, new)),
                  in_flight_requests=in_flight_requests(context, new))

    @hookimpl
    def after_submit(self, batch: MessageBatch, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self.emit_queue("batch_submitted", context, batch, batch_id=batch.id,
                            requests=batch.request_counts.total)

    @hookimpl
    def on_poll(self, batch: MessageBatch, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self.emit_queue("poll", context, batch_id=batch.id,
                            status=batch.processing_status, counts=_counts(batch))

    @hookimpl
    def on_queue_wait(self, requests: PendingBatch, error: BaseException, delay: float,
                      context: JobContext) -> None:
        self.emit_queue("queue_wait", context, batch_index=requests.index,
                        requests=len(requests),
                        retry_after=getattr(error, "retry_after", None),
                        delay=round(delay, 3),
                        message=error.message if isinstance(error, APIStatusError)
                        else str(error))

    @hookimpl
    def on_batch_end(self, batch: MessageBatch, context: JobContext, complete: bool) -> None:
        self.emit_queue("batch_ended", context, batch_id=batch.id, complete=complete,
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


def dollars(amount: float) -> str:
    """Dollars as the cost plugin shows them: four decimals (small jobs cost cents)."""
    return f"${amount:,.4f}"


def _counts(batch: MessageBatch) -> Dict[str, int]:
    counts = batch.request_counts
    return {name: getattr(counts, name) for name in
            ("processing", "succeeded", "errored", "canceled", "expired")}


class BarProgress:
    """On a terminal: a live bar per pass (rich), from the first request read to the end.

    Each pass's bar counts its requests done, with the result types so far, the
    batches queued (waiting for room in the service's queue), in flight and ended, and
    the job's dollars so far when a cost plugin counts them (once results are written:
    they are priced as they come); elapsed time and an ETA. Redrawn on each event (no
    thread of its own: nothing is left running if the job stops).
    """

    #: The planning counter is redrawn every this many requests read.
    READ_STEP = 2000

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self.console = console if console is not None else Console(stderr=True)
        self.bar = RichBar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                           TimeRemainingColumn(), console=self.console, auto_refresh=False)
        self._reading: Any = None
        self._read = 0
        self._passes: Dict[int, Any] = {}
        self._running = False
        self._waiting = ""  # the last refusal's note, while batches are queued
        self._sending = ""  # the batch being written and sent, while it is

    def _redraw(self) -> None:
        self.bar.refresh()

    @hookimpl
    def on_job_start(self, context: JobContext) -> None:
        self.bar.start()
        self._running = True
        atexit.register(self._stop)  # a job that raised: the terminal gets its cursor back
        self._read = 0
        self._reading = self.bar.add_task(f"job {context.name}: reading", total=None,
                                          detail="")
        self._redraw()
        context.on_planned(self._planned)
        context.on_upload(lambda index, sent, size: self._uploading(context, index, sent, size))

    def _planned(self, _: Any) -> None:
        self._read += 1
        if self._read % self.READ_STEP == 0 and self._reading is not None:
            self.bar.update(self._reading, completed=self._read,
                            detail=f"{self._read:,} requests checked")
            self._redraw()

    @hookimpl
    def before_pass(self, batches: Sequence[Any], context: JobContext) -> None:
        if self._reading is not None:
            self.bar.remove_task(self._reading)
            self._reading = None
        total = sum(len(batch) for batch in batches)
        verb = "would send" if context.dry_run else "to send"
        self._passes[context.pass_number] = self.bar.add_task(
            f"pass {context.pass_number}", total=total or None,
            detail=f"{len(batches)} batch(es) {verb}")
        self._redraw()

    def _update(self, context: JobContext, new: Optional[MessageBatch] = None) -> None:
        task = self._passes.get(context.pass_number)
        if task is None:
            return
        states = pass_states(context, new)
        kinds: Dict[str, int] = {}
        done = 0
        for batch in states:
            counts = batch.request_counts
            done += counts.total - counts.processing
            for kind in ("succeeded", "errored", "canceled", "expired"):
                kinds[kind] = kinds.get(kind, 0) + getattr(counts, kind)
        shown = "  ".join(f"{kind} {count:,}" for kind, count in kinds.items() if count)
        note = "".join(f"  {text}" for text in (self._sending, self._waiting) if text)
        cost = context.cost_usd() if context.results_written else None  # none priced yet
        spent = "" if cost is None else f"  {dollars(cost)}"
        self.bar.update(task, completed=done,
                        detail=f"{shown or 'waiting'}  "
                               f"{describe_batches(batch_counts(context, states))}{spent}"
                               f"{note}")
        self._redraw()

    @hookimpl(trylast=True)
    def before_submit(self, requests: Any, context: CallContext) -> None:
        """The body of a big batch takes a while to write: say so at once."""
        if isinstance(context, JobContext):
            self._sending = f"(batch {requests.index}: writing {len(requests):,} requests)"
            self._update(context)

    def _uploading(self, context: JobContext, index: int, sent: int, size: int) -> None:
        self._sending = f"(batch {index}: sending {sent / 1e6:,.1f}/{size / 1e6:,.1f} MB)"
        self._update(context)

    @hookimpl
    def on_submit_error(self, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self._sending = ""
            self._update(context)

    @hookimpl
    def after_submit(self, batch: MessageBatch, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self._waiting = self._sending = ""
            self._update(context, batch)

    @hookimpl
    def on_poll(self, context: CallContext) -> None:
        if isinstance(context, JobContext):
            self._update(context)

    @hookimpl
    def on_queue_wait(self, delay: float, context: JobContext) -> None:
        until = context.clock.monotonic() - context.started_at + delay
        self._waiting = f"(queue full: next try at {dt.timedelta(seconds=int(until))})"
        self._update(context)

    @hookimpl
    def on_batch_end(self, context: JobContext) -> None:
        self._update(context)

    @hookimpl(tryfirst=True)
    def job_summary(self) -> None:
        """The job is over (a dry run's too): the bars stay as they last were."""
        self._stop()

    def _stop(self) -> None:
        if self._running:
            self._running = False
            self._redraw()
            self.bar.stop()
