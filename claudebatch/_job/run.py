"""A Job: a whole dataset through the Batches API, with nothing lost (the orchestration).

validate everything and split (``plan``) -> ``on_job_start`` -> ``resume_state`` ->
per pass: ``before_pass`` -> submit (``before_submit`` / ``after_submit``) -> poll
all unfinished batches in the one poll loop (``on_poll``) -> stream each batch's
results to the output as soon as it ends (``collect``: ``on_result``,
``on_batch_end``) -> further passes while a plugin asks (``resubmit_requests``) ->
``job_summary`` -> ``on_job_end``. Inputs of any size go through a spool file on
disk: memory does not grow with the dataset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
from typing import Any, Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Set, Tuple

import attrs

from .. import _json
from .._client import BatchClient, check_interval
from .._output import OutputFile, check_output
from .._pending import PendingBatch
from .._polling import poll_until_ended
from .._report import BatchSummary, JobPlan, JobReport
from .._results import annotate, to_result
from .._spool import Spool, request_of
from .._transport import DEFAULT_BASE_URL
from ..context import JobContext
from ..errors import ConfigurationError, ValidationError
from ..limits import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_QUEUE_PATIENCE,
    DEFAULT_SAFETY_MARGIN,
    MAX_BATCH_BYTES,
    MAX_PASSES,
    MAX_REQUESTS_PER_BATCH,
)
from ..logcontext import about
from ..models import BatchResult, MessageBatch, Request
from ..rows import Rows
from .collect import Collector, SubmittedBatch
from .plan import PlannedBatch, plan_requests
from .queue import SubmitQueue, in_flight
from .reuse import ReusePlan
from .table import TablePlan, route_output

logger = logging.getLogger("claudebatch.job")


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


def new_job_name() -> str:
    """``job-<UTC time>-<4 hex>``: unique, so a new job never resumes another by accident."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"job-{stamp}-{secrets.token_hex(2)}"


