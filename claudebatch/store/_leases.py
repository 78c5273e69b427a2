"""The statements workers share a job through: queued batches, leases, workers.

A batch of a job made for workers (``mode = 'workers'``) is *queued* while its
``intent_at`` is 0. A worker takes a batch by writing its lease (``lease_owner``,
``lease_until``) in a claim transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so workers never wait on each other's rows); it records the create
intent (``intent_at``) before the POST, the batch id after it, and the results as
they stream. A lease that is not renewed expires, and any worker takes it over.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from ._database import Database
from ._records import dumps

#: ``intent_at`` of a batch no worker has tried to create yet.
QUEUED = 0.0
#: A batch with no id that is being created: its create may have been sent (an intent),
#: or a worker holds it to send it now. ``{o}`` is the table's alias; one ``?``: now.
_CREATING = "({o}.intent_at > 0 OR {o}.lease_until >= ?)"
#: The jobs workers create batches for.
_WORKER_JOBS = "SELECT id FROM jobs WHERE mode = 'workers' AND state = 'running'"


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- jobs made for workers ------------------------------------------------------

    def create_worker_job(self, name: str, fingerprint: Any, options: Dict[str, Any],
                          now: float) -> int:
        with self.db.transaction(durable=True) as db:
            cursor = db.execute(
                "INSERT INTO jobs (name, fingerprint, input, options, output, state, "
                "total_requests, created_at, updated_at, mode) VALUES (?, ?, ?, ?, NULL, "
                "'queued', ?, ?, ?, 'workers') RETURNING id",
                (name, fingerprint.digest, fingerprint.to_json(), dumps(options),
                 fingerprint.total, now, now))
            return int(cursor.fetchone()[0])

    def queue_batch(self, job_id: int, index: int, count: int) -> None:
        """The batch, its requests written, queued for a worker to create."""
        with self.db.transaction() as db:
            db.execute("INSERT INTO batches (job_id, pass, idx, batch_id, request_count, "
                       "intent_at) VALUES (?, 1, ?, NULL, ?, ?)", (job_id, index, count, QUEUED))

    def release_job(self, job_id: int, now: float) -> None:
        """Enqueued whole: workers may start."""
        with self.db.transaction(durable=True) as db:
            db.execute("UPDATE jobs SET state = 'running', updated_at = ? WHERE id = ?",
                       (now, job_id))

    # --- claims -----------------------------------------------------------------------

    def _job_filter(self, job: Optional[str]) -> Tuple[str, Tuple[Any, ...]]:
        return (" AND j.name = ?", (job,)) if job is not None else ("", ())

    def claim_create(self, worker: str, now: float, lease: float, job: Optional[str],
                     max_in_flight: Optional[int]) -> Optional[Tuple[Any, ...]]:
        """A batch to create: ``(job_id, job name, pass, index, count, intent_at)``, leased
        to ``worker``; None if there is none, or none fits under ``max_in_flight``.

        The store's worker jobs have one create under way at a time: a create whose answer
        never came is found again by its request count and time, which only names it while
        no other batch is being made from this store. A create that may have been sent
        (``intent_at`` set, no batch id) is resolved before any other is sent."""
        where, params = self._job_filter(job)
        with self.db.claim_transaction() as db:
            row = db.execute(
                "SELECT b.job_id, j.name, b.pass, b.idx, b.request_count, b.intent_at, "
                "j.options FROM batches b JOIN jobs j ON j.id = b.job_id "
                "WHERE j.mode = 'workers' AND j.state = 'running' AND b.batch_id IS NULL "
                "AND (b.lease_until IS NULL OR b.lease_until < ?) "
                "AND (b.next_check_at IS NULL OR b.next_check_at <= ?) "
                "AND NOT EXISTS (SELECT 1 FROM batches o WHERE o.job_id IN "
                f"({_WORKER_JOBS}) AND o.batch_id IS NULL AND {_CREATING.format(o='o')} "
                "AND NOT (o.job_id = b.job_id AND o.pass = b.pass AND o.idx = b.idx))" + where +
                " ORDER BY b.job_id, b.intent_at DESC, b.pass, b.idx LIMIT 1"
                + self.db.claim_suffix("b", skip=True), (now, now, now, *params)).fetchone()
            if row is None:
                return None
            job_id, count = row[0], int(row[4])
            # the running worker jobs' rows serialize the rest among workers
            db.execute(f"SELECT id FROM jobs WHERE id IN ({_WORKER_JOBS}) ORDER BY id"
                       + self.db.claim_suffix()).fetchall()
            busy = db.execute(  # claimed by another worker while this one looked
                f"SELECT count(*) FROM batches o WHERE o.job_id IN ({_WORKER_JOBS}) "
                f"AND o.batch_id IS NULL AND {_CREATING.format(o='o')} "
                "AND NOT (o.job_id = ? AND o.pass = ? AND o.idx = ?)",
                (now, job_id, row[2], row[3])).fetchone()[0]
            if busy:
                return None
            limit = max_in_flight
            if limit is None:
                limit = json.loads(row[6]).get("max_in_flight")
            if limit:
                flying = int(db.execute(  # sent, or being sent, and not ended
                    "SELECT coalesce(sum(request_count), 0) FROM batches WHERE job_id = ? "
                    "AND (intent_at > 0 OR lease_until >= ?) AND results_done = 0 "
                    "AND (status IS NULL OR status != 'ended') AND NOT (pass = ? AND idx = ?)",
                    (job_id, now, row[2], row[3])).fetchone()[0])
                if flying and flying + count > int(limit):
                    return None
            db.execute("UPDATE batches SET lease_owner = ?, lease_until = ? WHERE job_id = ? "
                       "AND pass = ? AND idx = ?", (worker, now + lease, job_id, row[2], row[3]))
            return (job_id, row[1], row[2], row[3], count, float(row[5]))

    def record_intent(self, job_id: int, pass_number: int, index: int, worker: str,
                      now: float) -> bool:
        """Durably, right before the create is sent; False if the lease has run out."""
        with self.db.transaction(durable=True) as db:
            cursor = db.execute(
                "UPDATE batches SET intent_at = ? WHERE job_id = ? AND pass = ? AND idx = ? "
                "AND lease_owner = ? AND lease_until >= ? AND batch_id IS NULL",
                (now, job_id, pass_number, index, worker, now))
            return bool(cursor.rowcount)

    def set_batch_id(self, job_id: int, pass_number: int, index: int, batch_id: str) -> bool:
        """Record the batch made for a batch of the job, unless one is recorded already, or
        this batch is recorded for another part of the job (two parts never share one)."""
        with self.db.transaction(durable=True) as db:
            cursor = db.execute(
                "UPDATE batches SET batch_id = ? WHERE job_id = ? AND pass = ? AND idx = ? "
                "AND (batch_id IS NULL OR batch_id = ?) AND NOT EXISTS (SELECT 1 FROM "
                "batches o WHERE o.batch_id = ? AND NOT (o.job_id = ? AND o.pass = ? "
                "AND o.idx = ?))",
                (batch_id, job_id, pass_number, index, batch_id, batch_id, job_id,
                 pass_number, index))
            return bool(cursor.rowcount)

    def disown(self, worker: str, job_id: int, pass_number: int, index: int, batch_id: str,
               now: float) -> None:
        """A batch taken for a lost create holds none of its requests: it was another's.
        Never taken again; the create is looked for once more (its intent stays)."""
        with self.db.transaction(durable=True) as db:
            db.execute("INSERT INTO foreign_batches (batch_id, job_id, noted_at) VALUES "
                       "(?, ?, ?) ON CONFLICT DO NOTHING", (batch_id, job_id, now))
            db.execute("UPDATE batches SET batch_id = NULL, status = NULL, counts = NULL, "
                       "created_at = NULL, expires_at = NULL, ended_at = NULL, "
                       "results_done = 0, lease_owner = NULL, lease_until = NULL, "
                       "next_check_at = ? WHERE job_id = ? AND pass = ? AND idx = ? "
                       "AND batch_id = ? AND lease_owner = ?",
                       (now, job_id, pass_number, index, batch_id, worker))

    def requeue(self, worker: str, job_id: int, pass_number: int, index: int, *,
                after: float) -> None:
        """The create certainly made nothing (refused, queue full): queued again, not
        before ``after``. Only by the worker holding the batch: one whose lease ran out
        meanwhile changes nothing."""
        with self.db.transaction(durable=True) as db:
            db.execute("UPDATE batches SET intent_at = ?, lease_owner = NULL, lease_until = NULL, "
                       "next_check_at = ? WHERE job_id = ? AND pass = ? AND idx = ? "
                       "AND batch_id IS NULL AND lease_owner = ?",
                       (QUEUED, after, job_id, pass_number, index, worker))

    def release(self, worker: str, job_id: int, pass_number: int, index: int, *,
                next_check_at: Optional[float] = None) -> None:
        """``worker`` lets the batch go (to be looked at again at ``next_check_at``); a
        worker whose lease ran out meanwhile changes nothing."""
        with self.db.transaction() as db:
            db.execute("UPDATE batches SET lease_owner = NULL, lease_until = NULL, "
                       "next_check_at = ? WHERE job_id = ? AND pass = ? AND idx = ? "
                       "AND lease_owner = ?", (next_check_at, job_id, pass_number, index, worker))

    def claim_check(self, worker: str, now: float, lease: float, job: Optional[str]
                    ) -> Optional[Tuple[Any, ...]]:
        """A created batch due for a look: ``(job_id, job name, pass, index, batch_id,
        count)``, leased to ``worker``."""
        where, params = self._job_filter(job)
        with self.db.claim_transaction() as db:
            row = db.execute(
                "SELECT b.job_id, j.name, b.pass, b.idx, b.batch_id, b.request_count "
                "FROM batches b JOIN jobs j ON j.id = b.job_id "
                "WHERE j.mode = 'workers' AND j.state IN ('running', 'failed') "
                "AND b.batch_id IS NOT NULL "  # a failed job's batches are paid: collected
                "AND b.results_done = 0 AND (b.lease_until IS NULL OR b.lease_until < ?) "
                "AND (b.next_check_at IS NULL OR b.next_check_at <= ?)" + where +
                " ORDER BY b.next_check_at, b.job_id, b.pass, b.idx LIMIT 1"
                + self.db.claim_suffix("b", skip=True), (now, now, *params)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE batches SET lease_owner = ?, lease_until = ? WHERE job_id = ? "
                       "AND pass = ? AND idx = ?", (worker, now + lease, row[0], row[2], row[3]))
            return tuple(row)

    def next_due(self, job: Optional[str]) -> Optional[float]:
        """When the next batch becomes due for a worker (None: nothing left to do)."""
        where, params = self._job_filter(job)
        row = self.db.execute(
            "SELECT min(CASE WHEN b.lease_until IS NOT NULL AND "
            "b.lease_until > coalesce(b.next_check_at, 0) THEN b.lease_until "
            "ELSE coalesce(b.next_check_at, 0) END) FROM batches b JOIN jobs j "
            "ON j.id = b.job_id WHERE j.mode = 'workers' AND b.results_done = 0 "
            "AND (j.state = 'running' OR (j.state = 'failed' AND b.batch_id IS NOT NULL))"
            + where, params).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def unfinished_jobs(self, job: Optional[str]) -> List[Tuple[int, str]]:
        """Jobs workers still have work on: running, being enqueued now (a job whose
        enqueue was interrupted has none until it is enqueued again), or failed with
        batches made and not yet collected (paid for: their results are kept)."""
        where, params = self._job_filter(job)
        rows = self.db.execute(
            "SELECT j.id, j.name, j.state FROM jobs j WHERE j.mode = 'workers' "
            "AND (j.state IN ('queued', 'running') OR (j.state = 'failed' AND EXISTS ("
            "SELECT 1 FROM batches b WHERE b.job_id = j.id AND b.batch_id IS NOT NULL "
            "AND b.results_done = 0)))" + where, params).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows
                if r[2] != "queued" or self.being_enqueued(str(r[1]))]

    def being_enqueued(self, name: str) -> bool:
        from ._lock import JobLock

        lock = JobLock(self.db, name, store_path=self.db.name)
        owner = lock.owner()
        return owner is not None and lock.is_live(owner)

    def job_state(self, name: str) -> Optional[str]:
        row = self.db.execute("SELECT state FROM jobs WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def all_collected(self, job_id: int) -> bool:
        row = self.db.execute(
            "SELECT count(*) FROM batches WHERE job_id = ? AND results_done = 0",
            (job_id,)).fetchone()
        return int(row[0]) == 0

    def give_up(self, worker: str, job_id: int, pass_number: int, index: int, now: float,
                why: str) -> None:
        """A batch that can never be collected (gone from the service): not looked at
        again, and its job failed with the reason."""
        with self.db.transaction(durable=True) as db:
            db.execute("UPDATE batches SET results_done = 1, status = 'gone', "
                       "lease_owner = NULL, lease_until = NULL WHERE job_id = ? AND pass = ? "
                       "AND idx = ? AND lease_owner = ?", (job_id, pass_number, index, worker))
        self.fail_job(job_id, now, why)

    def fail_job(self, job_id: int, now: float, why: str) -> None:
        with self.db.transaction(durable=True) as db:
            db.execute("UPDATE jobs SET state = 'failed', updated_at = ?, ended_at = ?, "
                       "summary = ? WHERE id = ?", (now, now, dumps({"error": why}), job_id))

    # --- workers ----------------------------------------------------------------------

    def register_worker(self, worker: str, host: str, pid: int, job: Optional[str],
                        now: float) -> None:
        with self.db.transaction() as db:
            db.execute("INSERT INTO workers (id, host, pid, job, started_at, heartbeat_at, "
                       "state) VALUES (?, ?, ?, ?, ?, ?, 'working')",
                       (worker, host, pid, job, now, now))

    def heartbeat(self, worker: str, now: float, lease: float) -> None:
        """The worker is alive: its row, and every lease it holds, renewed."""
        with self.db.transaction() as db:
            db.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (now, worker))
            db.execute("UPDATE batches SET lease_until = ? WHERE lease_owner = ? "
                       "AND lease_until >= ?", (now + lease, worker, now))

    def worker_done_batch(self, worker: str) -> None:
        self.db.execute("UPDATE workers SET batches_done = batches_done + 1 WHERE id = ?",
                        (worker,))

    def stop_worker(self, worker: str, now: float) -> None:
        with self.db.transaction() as db:
            db.execute("UPDATE workers SET state = 'stopped', heartbeat_at = ? WHERE id = ?",
                       (now, worker))
            db.execute("UPDATE batches SET lease_owner = NULL, lease_until = NULL "
                       "WHERE lease_owner = ?", (worker,))

    def workers(self) -> List[Dict[str, Any]]:
        """Every worker the store has seen, with the leases each holds now."""
        held: Dict[str, List[str]] = {}
        for owner, name, pass_number, index, batch_id in self.db.execute(
                "SELECT b.lease_owner, j.name, b.pass, b.idx, b.batch_id FROM batches b "
                "JOIN jobs j ON j.id = b.job_id WHERE b.lease_owner IS NOT NULL"):
            held.setdefault(owner, []).append(
                f"{name} pass {pass_number} batch {index}" + (f" ({batch_id})" if batch_id
                                                              else " (creating)"))
        return [{"id": r[0], "host": r[1], "pid": r[2], "job": r[3], "started_at": r[4],
                 "heartbeat_at": r[5], "state": r[6], "batches_done": r[7],
                 "leases": held.get(r[0], [])}
                for r in self.db.execute(
                    "SELECT id, host, pid, job, started_at, heartbeat_at, state, batches_done "
                    "FROM workers ORDER BY started_at")]
