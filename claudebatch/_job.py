"""A Job: a whole dataset through the Batches API, with nothing lost.

validate everything -> split within the limits -> submit (``before_submit`` /
``after_submit``) -> poll all unfinished batches in one loop (``on_poll``) ->
stream each batch's results to the output as soon as it ends (``on_result``,
``on_batch_end``) -> further passes while a plugin asks (``resubmit_requests``)
-> ``on_job_end``. Inputs of any size go through a spool file on disk: memory
does not grow with the dataset.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
from collections import Counter
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

import attrs

from ._client import BatchClient, check_interval
from ._inputs import RequestValidator, iter_source
from ._output import OutputFile, check_output, replace_lines, result_line
from ._pending import PendingBatch, dumps
from ._report import BatchSummary, JobPlan, JobReport
from ._results import to_result
from ._spool import Spool, request_of
from .context import JobContext
from .errors import APIConnectionError, BatchNotEndedError, WaitTimeoutError
from .limits import (
    DEFAULT_SAFETY_MARGIN,
    EXPIRY_GRACE_SECONDS,
    MAX_BATCH_BYTES,
    MAX_PASSES,
    MAX_REQUESTS_PER_BATCH,
    RESULT_STREAM_ATTEMPTS,
)
from .models import BatchResult, MessageBatch, Request
from .policies import backoff_delay

logger = logging.getLogger("claudebatch.job")

#: Bytes of ``{"requests":[`` and ``]}`` around the requests of a body.
BODY_OVERHEAD = len(b'{"requests":[') + len(b"]}")


@attrs.frozen
class ResumeState:
    """What a persistence plugin remembers of an interrupted job (``resume_state`` hook).

    ``submitted`` maps ``(pass_number, batch_index)`` to the id of the batch
    already created for it; ``finished`` holds ids of batches whose results are
    all in the output already. ``adopted`` maps the ids of batches taken for a
    create whose answer never came to the time that create was sent: the job
    proves them its own from their results before writing any.
    """

    submitted: Dict[Tuple[int, int], str] = attrs.field(factory=dict)
    finished: Set[str] = attrs.field(factory=set)
    adopted: Dict[str, float] = attrs.field(factory=dict)
    #: The result lines an earlier run stored for a batch id (JSON, as written), or None
    #: when the plugin keeps none. With it, the core rebuilds the output from them and
    #: replays them to every plugin's ``on_result`` (``context.replaying``); without
    #: it, the output is kept and appended to.
    stored: Optional[Callable[[str], Iterable[bytes]]] = None


@attrs.define
class PlannedBatch:
    """A slice of the spool that becomes one batch."""

    index: int
    start: int
    end: int
    count: int
    body_bytes: int


@attrs.define
class SubmittedBatch:
    plan: PlannedBatch
    spool: Spool
    summary: BatchSummary
    batch: Any = None  # the latest MessageBatch
    done: bool = False
    #: custom_ids whose result line is in the output already (replayed from a store).
    written: Set[str] = attrs.field(factory=set)

    def custom_ids(self) -> Iterator[str]:
        return (custom_id for custom_id, _, _ in
                self.spool.custom_ids(self.plan.start, self.plan.end))


class Job:
    """Runs one dataset: ``Job(client, source, ...).run()`` -> JobReport.

    ``source`` is a JSONL path (one ``{"custom_id", "params"}`` per line) or
    any iterable of Requests or dicts. Plugins see it through ``self.context``, a
    :class:`~claudebatch.context.JobContext`.
    """

    def __init__(self, client: BatchClient, source: Any, *, name: Optional[str] = None,
                 output: Optional[str] = None, poll_interval: Optional[float] = None,
                 max_batch_requests: int = MAX_REQUESTS_PER_BATCH,
                 max_batch_bytes: int = MAX_BATCH_BYTES,
                 safety_margin: float = DEFAULT_SAFETY_MARGIN):
        if not 0 <= safety_margin < 1:
            raise ValueError(f"safety_margin must be in [0, 1), got {safety_margin}")
        if not 1 <= max_batch_requests <= MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"max_batch_requests must be 1..{MAX_REQUESTS_PER_BATCH}, "
                             f"got {max_batch_requests}")
        self.client = client
        self.clock = client.clock
        self.source = source
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        self.name = name or f"job-{stamp}-{secrets.token_hex(2)}"  # unique: no accidental resume
        self.output = os.path.abspath(output or f"{self.name}.results.jsonl")
        self.poll_interval = check_interval(
            client.poll_interval if poll_interval is None else poll_interval, "poll_interval")
        self.max_batch_requests = max_batch_requests
        self.max_batch_bytes = int(max_batch_bytes * (1 - safety_margin))
        self.pass_number = 0
        self.total_requests = 0
        self.results_written = 0
        self.batches: List[SubmittedBatch] = []
        #: custom_ids whose latest attempt got no result (insertion-ordered).
        self._missing: Dict[str, None] = {}
        self.resumed = False
        self.started_at = self.clock.monotonic()
        self._spools: List[Spool] = []
        self._counts: Counter[str] = Counter()
        self._resubmitted: Set[str] = set()
        self.dry_running = False
        self.context = JobContext(self)

    def __repr__(self) -> str:
        return f"<Job {self.name!r} pass={self.pass_number} batches={len(self.batches)}>"

    @property
    def hook(self) -> Any:
        return self.client.hook

    # --- planning -----------------------------------------------------------

    def plan(self, source: Any) -> Tuple[Spool, List[PlannedBatch]]:
        """Validate every request and cut the batches; raise before anything is sent."""
        validator = RequestValidator()
        spool = Spool()
        plans: List[PlannedBatch] = []
        start = spool.tell()
        count = 0
        body = BODY_OVERHEAD
        limit = self.max_batch_bytes
        for where, item in iter_source(source, max_line_bytes=limit):
            request = validator.check(item, where)
            if request is None:
                continue
            data = dumps(request.to_dict())
            if BODY_OVERHEAD + len(data) > limit:
                validator.add_problem(
                    f"{where} (custom_id {request.custom_id!r})",
                    f"the request alone is {len(data):,} bytes; a batch body holds at most "
                    f"{limit:,}")
                continue
            if validator.problem_count:
                continue  # keep checking, stop writing: nothing will be sent
            if count and (count >= self.max_batch_requests or body + 1 + len(data) > limit):
                plans.append(PlannedBatch(len(plans), start, spool.tell(), count, body))
                start, count, body = spool.tell(), 0, BODY_OVERHEAD
            body += len(data) + (1 if count else 0)
            count += 1
            spool.append(data)
        if validator.problem_count == 0 and count == 0:
            name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "input"
            validator.add_problem(str(name), "there are no requests")
        if validator.problem_count:
            spool.close()
            validator.raise_if_problems(f"job {self.name}: nothing was submitted")
        plans.append(PlannedBatch(len(plans), start, spool.tell(), count, body))
        self._spools.append(spool)
        return spool, plans

    def dry_run(self) -> JobPlan:
        """Validate and split, let plugins weigh the pass (``before_pass`` with
        ``context.dry_run``); send nothing."""
        self.dry_running = True
        spool, plans = self.plan(self.source)
        self.total_requests = sum(p.count for p in plans)
        self.pass_number = 1
        self.hook.on_job_start(context=self.context)
        self.hook.before_pass(batches=[self._pending(spool, plan) for plan in plans],
                              context=self.context)
        result = JobPlan(self.name, self.total_requests,
                         [(p.count, p.body_bytes) for p in plans])
        for section in self.hook.job_summary(report=result, context=self.context):
            result.plugins.update(section or {})
        return result

    def _pending(self, spool: Spool, plan: PlannedBatch) -> PendingBatch:
        return PendingBatch(lambda: spool.requests(plan.start, plan.end), plan.count,
                            index=plan.index,
                            serialized=lambda: spool.lines(plan.start, plan.end))

    # --- running ------------------------------------------------------------

    @property
    def missing(self) -> List[str]:
        """custom_ids whose latest attempt got no result line (so far)."""
        return list(self._missing)

    def run(self) -> JobReport:
        self.started_at = started = self.clock.monotonic()
        check_output(self.output, self.source)
        spool, plans = self.plan(self.source)
        self.total_requests = sum(p.count for p in plans)
        self.pass_number = 1
        self.hook.on_job_start(context=self.context)
        state: Optional[ResumeState] = self.hook.resume_state(context=self.context)
        self.resumed = resumed = state is not None
        if state is not None:  # ours already: never adopt them as a lost create's batch
            self.client.remember_batches(state.submitted.values())
        rebuild = state is not None and state.stored is not None
        with OutputFile(self.output, append=resumed and not rebuild) as out:
            while True:
                pending = [self._pending(spool, plan) for plan in plans]
                self.hook.before_pass(batches=pending, context=self.context)
                submitted = [self._submit(spool, plan, batch, state)
                             for plan, batch in zip(plans, pending)]
                if rebuild:
                    assert state is not None
                    self._replay(submitted, state, out)
                # Only pass 1 can have lines of its own batches in the output already;
                # a later pass resends custom_ids whose earlier lines are there.
                self._wait_and_collect(submitted, out,
                                       resuming=resumed and not rebuild
                                       and self.pass_number == 1)
                if self.pass_number >= MAX_PASSES:
                    break
                again = self.hook.resubmit_requests(pass_number=self.pass_number,
                                                    context=self.context)
                retry = list(again or ())  # the failed tail of a pass: small
                if not retry:
                    break
                self._resubmitted.update(
                    r.custom_id if isinstance(r, Request) else str(r.get("custom_id"))
                    for r in retry)
                spool, plans = self.plan(retry)
                self.pass_number += 1
        if self.pass_number > 1 or resumed:
            self._keep_last_attempts()  # and count what the output holds now
        report = self._report(self.clock.monotonic() - started)
        for section in self.hook.job_summary(report=report, context=self.context):
            report.plugins.update(section or {})
        self.hook.on_job_end(report=report, context=self.context)
        return report

    def _replay(self, submitted: List[SubmittedBatch], state: ResumeState,
                out: OutputFile) -> None:
        """Write what an earlier run stored for these batches, showing it to every plugin.

        A batch whose results were all stored is done; one partly stored is still
        downloaded, and only the results not written here are added.
        """
        assert state.stored is not None
        wants_results = bool(self.hook.on_result.get_hookimpls())
        self.context.replaying = True
        try:
            for item in submitted:
                expected = set(item.custom_ids())
                counts: Counter[str] = Counter()
                for line in state.stored(item.summary.id):
                    value = json.loads(line)
                    custom_id = value.get("custom_id")
                    if custom_id not in expected or custom_id in item.written:
                        continue
                    item.written.add(custom_id)
                    if wants_results:
                        self.hook.on_result(result=to_result(value, source="the store"),
                                            line=line, context=self.context)
                    out.write_line(line)
                    counts[value["result"].get("type", "unknown")] += 1
                item.summary.counts = dict(counts)
                self._counts.update(counts)
                if item.done and item.written != expected:
                    item.done = False  # said finished, but not all stored: fetch the rest
        finally:
            self.context.replaying = False

    def _submit(self, spool: Spool, plan: PlannedBatch, pending: PendingBatch,
                state: Optional[ResumeState]) -> SubmittedBatch:
        known = state.submitted.get((self.pass_number, plan.index)) if state else None
        if known:
            batch = self.client.retrieve(known)
            if state is not None and known in state.adopted:
                self.client.adopt(known, state.adopted[known], plan.count)
            logger.info("job %s: resuming batch %s (pass %d, batch %d)", self.name, known,
                        self.pass_number, plan.index)
        else:
            batch = self.client.create(pending, context=self.context)
            logger.info("job %s: submitted batch %s with %d requests (%d bytes)", self.name,
                        batch.id, plan.count, plan.body_bytes)
        summary = BatchSummary(batch.id, self.pass_number, plan.index, plan.count)
        item = SubmittedBatch(plan, spool, summary, batch,
                              done=bool(state and batch.id in state.finished))
        self.batches.append(item)
        return item

    def _wait_and_collect(self, submitted: List[SubmittedBatch], out: OutputFile, *,
                          resuming: bool) -> None:
        waiting = [s for s in submitted if not s.done]
        attempt = 0
        while waiting:
            for item in list(waiting):
                batch = self.client.retrieve(item.summary.id)
                item.batch = batch
                self.hook.on_poll(batch=batch, context=self.context)
                if batch.ended:
                    if self.client.is_adopted(batch.id) and not self._proves_ours(item):
                        self._replace_adoption(item)
                        continue  # wait for the real batch
                    self._collect(item, out, resuming=resuming)
                    waiting.remove(item)
                elif self.clock.time() > batch.expires_at.timestamp() + EXPIRY_GRACE_SECONDS:
                    raise WaitTimeoutError(
                        f"job {self.name}: batch {batch.id} is still {batch.processing_status} "
                        "an hour past its expires_at", batch=batch)
            if not waiting:
                return
            delay = self.hook.poll_delay(batch=waiting[0].batch, attempt=attempt,
                                         first_interval=self.poll_interval,
                                         context=self.context)
            self.clock.sleep(float(delay))
            attempt += 1

    # --- adoption: a batch taken for a create whose answer was lost -----------

    def _proves_ours(self, item: SubmittedBatch) -> bool:
        """True when every result of the adopted batch fits a request sent in it.

        Read through once before anything is written: a batch of the same size
        made by someone else in the same minute must not put its answers here. A
        result fits when its custom_id is one this batch sent and, for an answer,
        its model is the one asked for (the service may add a date to an alias).
        """
        models = {request.custom_id: str(request.params.get("model", ""))
                  for request in item.spool.requests(item.plan.start, item.plan.end)}
        for attempt in range(1, RESULT_STREAM_ATTEMPTS + 1):
            try:
                for value in self.client.results(item.batch, raw=True, call_hooks=False):
                    why = _misfit(value, models)
                    if why:
                        logger.warning("job %s: batch %s, taken for the lost create of pass %d "
                                       "batch %d, is not ours: %s", self.name, item.summary.id,
                                       self.pass_number, item.plan.index, why)
                        return False
                break
            except APIConnectionError as exc:
                if attempt == RESULT_STREAM_ATTEMPTS:
                    raise
                self._pause_after_broken_stream(item, attempt, exc)
        self.client.confirm_adoption(item.summary.id)
        logger.info("job %s: batch %s proved to be the lost create's (its results are ours)",
                    self.name, item.summary.id)
        return True

    def _replace_adoption(self, item: SubmittedBatch) -> None:
        """Drop a wrong adoption: take the real batch if the service made one, else send it."""
        wrong = item.summary.id
        found: Optional[MessageBatch] = self.client.reject_adoption(wrong)
        pending = self._pending(item.spool, item.plan)
        if found is not None:
            logger.warning("job %s: batch %s was not ours; found %s for the lost create",
                           self.name, wrong, found.id)
            self.hook.after_submit(batch=found, requests=pending, context=self.context)
        else:
            logger.warning("job %s: batch %s was not ours and the lost create made none; "
                           "sending pass %d batch %d now", self.name, wrong, self.pass_number,
                           item.plan.index)
            found = self.client.create(pending, context=self.context)
        item.batch = found
        item.summary.id = found.id

    # --- results ----------------------------------------------------------------

    def _collect(self, item: SubmittedBatch, out: OutputFile, *, resuming: bool) -> None:
        """Stream one ended batch's results into the output; note any that never came.

        Only results for requests sent in this batch are written, each once; a
        broken download is tried again with backoff, skipping what is written.
        """
        expected = set(item.custom_ids())
        seen: Set[str] = self._ids_in_output(expected) if resuming else set(item.written)
        counts: Counter[str] = Counter()  # of what this download writes
        foreign = 0
        wants_results = bool(self.hook.on_result.get_hookimpls())
        attempt = 1
        while seen != expected:
            try:
                for value in self.client.results(item.batch, raw=True, call_hooks=False):
                    custom_id = value["custom_id"]
                    if custom_id in seen:
                        continue  # written already (a resumed download): not again
                    if custom_id not in expected:
                        foreign += 1
                        continue
                    seen.add(custom_id)
                    line = result_line(value)
                    if wants_results:
                        self.hook.on_result(result=to_result(value, source=item.summary.id),
                                            line=line, context=self.context)
                    out.write_line(line)
                    counts[value["result"].get("type", "unknown")] += 1
                    self.results_written += 1
                break
            except APIConnectionError as exc:
                if attempt == RESULT_STREAM_ATTEMPTS:
                    logger.error("job %s: results of %s broke %d times; %d result(s) not "
                                 "downloaded (a rerun with a job store fetches them): %s",
                                 self.name, item.summary.id, attempt,
                                 len(expected) - len(seen), exc)
                    break
                self._pause_after_broken_stream(item, attempt, exc)
                attempt += 1
            except BatchNotEndedError as exc:  # archived: the results are gone
                logger.error("job %s: %s", self.name, exc)
                break
        out.flush()
        if foreign:
            logger.warning("job %s: batch %s answered %d custom_id(s) it was never sent; "
                           "not written", self.name, item.summary.id, foreign)
        missing = 0
        for custom_id in item.custom_ids():
            if custom_id in seen:
                self._missing.pop(custom_id, None)
            else:
                self._missing[custom_id] = None
                missing += 1
        item.summary.counts = dict(Counter(item.summary.counts) + counts)
        item.summary.missing = missing
        self._counts.update(counts)
        item.done = True
        self.hook.on_batch_end(batch=item.batch, context=self.context, complete=missing == 0)

    def _pause_after_broken_stream(self, item: SubmittedBatch, attempt: int,
                                   exc: BaseException) -> None:
        delay = backoff_delay(attempt - 1)
        logger.warning("job %s: results of %s broke (attempt %d of %d), again in %.1f s: %s",
                       self.name, item.summary.id, attempt, RESULT_STREAM_ATTEMPTS, delay, exc)
        self.clock.sleep(delay)

    def _ids_in_output(self, wanted: Set[str]) -> Set[str]:
        """On resume: which of ``wanted`` already have a line in the output."""
        found: Set[str] = set()
        try:
            handle = open(self.output, "rb")
        except FileNotFoundError:
            return found
        with handle:
            for line in handle:
                if line.strip():
                    custom_id = json.loads(line).get("custom_id")
                    if custom_id in wanted:
                        found.add(custom_id)
        return found

    def _keep_last_attempts(self) -> None:
        """Rewrite the output so each resubmitted custom_id keeps only its last line.

        A custom_id whose latest attempt got no result keeps none (it is
        missing; an earlier attempt's line would pass for its answer). Also
        recounts the result types from the output, which after a resume holds
        lines written by the earlier run too.
        """
        lines_left: Counter[str] = Counter()
        with open(self.output, "rb") as handle:
            for line in handle:
                custom_id = json.loads(line)["custom_id"]
                if custom_id in self._resubmitted:
                    lines_left[custom_id] += 1
        counts: Counter[str] = Counter()
        still_missing = set(self._missing)

        def kept() -> Iterator[bytes]:
            with open(self.output, "rb") as src:
                for line in src:
                    value = json.loads(line)
                    custom_id = value["custom_id"]
                    if custom_id in self._resubmitted:
                        lines_left[custom_id] -= 1
                        if lines_left[custom_id] > 0 or custom_id in self._missing:
                            continue
                    still_missing.discard(custom_id)
                    counts[value["result"].get("type", "unknown")] += 1
                    yield line.rstrip(b"\n")

        replace_lines(self.output, kept())
        self._counts = counts
        self._missing = {m: None for m in self._missing if m in still_missing}

    def _report(self, elapsed: float) -> JobReport:
        return JobReport(
            name=self.name, output=self.output, total_requests=self.total_requests,
            counts=dict(self._counts), batches=[b.summary for b in self.batches],
            missing=self.missing, passes=self.pass_number, elapsed_seconds=elapsed,
            job=self)

    # --- reading back -------------------------------------------------------

    def find_requests(self, custom_ids: Iterable[str]) -> Iterator[Request]:
        """The job's requests with these custom_ids (from the latest pass that sent them)."""
        wanted = set(custom_ids)
        for spool in reversed(self._spools):
            for custom_id, _, line in spool.custom_ids(0, spool.tell()):
                if custom_id in wanted:
                    wanted.discard(custom_id)
                    yield request_of(line)
            if not wanted:
                return

    def results(self) -> Iterator[Tuple[Request, BatchResult]]:
        """``(request, result)`` pairs from the output, joined by custom_id."""
        where: Dict[str, Tuple[Spool, int]] = {}
        for spool in self._spools:  # later passes override earlier ones
            for custom_id, offset, _ in spool.custom_ids(0, spool.tell()):
                where[custom_id] = (spool, offset)
        with open(self.output, "rb") as handle:
            for line in handle:
                value = json.loads(line)
                spool, offset = where[value["custom_id"]]
                yield spool.request_at(offset), to_result(value, source=self.output)

    def close(self) -> None:
        """Drop the spool files (``results()`` needs them; call when done)."""
        for spool in self._spools:
            spool.close()
        self._spools.clear()


def _misfit(value: Dict[str, Any], models: Dict[str, str]) -> Optional[str]:
    """Why a result line cannot be the answer to one of these requests, or None."""
    custom_id = value["custom_id"]
    asked = models.get(custom_id)
    if asked is None:
        return f"it holds custom_id {custom_id!r}, which that batch never sent"
    message = value["result"].get("message")
    answered = message.get("model") if isinstance(message, dict) else None
    if isinstance(answered, str) and asked and answered != asked \
            and not answered.startswith(asked + "-"):
        return f"{custom_id!r} was answered by {answered}, but {asked} was asked"
    return None
