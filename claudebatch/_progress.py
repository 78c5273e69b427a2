"""Live progress for ``claudebatch run`` / ``demo``: a plugin like any other.

On a terminal it redraws one line; otherwise (logs, CI) it prints a plain line
at most every ``interval`` seconds, and at each batch's end.
"""

from __future__ import annotations

import sys
from typing import IO, Optional

from ._plugins import hookimpl
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
