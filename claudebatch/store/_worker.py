"""Jobs many workers share: ``enqueue`` puts a job's requests in the store, ``Worker``
takes its batches through leases, on as many hosts as share the store.

A worker loops: take a queued batch and create it (the intent recorded before the
POST, the batch id after it), or take a created batch that is due and look at it
(on ``ended``, stream its results into the store). A worker that dies leaves its
leases to expire; the next worker to take a batch whose create was sent but never
recorded looks for that batch on the service first, so no batch is paid twice.
Results land in the store; ``claudebatch export`` writes the output from any host.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import IO, Any, Iterator, List, Optional, Tuple

from .. import _client
from .._inputs import validate_batch
from .._pending import PendingBatch
from ..errors import (
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    RateLimitError,
)
from ..models import MessageBatch, Request
from ..policies import queue_retry_delay
from . import _fingerprint as fp
from ._errors import InputChangedError, StoreError
from ._jobstore import UNCONFIRMED_GRACE_SECONDS, JobStore
from ._leases import Leases
from ._lock import JobLock
from ._records import Pending, dumps, params_text
from ._recovery import find_created_batch

logger = logging.getLogger("claudebatch.worker")

#: A worker's lease on a batch lasts this long unless renewed (every third of it).
DEFAULT_LEASE_SECONDS = 60.0
#: The first wait between looks at a batch; it grows as the client's polls do.
DEFAULT_CHECK_SECONDS = 30.0
#: A create the service failed (5xx past the client's retries) is tried again after this.
SERVICE_FAILED_BACKOFF = 60.0
#: Result rows written per transaction while a batch's results stream in.
RESULT_ROWS_PER_WRITE = 1000
#: A worker with nothing due sleeps at most this long before looking again.
MAX_IDLE_SECONDS = 30.0
#: Requests written per transaction while a job is enqueued.
ENQUEUE_ROWS_PER_WRITE = 2000


def enqueue(store: JobStore, client: Any, source: Any, *, name: str,
            max_in_flight: Optional[int] = None, poll_interval: Optional[float] = None,
            **options: Any) -> int:
    """Validate and split ``source`` as a run would, and put the job in ``store`` for
    workers; returns the number of batches queued. Nothing is sent.

    Enqueueing the same input again under the same name is a no-op; a job of that name
    made from other input is refused. A job whose enqueue was interrupted is made
    again."""
    if max_in_flight is not None:  # batches are cut no larger (else one could never go)
        options["max_in_flight"] = max_in_flight
    job = client.job(source, name=name, poll_interval=poll_interval, **options)
    spool, plans = job.plan(source)
    if job.reuse_plan is not None and (job.reuse_plan.reused or job.duplicates):
        raise ConfigurationError("a job for workers sends every request: give reuse=False "
                                 "(--no-reuse)")
    job.total_requests = sum(p.count for p in plans)
    found = fp.of_job(job.context)
    leases = Leases(store.db)
    lock = JobLock(store.db, name, store_path=store.location)
    with store.db.guard():
        lock.acquire(store.lock_timeout)
        try:
            row = store.records.job(name)
            if row is not None:
                if row.mode == "workers" and row.state != "queued":
                    why = fp.difference(row.input, found)
                    if why is not None:
                        raise InputChangedError(f"job {name!r} in the store {store.location} "
                                                f"was enqueued from other input: {why}")
                    store._say(f"store: job {name} is enqueued already ({row.state})")
                    return len(store.records.batches(row.id))
                if row.mode != "workers":
                    raise StoreError(f"the store {store.location} has a job {name!r} run "
                                     "without workers already: give the job another name")
                store.records.forget(row.id, name)  # an enqueue that was interrupted
                lock.acquire(store.lock_timeout)  # forget dropped the lock row too
            opts = {**job.context.options, "max_in_flight": job.max_in_flight,
                    "poll_interval": poll_interval}
            job_id = leases.create_worker_job(name, found, opts, time.time())
            for plan in plans:
                _queue_batch(store, job_id, job._pending(spool, plan))
            leases.release_job(job_id, time.time())
        finally:
            lock.release()
            job.close()
    store._say(f"store: job {name} enqueued in {store.location}: {job.total_requests:,} "
               f"request(s) in {len(plans)} batch(es); start workers with 'claudebatch worker "
               f"--store ...'")
    return len(plans)


def _queue_batch(store: JobStore, job_id: int, pending: Any) -> None:
    rows: List[Tuple[int, str, str]] = []
    first = True
    for pos, request in enumerate(pending):
        rows.append((pos, request.custom_id, params_text(request.params)))
        if len(rows) >= ENQUEUE_ROWS_PER_WRITE:
            store.records.add_requests(job_id, 1, pending.index, rows, first=first)
            rows, first = [], False
    store.records.add_requests(job_id, 1, pending.index, rows, first=first)
    Leases(store.db).queue_batch(job_id, pending.index, len(pending))


class Worker:
    """Works on the jobs of ``store`` made for workers (all, or the job ``job``).

    ``client``: how to reach the service (its API key stays on this host). ``lease``:
    seconds a batch stays this worker's without a heartbeat. ``check_interval``: the
    first wait between looks at a batch (default: the job's poll interval, else 30 s).
    ``max_in_flight``: requests in unfinished batches, per job (default: the job's).
    ``until_idle``: stop when no job has work left (False: wait for new jobs).
    """

    def __init__(self, store: JobStore, client: Any, *, job: Optional[str] = None,
                 lease: float = DEFAULT_LEASE_SECONDS, check_interval: Optional[float] = None,
                 max_in_flight: Optional[int] = None, until_idle: bool = True,
                 stream: Optional[IO[str]] = None) -> None:
        if lease <= 0:
            raise ValueError(f"lease must be > 0 seconds, got {lease}")
        self.store = store
        self.client = client
        self.job = job
        self.lease = float(lease)
        self.check_interval = check_interval
        self.max_in_flight = max_in_flight
        self.until_idle = until_idle
        self.stream = stream
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.leases = Leases(store.db)
        self.batches_done = 0
        self._stop = threading.Event()
        #: Set when a signal asked the worker to stop (the command line's handlers).
        self.stopped_by_signal = False
        self._checks: dict[Tuple[int, int, int], int] = {}
        self._refusals: dict[Tuple[int, int, int], int] = {}
        self._job_intervals: dict[int, float] = {}

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        """Work until the job is done (or, without a job, until no job has work left,
        unless ``until_idle`` is False); returns the batches this worker finished."""
        with self.store.db.guard():
            row = None if self.job is None else self.store.records.job(self.job)
            if self.job is not None and row is None:
                raise StoreError(f"no job {self.job!r} in the store {self.store.location} "
                                 "(enqueue it with 'claudebatch run ... --enqueue')")
            if row is not None and row.mode != "workers":
                raise StoreError(f"job {self.job!r} in the store {self.store.location} is run "
                                 "by 'claudebatch run', not enqueued for workers: run that "
                                 "command again to resume it")
            if row is not None and row.state == "queued" and \
                    not self.leases.being_enqueued(row.name):
                raise StoreError(f"the enqueue of job {self.job!r} in the store "
                                 f"{self.store.location} was interrupted: run the same "
                                 "'claudebatch run ... --enqueue' again")
            self.leases.register_worker(self.id, socket.gethostname(), os.getpid(), self.job,
                                        time.time())
        self._say(f"worker {self.id}: working on "
                  f"{'job ' + self.job if self.job else 'every job'} in {self.store.location}")
        beat = threading.Thread(target=self._heartbeats, name="claudebatch-heartbeat",
                                daemon=True)
        beat.start()
        try:
            while not self._stop.is_set():
                if self.step():
                    continue
                with self.store.db.guard():
                    self._finish_collected()
                    left = self.leases.unfinished_jobs(self.job)
                    due = self.leases.next_due(self.job)
                if not left and (self.until_idle or self.job is not None):
                    break
                wait = MAX_IDLE_SECONDS if due is None else due - time.time()
                self._stop.wait(min(MAX_IDLE_SECONDS, max(0.05, wait)))
        finally:
            self._stop.set()
            beat.join(timeout=5)
            try:
                with self.store.db.guard():
                    self.leases.stop_worker(self.id, time.time())
            except StoreError as exc:
                logger.warning("worker %s: could not sign off: %s", self.id, exc)
        self._say(f"worker {self.id}: done, {self.batches_done} batch(es) finished")
        return self.batches_done

    def _finish_collected(self) -> None:
        """A job whose batches are all collected is done, even if the worker that
        collected its last one was killed before it could say so."""
        for job_id, name in self.leases.unfinished_jobs(self.job):
            self._finish_if_collected(job_id, name)

    def _finish_if_collected(self, job_id: int, name: str) -> None:
        if self.leases.job_state(name) == "running" and self.leases.all_collected(job_id):
            records = self.store.records
            records.finish_job(job_id, time.time(), records.latest_counts(job_id), None)
            self._say(f"worker {self.id}: job {name} is done (every batch's results are in "
                      "the store)")

    def stop(self) -> None:
        self._stop.set()

    def step(self) -> bool:
        """Do one thing that is due; False if nothing was."""
        now = time.time()
        with self.store.db.guard():
            claim = self.leases.claim_create(self.id, now, self.lease, self.job,
                                             self.max_in_flight)
        if claim is not None:
            self._create(*claim)
            return True
        with self.store.db.guard():
            check = self.leases.claim_check(self.id, now, self.lease, self.job)
        if check is not None:
            self._check(*check)
            return True
        return False

    def _heartbeats(self) -> None:
        """Renew this worker's leases on a connection of its own, every third of a lease."""
        try:
            db = self.store.db.another()
        except StoreError as exc:
            logger.error("worker %s: no heartbeat connection: %s", self.id, exc)
            return
        leases = Leases(db)
        try:
            while not self._stop.wait(self.lease / 3):
                try:
                    with db.guard():
                        leases.heartbeat(self.id, time.time(), self.lease)
                except StoreError as exc:
                    logger.warning("worker %s: heartbeat failed: %s", self.id, exc)
        finally:
            db.close()

    # --- creating ---------------------------------------------------------------------

    def _create(self, job_id: int, name: str, pass_number: int, index: int, count: int,
                intent_at: float) -> None:
        where = f"job {name} pass {pass_number} batch {index}"
        key = (job_id, pass_number, index)
        if intent_at > 0:  # sent by a worker that died before recording the batch id
            with self.store.db.guard():
                known = self.store.records.known_batch_ids()
            try:
                batch = find_created_batch(self.client, intent_at, count, known)
            except (APIConnectionError, APIStatusError) as exc:
                if _refused_for_good(exc):
                    raise
                with self.store.db.guard():  # not sent again before it was looked for
                    self.leases.release(self.id, job_id, pass_number, index,
                                        next_check_at=time.time() + UNCONFIRMED_GRACE_SECONDS)
                logger.warning("worker %s: %s: could not look for its create: %s; looked "
                               "for again later", self.id, where, exc)
                return
            if batch is not None:
                if self._record(job_id, pass_number, index, batch):
                    self._say(f"worker {self.id}: {where}: its create was sent by a worker "
                              f"that stopped before recording it; found it: {batch.id}")
                return
        validator = self.client.validator()
        pending = PendingBatch.from_requests(
            validate_batch(self._requests(job_id, pass_number, index), validator))
        pending.betas = self.client.note_added_betas(validator.added_betas)
        try:
            pending.write_body()
            with self.store.db.guard():  # durably, right before the POST, if still ours
                if not self.leases.record_intent(job_id, pass_number, index, self.id,
                                                 time.time()):
                    logger.warning("worker %s: %s: the lease lapsed before the create was "
                                   "sent; another worker has the batch", self.id, where)
                    return
            # a 429 comes back at once: the batch waits in the store, not in this worker
            batch = self.client._create(pending, final_statuses=(429,))
        except RateLimitError as exc:  # the workspace's queue is full: nothing was made
            if getattr(exc, "spend_cap", False):  # the month's spend cap: waiting won't do
                with self.store.db.guard():
                    self.leases.requeue(self.id, job_id, pass_number, index, after=time.time())
                    self.leases.fail_job(job_id, time.time(), f"{where}: {exc}")
                logger.error("worker %s: %s: %s", self.id, where, exc)
                return
            # the service's retry-after when sane, else backoff (never a year's wait)
            refusals = self._refusals[key] = self._refusals.get(key, 0) + 1
            delay = queue_retry_delay(refusals - 1, exc.retry_after)
            with self.store.db.guard():
                self.leases.requeue(self.id, job_id, pass_number, index, after=time.time() + delay)
            self._say(f"worker {self.id}: {where}: the service's queue is full; trying "
                      f"again in {delay:.0f} s")
            return
        except (APIConnectionError, APIStatusError) as exc:
            if isinstance(exc, APIConnectionError) or not _client.made_nothing(exc):
                # maybe made: looked for (not sent again) once it is old enough to be listed
                with self.store.db.guard():
                    self.leases.release(self.id, job_id, pass_number, index,
                                        next_check_at=time.time() + UNCONFIRMED_GRACE_SECONDS)
                logger.warning("worker %s: %s: the create's answer was lost (%s); the batch "
                               "is looked for before it is sent again", self.id, where, exc)
                return
            with self.store.db.guard():
                if exc.status_code < 500:  # refused for good: the job cannot finish
                    self.leases.requeue(self.id, job_id, pass_number, index, after=time.time())
                    self.leases.fail_job(job_id, time.time(), f"{where}: {exc}")
                else:  # the service is failing: later
                    self.leases.requeue(self.id, job_id, pass_number, index,
                                        after=time.time() + SERVICE_FAILED_BACKOFF)
            logger.error("worker %s: %s: the create was refused: %s", self.id, where, exc)
            return
        finally:
            pending.discard_body()
        if self._record(job_id, pass_number, index, batch,
                        next_check_at=time.time() + self._interval(job_id, 0)):
            self._say(f"worker {self.id}: {where}: created {batch.id} ({count:,} requests)")

    def _record(self, job_id: int, pass_number: int, index: int, batch: MessageBatch, *,
                next_check_at: Optional[float] = None) -> bool:
        """The batch id, unless another worker recorded one for this batch meanwhile (this
        worker was paused past its lease): then this batch is a duplicate, canceled."""
        with self.store.db.guard():
            if self.leases.set_batch_id(job_id, pass_number, index, batch.id):
                self.store.records.update_batch(job_id, batch)
                self.leases.release(self.id, job_id, pass_number, index,
                                    next_check_at=time.time() if next_check_at is None
                                    else next_check_at)
                return True
        logger.error("worker %s: job %s pass %d batch %d has a batch recorded by another "
                     "worker already (this one lost its lease while it worked); canceling "
                     "the duplicate %s", self.id, job_id, pass_number, index, batch.id)
        try:
            self.client.cancel(batch.id)
        except (APIConnectionError, APIStatusError) as exc:
            logger.error("worker %s: could not cancel %s: %s", self.id, batch.id, exc)
        return False

    def _requests(self, job_id: int, pass_number: int, index: int) -> Iterator[Request]:
        for custom_id, params in self.store.db.stream(
                "SELECT custom_id, params FROM requests WHERE job_id = ? AND pass = ? "
                "AND idx = ? ORDER BY pos", (job_id, pass_number, index)):
            yield Request(custom_id, json.loads(params))

    # --- looking and collecting -------------------------------------------------------

    def _check(self, job_id: int, name: str, pass_number: int, index: int, batch_id: str,
               count: int) -> None:
        key = (job_id, pass_number, index)
        try:
            batch = self.client.retrieve(batch_id)
            with self.store.db.guard():
                self.store.records.update_batch(job_id, batch)
            if not batch.ended:
                looks = self._checks[key] = self._checks.get(key, 0) + 1
                with self.store.db.guard():
                    self.leases.release(self.id, job_id, pass_number, index,
                                        next_check_at=time.time()
                                        + self._interval(job_id, looks, batch))
                return
            self._collect(job_id, name, pass_number, index, batch, count)
        except (APIConnectionError, APIStatusError) as exc:
            if getattr(exc, "status_code", None) == 404:  # gone (deleted), results too
                with self.store.db.guard():
                    self.leases.give_up(self.id, job_id, pass_number, index, time.time(),
                                        f"batch {batch_id} of pass {pass_number} batch "
                                        f"{index} is gone from the service: {exc}")
                logger.error("worker %s: job %s: batch %s is gone: %s", self.id, name,
                             batch_id, exc)
                return
            if _refused_for_good(exc):
                raise  # refused for good (the key is wrong): say so, and stop
            with self.store.db.guard():
                self.leases.release(self.id, job_id, pass_number, index,
                                    next_check_at=time.time() + self._interval(job_id, 0))
            logger.warning("worker %s: batch %s: %s; looked at again later", self.id,
                           batch_id, exc)

    def _collect(self, job_id: int, name: str, pass_number: int, index: int,
                 batch: MessageBatch, count: int) -> None:
        records = self.store.records
        with self.store.db.guard():
            ours = {r[0] for r in self.store.db.execute(
                "SELECT custom_id FROM requests WHERE job_id = ? AND pass = ? AND idx = ?",
                (job_id, pass_number, index))}
        rows: List[Tuple[str, str, bytes]] = []
        seen = foreign = 0
        for value, line in self.client._lines_of(batch):
            custom_id = value.get("custom_id")
            if custom_id not in ours:
                foreign += 1
                continue  # not a request of this batch: never stored as the job's
            seen += 1
            kind = str((value.get("result") or {}).get("type", "errored"))
            rows.append((custom_id, kind, line or dumps(value).encode("utf-8")))
            if len(rows) >= RESULT_ROWS_PER_WRITE:
                with self.store.db.guard():
                    records.insert_results(job_id, pass_number, rows)
                rows = []
        if foreign and not seen:  # taken for a lost create, but someone else's batch
            with self.store.db.guard():
                self.leases.disown(self.id, job_id, pass_number, index, batch.id, time.time())
            logger.error("worker %s: job %s pass %d batch %d: %s, taken for its lost create, "
                         "holds none of its requests; it is looked for again without it",
                         self.id, name, pass_number, index, batch.id)
            return
        complete = seen >= count
        with self.store.db.guard():
            records.end_batch(job_id, pass_number, rows, Pending(), batch, complete=complete)
            self.leases.release(self.id, job_id, pass_number, index,
                                next_check_at=None if complete else time.time() + 5.0)
            if not complete:
                return
            self.leases.worker_done_batch(self.id)
        self.batches_done += 1
        self._say(f"worker {self.id}: job {name} pass {pass_number} batch {index}: "
                  f"{seen:,} result(s) stored from {batch.id}")
        with self.store.db.guard():
            self._finish_if_collected(job_id, name)

    def _interval(self, job_id: int, looks: int,
                  batch: Optional[MessageBatch] = None) -> float:
        first = self.check_interval
        if first is None:
            first = self._job_intervals.get(job_id)
        if first is None:  # the job's own, read once per job
            with self.store.db.guard():
                row = self.store.db.execute("SELECT options FROM jobs WHERE id = ?",
                                            (job_id,)).fetchone()
            given = json.loads(row[0]).get("poll_interval") if row else None
            first = self._job_intervals[job_id] = \
                DEFAULT_CHECK_SECONDS if given is None else float(given)
        if batch is None:
            return first
        # the client's poll policy (a plugin may replace it): grows to ten times the first
        return float(self.client.hook.poll_delay(batch=batch, attempt=looks,
                                                 first_interval=first,
                                                 context=self.client.context))

    def _say(self, message: str) -> None:
        logger.info("%s", message)
        if self.stream is not None:
            self.stream.write(message + "\n")
            self.stream.flush()


def _refused_for_good(error: BaseException) -> bool:
    """A 4xx other than 408, 409 and 429: asking again will not help."""
    status = getattr(error, "status_code", None)
    return status is not None and status < 500 and status not in (408, 409, 429)
