"""JobStore: the hooks that make a job survive its process, for every backend.

SQLiteStore and PostgresStore are this class over their :class:`Database`.
What each hook records (see docs/plugins/sqlite.md):

* ``resume_state``: locks the job name, checks the input fingerprint, adopts a
  batch whose create was sent but never confirmed, and hands the job the
  batches already made and the result lines stored (the core rebuilds the
  output from them and replays them to every plugin);
* ``before_submit`` (trylast, after rewrites and vetoes): the intent, durably,
  before the create is sent; ``after_submit`` (trylast): the batch id;
  ``on_submit_error``: a create that certainly made nothing drops its intent;
* ``on_poll``: status and counts; ``on_result`` / ``on_batch_end``: each result
  line as the job writes it, committed every ``commit_every`` results and at the
  batch's end (marked done only when complete);
* ``resubmit_requests``: a pass decided by an earlier run is answered as it was
  (tryfirst); a new decision is recorded as the other plugins make it (a wrapper);
* ``on_job_end``: keeps the other plugins' summaries, marks the job done.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import (
    IO,
    Any,
    ContextManager,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from claudebatch import (
    CallContext,
    JobContext,
    JobPlan,
    JobReport,
    MessageBatch,
    OutputPathError,
    PendingBatch,
    Request,
    ResumeState,
    StashKey,
    StoredAnswer,
    hookimpl,
)
from claudebatch.limits import RESULTS_KEPT_SECONDS
from claudebatch.tables import check_overwrite, table_format, write_results_table

from .._spool import Spool
from . import _fingerprint as fp
from ._database import Database
from ._errors import (
    InputChangedError,
    JobLockedError,
    StoreError,
    UnknownJobError,
)
from ._info import (
    WARN_BEFORE_SECONDS,
    BatchInfo,
    ExpiryWarning,
    JobInfo,
    cost_of,
)
from ._location import DEFAULT_STORE, STORE_ENV, default_location, user_store_path  # noqa: F401
from ._lock import DEFAULT_STALE_AFTER, JobLock
from ._output import write_lines
from ._records import BatchRow, Pending, Records
from ._recovery import find_created_batch
from ._rowwriter import BatchRows, RowWriter

logger = logging.getLogger("claudebatch.store")

#: An unconfirmed create younger than this is looked for again before it is resent: the
#: service may still be making the batch a killed process asked for.
UNCONFIRMED_GRACE_SECONDS = 30.0
UNCONFIRMED_RECHECK_SECONDS = 2.0
#: Results are committed to the store at least this often (and at each batch's end).
DEFAULT_COMMIT_EVERY = 1000
#: ... and at least every this many seconds while results stream.
COMMIT_SECONDS = 2.0
#: When a job's first run looked up answers to reuse (it becomes the job's horizon).
_HORIZON: StashKey[float] = StashKey()


def _as_request(item: Any) -> Request:
    if isinstance(item, Request):
        return item
    return Request(str(item["custom_id"]), dict(item["params"]))


@dataclass
class _Run:
    """One run of one job through this store."""

    job: JobContext
    job_id: int
    lock: JobLock
    results: List[Tuple[str, str, bytes]] = field(default_factory=list)  # not yet committed
    pending: Pending = field(default_factory=Pending)  # held requests, answers: uncommitted
    rows: Dict[PendingBatch, BatchRows] = field(default_factory=dict)  # of this pass
    spool: Optional[Spool] = None  # their requests, as written (for the row thread)
    drained_at: float = 0.0
    adopted: int = 0
    #: The latest batch an answer was kept from, and its creation time.
    created: Tuple[str, Optional[float]] = ("", None)
    #: The pass the uncommitted results and held requests belong to: a replayed pass's
    #: duplicates are answered while a later pass runs, and must not be stored as its.
    buffered_pass: int = 0

    def __post_init__(self) -> None:
        self.pending.clock = self.job.clock.time  # answers stamped on the job's clock


class JobStore:
    """Persist jobs in a database so a job that died resumes where it was.

    ``db``: the store's :class:`Database` (a backend opens it).
    ``lock_timeout``: seconds to wait when another process runs the same job
    name on this store (0: refuse at once). ``stale_after``: seconds without a
    heartbeat after which a lock held from another host lapses (on this host, a
    lock lapses as soon as its process is gone). ``commit_every``: results per
    transaction. ``replay``: on resume, hand the stored result lines to the job,
    which rebuilds the output from them and shows them to every plugin (a retry
    policy or a cost tracker sees the whole job); False: the job downloads them
    again. ``stream``: where to say what it does (the CLI passes stderr).
    ``warn``: log a warning, on opening, for every batch whose results were
    never downloaded and are deleted by the service within 3 days.
    ``unconfirmed_grace``: seconds after a create whose answer never came during
    which a resume keeps looking for its batch before sending it again.

    A job is keyed by its ``name``: run it again with the same name to resume.
    """

    def __init__(self, db: Database, *, lock_timeout: float = 0.0,
                 stale_after: float = DEFAULT_STALE_AFTER,
                 commit_every: int = DEFAULT_COMMIT_EVERY, replay: bool = True,
                 stream: Optional[IO[str]] = None, warn: bool = True,
                 unconfirmed_grace: float = UNCONFIRMED_GRACE_SECONDS) -> None:
        if commit_every < 1:
            raise ValueError(f"commit_every must be >= 1, got {commit_every}")
        if lock_timeout < 0:
            raise ValueError(f"lock_timeout must be >= 0 seconds, got {lock_timeout}")
        self.db = db
        #: Where the store is, for messages (a path, a DSN without its password).
        self.location = db.name
        self.lock_timeout = float(lock_timeout)
        self.stale_after = float(stale_after)
        self.commit_every = int(commit_every)
        self.unconfirmed_grace = float(unconfirmed_grace)
        self.replay = replay
        self.stream = stream
        self.conn = db
        self.records = Records(db)
        #: Records the requests of the batches the job writes (in a thread where the
        #: backend can cut them out of JSON itself).
        self.rows = RowWriter(threaded=db.requests_from_json is not None)
        #: Seconds a worker's lease lasts (``claudebatch worker --lease``): a worker is
        #: shown as gone after three of them without a heartbeat.
        self.worker_lease = 60.0
        self._run: Optional[_Run] = None
        #: This process's claim on an output, from find_job until its job is locked.
        self._claim: Optional[JobLock] = None
        if warn:
            for warning in self.warnings():
                logger.warning("%s", warning)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    def close(self) -> None:
        if self._run is not None:
            self._end_run()
        self.rows.stop()
        self.conn.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the job hooks ----------------------------------------------------------------

    @hookimpl(tryfirst=True)
    def on_job_start(self, context: JobContext) -> None:
        """A job that raised left its run: ended before this job uses the store (what its
        row thread failed to record is logged, not raised in this job)."""
        if self._run is not None:
            self._end_run()

    @hookimpl
    def find_job(self, output: str, server: str) -> Optional[str]:
        """An unfinished job writing to ``output`` through ``server``: running the same
        command again resumes it without its name (a finished one is not: a new job reuses
        its answers; one of another server is not: its batches are not there)."""
        output = os.path.abspath(output)
        # Claimed first, until this run's job holds its own lock (resume_state): two
        # processes running the same command at once would otherwise both find no job,
        # and both pay for it.
        claim = JobLock(self.conn, f"output:{output}", store_path=self.location,
                        stale_after=self.stale_after)
        with self._guard():
            try:
                claim.acquire(self.lock_timeout)
            except JobLockedError as exc:
                raise JobLockedError(f"another process is starting a job that writes {output} "
                                     f"(give --name to run another job beside it): "
                                     f"{exc}") from None
            self._release_claim()
            self._claim = claim
            name = self.records.unfinished_job_writing(output, server)
        if name is not None:
            self._say(f"store: {output} is the output of job {name}, which did not finish: "
                      "this run continues it (--name NAME starts another)")
        return name

    @hookimpl
    def resume_state(self, context: JobContext) -> Optional[ResumeState]:
        if self._run is not None:
            self._end_run()  # the previous job on this store raised: forget it (and what
            # its row thread failed to do: logged, not raised in this job)
        with self._guard():
            lock = JobLock(self.conn, context.name, store_path=self.location,
                           stale_after=self.stale_after)
            lock.acquire(self.lock_timeout)
            try:
                return self._start(context, lock)
            except BaseException:
                self._run = None
                lock.release()
                raise
            finally:  # the job's row and own lock keep others out from here
                self._release_claim()

    def _start(self, job: JobContext, lock: JobLock) -> Optional[ResumeState]:
        self._check_output_is_not_the_store(job.output)
        now = time.time()
        found = fp.of_job(job)
        row = self.records.job(job.name)
        options = {**job.options, "poll_interval": job.poll_interval}
        if row is not None and row.mode == "workers":
            raise StoreError(f"job {job.name!r} in the store {self.location} is enqueued for "
                             "workers ('claudebatch worker'); its results come out with "
                             f"'claudebatch export {job.name} -o FILE'")
        if row is None:
            job_id = self.records.create_job(job.name, found, options, job.output, now,
                                             reuse_horizon=job.stash.get(_HORIZON, None))
            self._run = _Run(job, job_id, lock)
            self._say(f"store: job {job.name} recorded in {self.location} (if it stops, run it "
                   "again with the same name to resume)")
            return None
        if row.state != "done" and not self.records.batches(row.id) \
                and not self.records.latest_counts(row.id):
            # nothing was ever sent (a budget veto, a refusal): nothing to mix, whatever
            # the input is now; the job starts again from this run's
            self.records.restart_job(row.id, found, options, job.output, now,
                                     reuse_horizon=job.stash.get(_HORIZON, None))
            self._run = _Run(job, row.id, lock)
            self._say(f"store: job {job.name} had sent nothing yet; starting it")
            return None
        self._check_same_input(row.id, row.input, found, job)
        self.records.start_run(row.id, job.output, now)
        run = _Run(job, row.id, lock)
        self._run = run
        adopted = self._adopt_unconfirmed(row.id, job)
        run.adopted = len(adopted)
        batches = self.records.batches(row.id)
        submitted = {(b.pass_number, b.index): b.batch_id for b in batches if b.batch_id}
        if not submitted:
            self._say(f"store: job {job.name} had sent nothing yet; starting it")
            return None
        # Collected: every request has its result stored (a store written before that
        # rule could mark a batch done after a broken download; it is fetched again).
        finished = {b.batch_id for b in batches
                    if b.batch_id and b.results_done and b.results_stored >= b.request_count}
        pass_of = {b.batch_id: b.pass_number for b in batches if b.batch_id}
        self._say(f"store: resuming job {job.name}: {len(submitted)} batch(es) already "
                  f"created, {len(finished)} with all results stored"
                  + (f", {run.adopted} found after an unconfirmed create" if run.adopted
                     else ""))

        def stored(batch_id: str) -> Iterator[bytes]:
            if batch_id not in pass_of:
                return  # made in this run: nothing stored yet
            with self._guard():
                yield from self.records.lines_of_batches(run.job_id, pass_of[batch_id],
                                                         [batch_id])

        return ResumeState(submitted=dict(submitted), finished=finished if self.replay else set(),
                           adopted=adopted, stored=stored if self.replay else None)

    def _check_output_is_not_the_store(self, output: str) -> None:
        for path in self.db.files():
            same = os.path.abspath(output) == path or (
                os.path.exists(output) and os.path.exists(path) and os.path.samefile(output, path))
            if same:
                raise OutputPathError(
                    f"the output {output} is the job store {path}: writing results there "
                    "would destroy every job it holds; choose another output")

    def _check_same_input(self, job_id: int, before: fp.Fingerprint, now: fp.Fingerprint,
                          job: JobContext) -> None:
        why = fp.difference(before, now)
        comparable = before.kind == now.kind and before.content is not None \
            and now.content is not None
        if why is None and not comparable:
            # A generator cannot be read twice: check the requests already recorded are
            # the new input's, in the same order.
            recorded = self.records.first_pass_ids(job_id)
            if recorded:
                again = [r.custom_id for r in job.find_requests(recorded)]
                if again != recorded:
                    why = (f"the {len(recorded):,} requests already sent are not the same "
                           "custom_ids, in the same order, in this input")
        if why is not None:
            raise InputChangedError(
                f"job {job.name!r} in the store {self.location} was made from other input: {why}. "
                "Resuming would mix two jobs: give this run another name, or drop the old "
                f"job with 'claudebatch job {job.name} --forget'.")

    def _adopt_unconfirmed(self, job_id: int, job: JobContext) -> Dict[str, float]:
        """Intents whose create may have been sent: adopt the batch if the service made it.

        Returns ``{batch id: intent time}``: hypotheses the job proves from the results.
        """
        adopted: Dict[str, float] = {}
        known: Optional[Set[str]] = None
        for b in self.records.batches(job_id):
            if b.batch_id is not None:
                continue
            if known is None:
                known = self.records.known_batch_ids()
            batch = find_created_batch(job.client, b.intent_at, b.request_count, known)
            if batch is None:
                batch = self._wait_for_young_create(job, b, known)
            if batch is None:
                logger.info("job %s: pass %d batch %d was never created; it will be sent",
                            job.name, b.pass_number, b.index)
                continue
            self.records.record_batch(job_id, b.pass_number, b.index, batch)
            known.add(batch.id)
            adopted[batch.id] = b.intent_at
            self._say(f"store: job {job.name}: the create of pass {b.pass_number} batch "
                      f"{b.index} was sent but never confirmed; found it: {batch.id}")
        return adopted

    def _wait_for_young_create(self, job: JobContext, intent: BatchRow, known: Set[str]
                               ) -> Optional[MessageBatch]:
        """A create sent moments ago may not be listed yet (the process that sent it was
        killed while the service handled it): look again until it is old enough."""
        clock = job.client.clock
        waited = False
        while clock.time() < intent.intent_at + self.unconfirmed_grace:
            if not waited:
                self._say(f"store: job {job.name}: the create of pass {intent.pass_number} "
                          f"batch {intent.index} was sent "
                          f"{max(0.0, clock.time() - intent.intent_at):.0f} s ago and is not "
                          "listed yet; looking again for up to "
                          f"{self.unconfirmed_grace:.0f} s so it is not sent twice")
                waited = True
            clock.sleep(UNCONFIRMED_RECHECK_SECONDS)
            batch = find_created_batch(job.client, intent.intent_at, intent.request_count,
                                       known)
            if batch is not None:
                return batch
        return None

    @hookimpl(trylast=True)
    def on_submit_error(self, requests: PendingBatch, made_nothing: bool,
                        context: CallContext) -> None:
        """A create that certainly made no batch leaves no intent to adopt on resume."""
        run = self._current(context)
        if run is None:
            return
        # settled here whatever the create did: a failure left unsettled surfaced in the
        # next job this store ran in the process, whichever it was
        failed = self.rows.settle()
        if not made_nothing:
            if failed is not None:  # the create's error goes on; a resume records them
                logger.warning("job %s: the requests of pass %d batch %d were not all "
                               "recorded: %s", run.job.name, run.job.pass_number,
                               requests.index, failed)
            return
        # the intent is dropped even if its rows could not be recorded (then raised): kept,
        # a resume would wait for its create to be listed before sending it
        with self.db.guard():
            self.records.drop_intent(run.job_id, run.job.pass_number, requests.index)
        if failed is not None:
            raise failed

    @hookimpl(trylast=True)
    def before_pass(self, batches: List[PendingBatch], context: JobContext) -> None:
        """Record each request as the job writes it into its batch's body (no second read);
        first, the requests of a batch whose intent counts more than were recorded (a
        process killed while they were being recorded), from the job's input."""
        run = self._current(context)
        if run is None or context.dry_run:
            return
        with self._guard():  # the thread is done with the last pass's spool
            short = self.records.incomplete_batches(run.job_id, context.pass_number)
        run.rows = {}
        if run.spool is not None:
            run.spool.close()
        run.spool = Spool() if self.rows.threaded else None
        for pending in batches:
            if pending.index in short:
                with self._guard():
                    self.records.replace_requests(run.job_id, context.pass_number,
                                                  pending.index, pending)
                self._say(f"store: job {context.name}: the requests of pass "
                          f"{context.pass_number} batch {pending.index} recorded again (a "
                          "run stopped while recording them)")
            rows = BatchRows(self.rows, self.records, self.db.guard, run.job_id,
                             context.pass_number, pending.index, run.spool)
            run.rows[pending] = rows
            pending.observe(rows.add, restart=rows.restart, raw=True)

    @hookimpl(trylast=True)
    def before_submit(self, requests: PendingBatch, context: CallContext) -> None:
        run = self._current(context)
        if run is None:
            return
        rows = run.rows.get(requests)  # kept: a create refused for a full queue comes again
        observed = rows is not None and rows.count == len(requests)
        if observed and rows is not None and not rows.deferred:
            rows.record()  # inline: every row before the intent
        with self._guard():
            if observed:
                self.records.record_intent(run.job_id, run.job.pass_number, requests.index,
                                           len(requests), context.clock.time())
            else:  # not observed as written (a plugin wrote it another way): read it
                self.records.record_intent(run.job_id, run.job.pass_number, requests.index,
                                           len(requests), context.clock.time(), requests)
            run.lock.heartbeat()
        if observed and rows is not None and rows.deferred:
            rows.record()  # by the thread, while the create goes out

    @hookimpl(trylast=True)
    def after_submit(self, batch: MessageBatch, requests: PendingBatch,
                     context: CallContext) -> None:
        run = self._current(context)
        if run is None:
            return
        failed = self.rows.settle()  # the batch's id is recorded even so: nothing is lost
        with self.db.guard():
            self.records.record_batch(run.job_id, run.job.pass_number, requests.index, batch)
        if failed is not None:
            raise failed

    @hookimpl(trylast=True)
    def on_poll(self, batch: MessageBatch, context: CallContext) -> None:
        run = self._current(context)
        if run is None:
            return
        with self._guard():
            self.records.update_batch(run.job_id, batch)
            run.lock.heartbeat()

    @hookimpl
    def on_result(self, raw: Dict[str, Any], line: bytes, context: CallContext) -> None:
        """Read from ``raw``: no typed result is built for the store."""
        run = self._current(context)
        if run is None or run.job.replaying:
            return  # stored already
        pass_number = run.job.pass_number
        if run.buffered_pass != pass_number:
            self._buffer_for(run, pass_number)
        custom_id = raw["custom_id"]  # a str: checked as the line was read
        kind = raw["result"].get("type")
        if type(kind) is not str:
            from claudebatch import parse_result  # (loads the results reader: not at import)

            kind = parse_result(raw).type  # raises, naming the line's custom_id
        if run.job.reusing:  # answered without a batch: recorded as the job's request too
            run.pending.held.append(custom_id)
        run.results.append((custom_id, kind, line))
        count = len(run.results)
        if count >= self.commit_every or (
                count % 64 == 0 and time.monotonic() - run.drained_at >= COMMIT_SECONDS):
            self._commit(run)

    @hookimpl
    def keep_answer(self, key: str, raw: Dict[str, Any], line: bytes, context: JobContext,
                    batch: MessageBatch) -> None:
        """Kept with the result it came with (committed in the same transaction)."""
        run = self._current(context)
        if run is None:
            return
        if run.created[0] != batch.id:  # the same few batches, answer after answer
            run.created = (batch.id, batch.created_at.timestamp()
                           if batch.created_at is not None else None)
        run.pending.answers.append((key, line, context.name, raw["custom_id"], batch.id,
                                    run.created[1]))

    @hookimpl
    def find_answers(self, keys: Sequence[str], max_age: Optional[float],
                     context: JobContext) -> Optional[Dict[str, StoredAnswer]]:
        """Answers kept before the job's first run planned: a resumed run finds the same."""
        with self._guard():
            row = self.records.job(context.name)
            if row is not None and row.reuse_horizon is None:
                return {}  # it started without looking: it goes on without reusing
            first = row is None
            horizon = row.reuse_horizon if row is not None else \
                context.stash.setdefault(_HORIZON, context.clock.time)
            assert horizon is not None
            oldest = horizon - max_age if max_age is not None else None
            found = self.records.find_answers(keys, horizon, oldest,
                                              count_hits=first and not context.dry_run)
        return {key: StoredAnswer(line=bytes(line), job=job, custom_id=custom_id,
                                  batch_id=batch_id, batch_created_at=created,
                                  stored_at=stored)
                for key, line, job, custom_id, batch_id, created, stored in found}

    @hookimpl(trylast=True)
    def on_batch_end(self, batch: MessageBatch, context: JobContext, complete: bool) -> None:
        run = self._current(context)
        if run is None:
            return
        self._buffer_for(run, context.pass_number)
        with self._guard():
            self.records.end_batch(run.job_id, context.pass_number, self._drain(run),
                                   run.pending, batch, complete=complete)
            self._note_cost(run)

    @hookimpl(tryfirst=True)
    def resubmit_requests(self, pass_number: int, context: JobContext
                          ) -> Optional[List[Request]]:
        """A pass an earlier run decided on is sent again as it was ([]: none)."""
        run = self._current(context)
        if run is None:
            return None
        with self._guard():
            return self.records.decision(run.job_id, pass_number + 1)

    @hookimpl(wrapper=True, specname="resubmit_requests")
    def record_resubmission(self, pass_number: int, context: JobContext
                            ) -> Generator[None, Optional[Iterable[Any]], Optional[Iterable[Any]]]:
        """What the plugins decided for the next pass, recorded before it is sent."""
        chosen = yield
        run = self._current(context)
        if run is None:
            return chosen
        with self._guard():
            if self.records.decision(run.job_id, pass_number + 1) is not None:
                return chosen  # recorded already: the answer came from it
            requests = [_as_request(item) for item in (chosen or ())]
            self.records.record_decision(run.job_id, pass_number + 1, requests, time.time())
        return requests

    @hookimpl(tryfirst=True)
    def on_job_end(self, report: JobReport, context: JobContext) -> None:
        run = self._current(context)
        if run is None:
            return
        try:
            summary = {"cost": report.plugins["cost"]} if "cost" in report.plugins else None
            self._commit(run)  # answers given without a batch have no batch end
            with self._guard():
                self.records.finish_job(run.job_id, time.time(),
                                        self.records.latest_counts(run.job_id), summary)
        finally:
            self._end_run()

    @hookimpl
    def job_summary(self, report: Union[JobReport, JobPlan], context: JobContext
                    ) -> Optional[Dict[str, Any]]:
        if isinstance(report, JobPlan):
            with self._guard():
                self._release_claim()  # a dry run never locks its job
            return None
        return {"store": f"{self.location} (job {context.name}; run it again to resume)"}

    # --- helpers ----------------------------------------------------------------------

    def _guard(self) -> ContextManager[None]:
        """The connection, once the row writer has recorded every request handed to it
        (what it failed to record is raised here)."""
        self.rows.wait()
        return self.db.guard()

    def _current(self, context: CallContext) -> Optional[_Run]:
        run = self._run
        return run if run is not None and context is run.job else None

    def _buffer_for(self, run: _Run, pass_number: int) -> None:
        """Commit what was gathered for another pass before gathering for this one."""
        if run.buffered_pass != pass_number and (run.results or run.pending.held):
            self._commit(run)
        run.buffered_pass = pass_number

    def _commit(self, run: _Run) -> None:
        with self._guard():
            self.records.insert_results(run.job_id, run.buffered_pass or run.job.pass_number,
                                        self._drain(run), run.pending)
            run.lock.heartbeat()
            self._note_cost(run)

    def _note_cost(self, run: _Run) -> None:
        """The dollars so far, while the job runs (``claudebatch jobs``, the status page)."""
        cost = run.job.cost_usd()
        if cost is not None:
            self.records.note_cost(run.job_id, f"${cost:,.4f} so far")

    def _drain(self, run: _Run) -> List[Tuple[str, str, bytes]]:
        """The result rows gathered since the last commit (and forget them)."""
        rows, run.results = run.results, []
        run.drained_at = time.monotonic()
        return rows

    def _release_claim(self) -> None:
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.release()

    def _end_run(self) -> None:
        run, self._run = self._run, None
        if run is None:
            return
        failed = self.rows.settle()  # raised by the hook that failed, if it came to one
        if failed is not None:
            logger.warning("job %s: %s", run.job.name, failed)
        if run.spool is not None:
            run.spool.close()
        try:
            with self.db.guard():
                run.lock.release()
        except StoreError as exc:
            logger.warning("could not release the lock of job %s: %s", run.job.name, exc)

    def _say(self, message: str) -> None:
        logger.info("%s", message)
        if self.stream is not None:
            self.stream.write(message + "\n")
            self.stream.flush()

    # --- reading the store back ---------------------------------------------------------

    def job(self, name: str) -> JobInfo:
        """Everything the store knows about job ``name``."""
        with self._guard():
            row = self.records.job(name)
            if row is None:
                known = ", ".join(r.name for r in self.records.jobs()[-5:]) or "none"
                raise UnknownJobError(f"no job {name!r} in the store {self.location} "
                                      f"(latest jobs: {known})")
            return self._info(row)

    def jobs(self) -> List[JobInfo]:
        with self._guard():
            return [self._info(row) for row in self.records.jobs()]

    def _info(self, row: Any) -> JobInfo:
        batches = [BatchInfo(b.pass_number, b.index, b.batch_id, b.request_count,
                             b.status or ("queued" if not b.intent_at else None),
                             b.counts, b.created_at, b.expires_at, b.ended_at,
                             b.results_done, b.results_stored)
                   for b in self.records.batches(row.id)]
        counts = row.counts if row.state == "done" and row.counts is not None \
            else self.records.latest_counts(row.id)
        owner = None
        state = row.state
        if row.mode == "workers":
            owner = self._workers_on(row.name) if state == "running" else None
        elif state == "running":
            lock = JobLock(self.conn, row.name, store_path=self.location,
                           stale_after=self.stale_after)
            holder = lock.owner()
            if holder is not None and lock.is_live(holder):
                owner = f"run by {holder.describe()}"
            else:
                state = "interrupted"
        recorded = self.records.recorded_count(row.id)
        missing = len(self.records.missing_ids(row.id)) + max(0, row.total_requests - recorded)
        return JobInfo(
            name=row.name, state=state, total_requests=row.total_requests,
            counts=dict(counts), missing=missing, output=row.output,
            fingerprint=row.fingerprint, options=row.options, runs=row.runs,
            created_at=row.created_at, updated_at=row.updated_at, ended_at=row.ended_at,
            owner=owner, cost=cost_of(row.summary), summary=row.summary or {},
            batches=batches)

    def _workers_on(self, name: str) -> str:
        from ._leases import Leases

        now = time.time()
        live = [w for w in Leases(self.db).workers() if w["state"] == "working"
                and now - w["heartbeat_at"] < 3 * self.worker_lease
                and any(lease.startswith(f"{name} ") for lease in w["leases"])]
        return f"{len(live)} worker(s) on it now" if live else "waiting for a worker"

    def workers(self) -> List[Dict[str, Any]]:
        """Every worker this store has seen (``claudebatch worker``), with its leases."""
        from ._leases import Leases

        with self._guard():
            return Leases(self.db).workers()

    def results(self, name: str) -> Iterator[Tuple[int, str, bytes]]:
        """``(pass, custom_id, line)`` of every stored result of job ``name``, every pass."""
        job_id = self._job_id(name)
        with self._guard():
            yield from self.records.stored_results(job_id)

    def dated_results(self, name: str) -> Iterator[Tuple[int, str, bytes, Optional[float]]]:
        """:meth:`results` with the ``created_at`` (epoch seconds, or None if unrecorded)
        of the batch each came from: what prices a result as of its batch."""
        job_id = self._job_id(name)
        with self._guard():
            yield from self.records.dated_results(job_id)

    def export(self, name: str, output: str) -> Tuple[int, int]:
        """Write job ``name``'s results (each request's latest attempt) to ``output``: a
        JSONL file of result lines, a table by extension (``.csv``, ``.tsv``,
        ``.parquet``: the answer's columns), or any fsspec URL (``s3://...``).

        Needs no service. Returns ``(lines written, requests without a stored result)``.
        """
        job_id = self._job_id(name)
        if "://" not in output:
            self._check_output_is_not_the_store(output)
        if table_format(output) is None:
            raise OutputPathError(f"cannot tell what to write to {output} from its name: "
                                  "name it .jsonl (result lines), .csv, .tsv or .parquet")
        check_overwrite(output)
        with self._guard():
            lines = self.records.latest_lines(job_id, finished_only=False)
            if "://" in output or table_format(output) in ("csv", "tsv", "parquet"):
                written = write_results_table(lines, output)  # a table, or a URL
            else:
                written = write_lines(output, lines)
            info = self._info(self.records.job(name))
        return written, info.missing

    def warnings(self, now: Optional[float] = None) -> List[ExpiryWarning]:
        """Batches whose results were never downloaded, within 3 days of deletion (or past)."""
        moment = time.time() if now is None else now
        with self._guard():
            rows = self.records.undownloaded()
        found = []
        for job, batch_id, created_at in rows:
            deleted = created_at + RESULTS_KEPT_SECONDS
            if deleted - moment <= WARN_BEFORE_SECONDS:
                found.append(ExpiryWarning(job, batch_id, deleted, deleted - moment))
        return found

    def warn_expiring(self, out: Optional[IO[str]] = None) -> None:
        """Print the expiry warnings (to stderr by default)."""
        stream = out if out is not None else sys.stderr
        for warning in self.warnings():
            stream.write(f"{warning}\n")

    def reuse_stats(self) -> Dict[str, Any]:
        """The answers kept for reuse: how many, their bytes, the hits they had, ages."""
        with self._guard():
            return self.records.answer_stats()

    def prune_answers(self, older_than: float, now: Optional[float] = None) -> int:
        """Drop the answers kept more than ``older_than`` seconds ago; how many went.

        A job still to be resumed that reused one of them is then refused (its rerun
        would decide differently): prune between jobs, not under one."""
        moment = time.time() if now is None else now
        with self._guard():
            return self.records.prune_answers(moment - older_than)

    def forget(self, name: str) -> None:
        """Drop job ``name`` and everything stored for it (its batches stay on the service;
        the answers it bought stay kept for reuse: ``prune_answers`` drops those)."""
        job_id = self._job_id(name)
        with self._guard():
            self.records.forget(job_id, name)

    def _job_id(self, name: str) -> int:
        with self._guard():
            row = self.records.job(name)
        if row is None:
            raise UnknownJobError(f"no job {name!r} in the store {self.location}")
        return row.id