class Job:
    """Runs one dataset: ``Job(client, source, ...).run()`` -> JobReport.

    ``source`` is a JSONL path (one ``{"custom_id", "params"}`` per line), any
    iterable of Requests or dicts, or :class:`~claudebatch.rows.Rows` (a table and a
    template). ``output`` ending ``.csv``, ``.tsv`` or ``.parquet``, an fsspec URL, or
    any output of a job over rows is a table, written when the job ends; the result
    lines then go to ``results`` (default: beside it, ``TABLE.results.jsonl``).
    Plugins see the job through ``self.context``, a
    :class:`~claudebatch.context.JobContext`.

    ``max_in_flight``: at most this many of the job's requests wait in the service's
    processing queue at once (None or 0: no limit of its own); batches are cut no larger,
    and each is sent as earlier ones end. ``queue_patience``: seconds a create refused for
    a full queue is tried again while none of the job's batches is in flight (None:
    without end). See docs/queue.md.
    """

    def __init__(self, client: BatchClient, source: Any, *, name: Optional[str] = None,
                 output: Optional[str] = None, poll_interval: Optional[float] = None,
                 max_batch_requests: int = MAX_REQUESTS_PER_BATCH,
                 max_batch_bytes: int = MAX_BATCH_BYTES,
                 safety_margin: float = DEFAULT_SAFETY_MARGIN,
                 reuse: Optional[bool] = None, reuse_max_age: Optional[float] = None,
                 results: Optional[str] = None,
                 storage_options: Optional[Dict[str, Any]] = None, column_prefix: str = "",
                 max_in_flight: Optional[int] = DEFAULT_MAX_IN_FLIGHT,
                 queue_patience: Optional[float] = DEFAULT_QUEUE_PATIENCE):
        if not 0 <= safety_margin < 1:
            raise ValueError(f"safety_margin must be in [0, 1), got {safety_margin}")
        if not 1 <= max_batch_requests <= MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"max_batch_requests must be 1..{MAX_REQUESTS_PER_BATCH}, "
                             f"got {max_batch_requests}")
        if max_in_flight is not None and (isinstance(max_in_flight, bool)
                                          or not isinstance(max_in_flight, int)
                                          or max_in_flight < 0):
            raise ConfigurationError(f"max_in_flight must be a whole number of requests >= 0 "
                                     f"(0 or None: no limit), got {max_in_flight!r}")
        if queue_patience is not None:
            check_interval(queue_patience, "queue_patience", allow_zero=True)
        #: Requests of the job that may wait in the service's queue at once (None: any).
        self.max_in_flight = max_in_flight or None
        #: Seconds a refused create is tried again with none of the job's batches in flight.
        self.queue_patience = queue_patience
        if self.max_in_flight is not None:  # no batch larger than the job may have queued
            max_batch_requests = min(max_batch_requests, self.max_in_flight)
        self.client = client
        self.clock = client.clock
        self.source = source
        made = new_job_name()
        table, output = route_output(source, output, results, name or made)
        if name is None and output is not None:  # the same command again: a store knows it
            name = self.hook.find_job(output=os.path.abspath(output),
                                      server=client.base_url.rstrip("/"))
        self.name = name or made
        self.output = os.path.abspath(output or f"{self.name}.results.jsonl")
        #: The table the job writes when it ends (None: only result lines); a job over
        #: rows always has one, for ``report.to_pandas()`` and friends.
        self.table: Optional[TablePlan] = None
        if table is not None or isinstance(source, Rows):
            self.table = TablePlan(self, table, storage_options=storage_options,
                                   column_prefix=column_prefix)
        self.rows_option = {"rows": source.options()} if isinstance(source, Rows) else {}
        #: sha256 of the first pass's valid requests as planned (context.input_digest).
        self.input_digest: Optional[str] = None
        self.poll_interval = check_interval(
            client.poll_interval if poll_interval is None else poll_interval, "poll_interval")
        self.max_batch_requests = max_batch_requests
        self.max_batch_bytes = int(max_batch_bytes * (1 - safety_margin))
        self.pass_number = 0
        self.total_requests = 0
        self.batches: List[SubmittedBatch] = []
        self.resumed = False
        self.started_at = self.clock.monotonic()
        self.dry_running = False
        self.context = JobContext(self)
        self._spools: List[Spool] = []
        self._betas: FrozenSet[str] = frozenset()  # betas the planned requests need
        #: Bytes plugins said each request may grow by once planned (context.reserve_bytes).
        self.grow_each = 0
        #: Options plugins declared (context.declare_option): part of the job's options.
        self.declared: Dict[str, Any] = {}
        self._resubmitted: Set[str] = set()
        self._collector: Optional[Collector] = None
        #: The current pass's batches not sent yet (None before the first pass is sent).
        self.queue: Optional[SubmitQueue] = None
        #: None: reuse when a store offers answers; True: also dedupe without one.
        self.reuse = client.reuse if reuse is None else reuse
        self.reuse_max_age = client.reuse_max_age if reuse_max_age is None else reuse_max_age
        self.reuse_plan: Optional[ReusePlan] = None  # the current pass's
        self._reuse_plans: List[ReusePlan] = []
        #: Which requests the first pass answered without sending (a digest), for options.
        self.reuse_option: Dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Job {self.name!r} pass={self.pass_number} batches={len(self.batches)}>"

    @property
    def hook(self) -> Any:
        return self.client.hook

    @property
    def table_out(self) -> Optional[TablePlan]:
        """The table the job writes when it ends, if it writes one."""
        return self.table if self.table is not None and self.table.destination else None

    @property
    def results_written(self) -> int:
        return self._collector.results_written if self._collector else 0

    @property
    def missing(self) -> List[str]:
        """custom_ids whose latest attempt got no result line (so far)."""
        return list(self._collector.missing) if self._collector else []

    # --- planning -----------------------------------------------------------

    @property
    def reused(self) -> int:
        return sum(plan.reused for plan in self._reuse_plans)

    @property
    def duplicates(self) -> int:
        return sum(plan.duplicates for plan in self._reuse_plans)

    def _new_reuse_plan(self) -> Optional[ReusePlan]:
        """What this pass needs of reuse: lookups (a store offers answers, reuse not
        off), dedupe (reuse on, or a store), keys (also when a store keeps answers)."""
        # Only the first pass: its decisions join the job's options, which a resume checks.
        # A later pass sends what was decided, as decided (a store replays the decision).
        first = self.pass_number == 1
        lookup = first and self.reuse is not False and \
            bool(self.hook.find_answers.get_hookimpls())
        dedupe = first and (self.reuse is True or lookup)
        keep = bool(self.hook.keep_answer.get_hookimpls())
        if not (lookup or dedupe or keep):
            return None
        return ReusePlan(self.context, lookup=lookup, dedupe=dedupe,
                         max_age=self.reuse_max_age, betas=self.client.betas,
                         declared=self.declared, service=self.service)

    @property
    def service(self) -> Optional[str]:
        """Where the answers come from, for their keys: None for the API itself; any other
        server's base URL (an emulator, a gateway), so an emulator's stand-in answer never
        answers a request sent to the service."""
        base = self.client.base_url.rstrip("/")
        return None if base == DEFAULT_BASE_URL.rstrip("/") else base

    def plan(self, source: Any) -> Tuple[Spool, List[PlannedBatch]]:
        """Validate every request and cut the batches; raise before anything is sent."""
        validator = self.client.validator()
        reuse = self._new_reuse_plan()
        rows = None  # the first pass's rows, for the table
        if self.table is not None and self.pass_number == 1 and not self.dry_running:
            rows = self.table.new_spool()
        digest = hashlib.sha256() if self.pass_number == 1 else None
        try:
            spool, plans = plan_requests(source, max_requests=self.max_batch_requests,
                                         max_bytes=self.max_batch_bytes, job_name=self.name,
                                         watchers=self.context.planning_watchers,
                                         validator=validator, grow_each=self.grow_each,
                                         reuse=reuse, rows=rows, digest=digest)
        except BaseException:
            if reuse is not None:
                reuse.close()
            raise
        self.reuse_plan = reuse
        if digest is not None:
            self.input_digest = digest.hexdigest()
        if reuse is not None:  # before the pass's spool: find_requests reads sent ones first
            self._reuse_plans.append(reuse)
            self._spools.append(reuse.held)
        self._spools.append(spool)
        if reuse is not None:
            if self.pass_number == 1 and reuse.held_count:
                self.reuse_option = {"reuse": reuse.decisions}
            if reuse.held_count:
                logger.info("job %s: pass %d: %d request(s) answered from kept answers and "
                            "%d duplicate(s) answered once: not sent", self.name,
                            self.pass_number, reuse.reused, reuse.duplicates)
        self._betas = self.client.note_added_betas(validator.added_betas)
        return spool, plans

    def _held_count(self) -> int:
        return self.reuse_plan.held_count if self.reuse_plan is not None else 0

    def dry_run(self) -> JobPlan:
        """Validate and split, let plugins weigh the pass (``before_pass`` with
        ``context.dry_run``); send nothing."""
        with about(job=self.name, batch="-"):
            return self._dry_run()

    def _dry_run(self) -> JobPlan:
        self.dry_running = True
        self.pass_number = 1
        self.hook.on_job_start(context=self.context)
        table = self.table_out
        if table is not None:
            table.check()  # before reading the input: a bad output fails at once
        spool, plans = self.plan(self.source)
        if table is not None:
            table.check_columns()  # the columns found while reading
        self.total_requests = sum(p.count for p in plans) + self._held_count()
        pending = [self._pending(spool, plan) for plan in plans]
        self.hook.before_pass(batches=pending, context=self.context)
        for batch in pending:  # as a run would write them: plugins observe, nothing is sent
            if batch.watched:
                batch.write_body(on_disk=True)
                batch.discard_body()
        result = JobPlan(self.name, self.total_requests,
                         [(p.count, p.body_bytes) for p in plans],
                         reused=self.reused, duplicates=self.duplicates)
        for section in self.hook.job_summary(report=result, context=self.context):
            result.plugins.update(section or {})
        return result

    def _pending(self, spool: Spool, plan: PlannedBatch) -> PendingBatch:
        pending = PendingBatch(lambda: spool.requests(plan.start, plan.end), plan.count,
                               index=plan.index,
                               serialized=lambda: spool.lines(plan.start, plan.end))
        pending.betas = self._betas  # the pass's: its requests were checked together
        return pending

    # --- running ------------------------------------------------------------

    def run(self) -> JobReport:
        with about(job=self.name, batch="-"):  # every log record made meanwhile names them
            return self._run()

    def _run(self) -> JobReport:
        self.started_at = started = self.clock.monotonic()
        check_output(self.output, self.source.path if isinstance(self.source, Rows)
                     else self.source)
        self.pass_number = 1
        self.hook.on_job_start(context=self.context)
        table = self.table_out
        if table is not None:
            table.check()  # before reading the input: a bad output fails at once
        spool, plans = self.plan(self.source)
        if table is not None:
            table.check_columns()  # the columns found while reading
        self.total_requests = sum(p.count for p in plans) + self._held_count()
        state: Optional[ResumeState] = self.hook.resume_state(context=self.context)
        self.resumed = resumed = state is not None
        if state is not None:  # ours already: never adopt them as a lost create's batch
            self.client.remember_batches(state.submitted.values())
        rebuild = state is not None and state.stored is not None
        with OutputFile(self.output, append=resumed and not rebuild) as out:
            collector = self._collector = Collector(self, out)
            while True:
                collector.reuse = self.reuse_plan
                if self.reuse_plan is not None and self.reuse_plan.reused:
                    # free answers first; an appended output may hold them already
                    appended = resumed and not rebuild and self.pass_number == 1
                    skip = set() if not appended else collector.ids_in_output(
                        {cid for cid, _, _ in self.reuse_plan.held.custom_ids(
                            0, self.reuse_plan.held.tell())})
                    collector.write_reused(self.reuse_plan, skip)
                pending = [self._pending(spool, plan) for plan in plans]
                self.hook.before_pass(batches=pending, context=self.context)
                try:
                    taken_up = self._start_pass(spool, plans, pending, state)
                    if rebuild:
                        assert state is not None
                        collector.replay(taken_up, state)
                    # Only pass 1 can have lines of its own batches in the output already;
                    # a later pass resends custom_ids whose earlier lines are there.
                    self._wait_and_collect(taken_up, collector,
                                           resuming=resumed and not rebuild
                                           and self.pass_number == 1)
                finally:
                    for batch in pending:  # those never sent (a failure) still hold one
                        batch.discard_body()
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
                self.pass_number += 1
                spool, plans = self.plan(retry)
        if self.pass_number > 1 or resumed:
            collector.keep_last_attempts(self._resubmitted)  # and recount the output
        if table is not None:
            table.write()
            logger.info("job %s: table written to %s", self.name, table.destination)
        report = JobReport(
            name=self.name, output=self.output, total_requests=self.total_requests,
            counts=dict(collector.counts), batches=[b.summary for b in self.batches],
            stop_reasons=dict(collector.stop_reasons),
            missing=self.missing, passes=self.pass_number,
            elapsed_seconds=self.clock.monotonic() - started, reused=self.reused,
            duplicates=self.duplicates, table=table.destination if table else None, job=self)
        for section in self.hook.job_summary(report=report, context=self.context):
            report.plugins.update(section or {})
        self.hook.on_job_end(report=report, context=self.context)
        return report

    def _start_pass(self, spool: Spool, plans: List[PlannedBatch], pending: List[PendingBatch],
                    state: Optional[ResumeState]) -> List[SubmittedBatch]:
        """Write every body of the pass first (each request read, rewritten and observed
        once: a budget sees the whole pass before anything is sent); take up the batches
        an earlier run made; queue the others, sent from the poll loop as room comes."""
        def known(plan: PlannedBatch) -> Optional[str]:
            return state.submitted.get((self.pass_number, plan.index)) if state else None

        for plan, batch in zip(plans, pending):
            if not known(plan):
                size = batch.write_body(on_disk=True).seek(0, os.SEEK_END)
                if size > MAX_BATCH_BYTES:  # grown by a plugin past what it reserved
                    raise ValidationError(
                        f"job {self.name}: nothing of pass {self.pass_number} was sent: "
                        f"batch {plan.index} grew to {size:,} bytes once the plugins "
                        f"rewrote its requests, over the {MAX_BATCH_BYTES:,}-byte limit (a "
                        "plugin that grows every request reserves the bytes with "
                        "context.reserve_bytes(n); or pass a smaller max_batch_bytes)")
        taken_up = []
        for plan in plans:
            batch_id = known(plan)
            if batch_id:
                assert state is not None
                taken_up.append(self._take_up(spool, plan, batch_id, state))
        self.queue = SubmitQueue(
            self, [(plan, batch) for plan, batch in zip(plans, pending) if not known(plan)],
            lambda plan, batch: self._submit(spool, plan, batch))
        return taken_up

    def _take_up(self, spool: Spool, plan: PlannedBatch, batch_id: str,
                 state: ResumeState) -> SubmittedBatch:
        """A batch an earlier run of the job made: waited for again, never created again."""
        batch = self.client.retrieve(batch_id)
        if batch_id in state.adopted:
            self.client.adopt(batch_id, state.adopted[batch_id], plan.count)
        with about(batch=batch_id):
            logger.info("job %s: resuming batch %s (pass %d, batch %d)", self.name, batch_id,
                        self.pass_number, plan.index)
        return self._add(spool, plan, batch, done=batch.id in state.finished)

    def _submit(self, spool: Spool, plan: PlannedBatch, pending: PendingBatch
                ) -> SubmittedBatch:
        """Create one batch; a 429 (the queue is full) is raised at once: the queue waits
        it out while the poll loop goes on."""
        batch = self.client._create(pending, context=self.context, final_statuses=(429,))
        with about(batch=batch.id):
            logger.info("job %s: submitted batch %s with %d requests (%d bytes)",
                        self.name, batch.id, plan.count, plan.body_bytes)
        return self._add(spool, plan, batch)

    def _add(self, spool: Spool, plan: PlannedBatch, batch: MessageBatch, *,
             done: bool = False) -> SubmittedBatch:
        summary = BatchSummary(batch.id, self.pass_number, plan.index, plan.count)
        item = SubmittedBatch(plan, spool, summary, batch, done=done)
        self.batches.append(item)
        return item

    @property
    def in_flight_requests(self) -> int:
        """The job's requests the service still counts in its processing queue."""
        return in_flight(self.batches)

    def _wait_and_collect(self, submitted: List[SubmittedBatch], collector: Collector, *,
                          resuming: bool) -> None:
        """The one poll loop over the pass's batches: the unfinished ones polled, each
        collected as it ends, the queued ones sent as the service's queue has room."""
        def ended(item: SubmittedBatch) -> bool:
            if self.client.is_adopted(item.id) and not collector.proves_ours(item):
                self._replace_adoption(item)
                return False  # wait for the real batch
            collector.collect(item, resuming=resuming)
            return True

        poll_until_ended(self.client, [item for item in submitted if not item.done],
                         context=self.context,
                         first_interval=self.poll_interval, on_ended=ended,
                         label=f"job {self.name}: ", feed=self.queue)

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
            try:
                found = self.client.create(pending, context=self.context)
            finally:
                pending.discard_body()
        item.batch = found
        item.summary.id = found.id

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
        notes = bool(self.hook.annotate_result.get_hookimpls())
        with open(self.output, "rb") as handle:
            for line in handle:
                value = _json.loads(line)
                spool, offset = where[value["custom_id"]]
                result = to_result(value, source=self.output)
                if notes:  # a plugin's typed value (the line holds its JSON)
                    result = annotate(self.hook, value, result, self.context)[1]
                yield spool.request_at(offset), result

    def to_arrow(self) -> Any:
        """The job's table (rows and answers) as a pyarrow Table."""
        table = self.table if self.table is not None else TablePlan(self, None)
        return table.to_arrow()

    def close(self) -> None:
        """Drop the spool files (``results()`` needs them; call when done)."""
        for spool in self._spools:
            spool.close()
        self._spools.clear()
        if self.table is not None and self.table.spool is not None:
            self.table.spool.close()
            self.table.spool = None
        for plan in self._reuse_plans:
            plan.close()
        self._reuse_plans.clear()
