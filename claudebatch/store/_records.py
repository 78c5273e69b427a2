"""Every read and write of the store's tables, in one place.

Written once for every backend (:class:`~claudebatch.store.Database`): ``?`` marks
and the SQL SQLite and PostgreSQL both speak. Callers wrap calls in ``db.guard()``.
Writes that must survive a power cut (an intent before its create, a batch id after
it) are ``durable``; results commit with the backend's default, which survives a
killed process.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from claudebatch import MessageBatch, Request, _json

from ._database import Database, answer_key_id
from ._errors import StoreError
from ._fingerprint import Fingerprint


def dumps(value: Any) -> str:
    """A column's JSON; a value JSON has no form for is kept as its text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def params_text(params: Dict[str, Any]) -> str:
    """A request's params as the requests table keeps them: what ``dumps`` gives, by
    orjson when installed (params are JSON as validated)."""
    return _json.dumps(params).decode("utf-8")


_ID_START = b'{"custom_id":"'
_PARAMS_AT = b'","params":'


def split_request(data: bytes) -> Tuple[str, str]:
    """``(custom_id, params JSON)`` of a request's JSON as a body carries it
    (``PendingBatch.observe(raw=True)``: ``{"custom_id":...,"params":{...}}``): cut
    rather than parsed and encoded again, when its custom_id holds nothing escaped (the
    service's custom_ids never do); parsed otherwise."""
    if data.startswith(_ID_START) and data.endswith(b"}"):
        end = data.find(_PARAMS_AT, len(_ID_START))
        if end > 0:
            custom_id = data[len(_ID_START):end]
            if b"\\" not in custom_id and b'"' not in custom_id:
                return (custom_id.decode("utf-8"),
                        data[end + len(_PARAMS_AT):-1].decode("utf-8"))
    value = _json.loads(data)
    return str(value["custom_id"]), params_text(value["params"])


#: The batch index of requests answered without a batch (reused, duplicates).
HELD_INDEX = -1

#: An answer's line: its own, or (NULL) that of the result it names (schema 4 on).
_ANSWER_LINE = "coalesce(a.line, r.line)"
_ANSWER_RESULT = ("LEFT JOIN results r ON r.job_id = a.job_id AND r.custom_id = a.custom_id "
                  "AND r.pass = a.pass")


@dataclass
class Pending:
    """What a run adds beside its result rows: custom_ids answered without a batch, and
    answers it bought ``(key, line, job, custom_id, batch_id, created_at)``, stamped as
    they are committed."""

    held: List[str] = field(default_factory=list)
    answers: List[Tuple[str, bytes, str, str, str, Optional[float]]] = field(
        default_factory=list)
    #: The clock answers are stamped with as they are committed.
    clock: Callable[[], float] = time.time

    def __bool__(self) -> bool:
        return bool(self.held or self.answers)

    def clear(self) -> None:
        self.held, self.answers = [], []


def _ts(value: Any) -> Optional[float]:
    return value.timestamp() if value is not None else None


@dataclass
class JobRow:
    id: int
    name: str
    fingerprint: str
    input: Fingerprint
    options: Dict[str, Any]
    output: Optional[str]
    state: str
    total_requests: int
    runs: int
    created_at: float
    updated_at: float
    ended_at: Optional[float]
    counts: Optional[Dict[str, int]]
    summary: Optional[Dict[str, Any]]
    reuse_horizon: Optional[float] = None
    mode: str = "run"  # run: one process runs it; workers: enqueued for workers


@dataclass
class BatchRow:
    pass_number: int
    index: int
    batch_id: Optional[str]
    request_count: int
    intent_at: float
    status: Optional[str]
    counts: Dict[str, int] = field(default_factory=dict)
    created_at: Optional[float] = None
    expires_at: Optional[float] = None
    ended_at: Optional[float] = None
    results_done: bool = False
    results_stored: int = 0


#: An intent recorded again replaces everything known of the batch's earlier attempt.
_FRESH_BATCH = ("batch_id = NULL, request_count = excluded.request_count, "
                "intent_at = excluded.intent_at, status = NULL, counts = NULL, created_at = NULL, "
                "expires_at = NULL, ended_at = NULL, results_done = 0")

_JOB_COLUMNS = ("id, name, fingerprint, input, options, output, state, total_requests, runs, "
                "created_at, updated_at, ended_at, counts, summary, reuse_horizon, mode")


def _job(row: Sequence[Any]) -> JobRow:
    return JobRow(
        id=row[0], name=row[1], fingerprint=row[2], input=Fingerprint.from_json(row[3]),
        options=json.loads(row[4]), output=row[5], state=row[6], total_requests=row[7],
        runs=row[8], created_at=row[9], updated_at=row[10], ended_at=row[11],
        counts=json.loads(row[12]) if row[12] else None,
        summary=json.loads(row[13]) if row[13] else None, reuse_horizon=row[14],
        mode=row[15])


#: custom_ids looked up per statement (under every backend's limit on parameters).
LOOKUP_IDS = 500


_IN_LOOKUP = "custom_id IN (" + ",".join("?" * LOOKUP_IDS) + ")"
_COUNT_SENT = f"SELECT count(*) FROM requests WHERE job_id = ? AND pass = ? AND {_IN_LOOKUP}"
_SELECT_SENT = f"SELECT custom_id FROM requests WHERE job_id = ? AND pass = ? AND {_IN_LOOKUP}"


def _sent_ids(conn: Database, job_id: int, pass_number: int, ids: Set[str]) -> Set[str]:
    """Which of ``ids`` are requests of the job in that pass. Each statement carries
    exactly ``LOOKUP_IDS`` marks (the last chunk repeats an id), so one cached statement
    serves every chunk; a count answers the usual case (all of them) without rows."""
    wanted = list(ids)
    found: Set[str] = set()
    for start in range(0, len(wanted), LOOKUP_IDS):
        chunk = wanted[start:start + LOOKUP_IDS]
        size = len(chunk)
        chunk += [chunk[-1]] * (LOOKUP_IDS - size)
        params = (job_id, pass_number, *chunk)
        if conn.execute(_COUNT_SENT, params).fetchone()[0] == size:  # custom_ids are unique
            found.update(chunk)
        else:
            found.update(row[0] for row in conn.execute(_SELECT_SENT, params))
    return found


class Records:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn = db  # the statements below read as they would on a connection
        self.transaction = db.transaction

    # --- jobs -----------------------------------------------------------------------

    def job(self, name: str) -> Optional[JobRow]:
        row = self.conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE name = ?",
                                (name,)).fetchone()
        return _job(row) if row else None

    def unfinished_job_writing(self, output: str, server: str) -> Optional[str]:
        """The latest job not done whose latest run wrote to ``output`` through ``server``
        (a job recorded before the server was, through any)."""
        for name, options in self.conn.execute(
                "SELECT name, options FROM jobs WHERE output = ? AND state != 'done' "
                "ORDER BY updated_at DESC, id DESC", (output,)):
            if json.loads(options).get("server", server) == server:
                return str(name)
        return None

    def jobs(self) -> List[JobRow]:
        return [_job(r) for r in self.conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at, id")]

    def create_job(self, name: str, fingerprint: Fingerprint, options: Dict[str, Any],
                   output: str, now: float, reuse_horizon: Optional[float] = None) -> int:
        """``reuse_horizon``: when the job's first run looked up answers to reuse (a
        resumed run reuses only answers kept before it, so it decides the same)."""
        with self.transaction(durable=True) as conn:
            cursor = conn.execute(
                "INSERT INTO jobs (name, fingerprint, input, options, output, state, "
                "total_requests, created_at, updated_at, reuse_horizon) VALUES (?, ?, ?, ?, "
                "?, 'running', ?, ?, ?, ?) RETURNING id",
                (name, fingerprint.digest, fingerprint.to_json(), dumps(options), output,
                 fingerprint.total, now, now, reuse_horizon))
            return int(cursor.fetchone()[0])

    def restart_job(self, job_id: int, fingerprint: Fingerprint, options: Dict[str, Any],
                    output: str, now: float, reuse_horizon: Optional[float] = None) -> None:
        """A job that sent nothing starts again as made now (its input, its options)."""
        with self.transaction(durable=True) as conn:
            self._detach_answers(conn, job_id)
            for table in ("results", "requests", "batches", "passes"):
                conn.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            conn.execute(
                "UPDATE jobs SET fingerprint = ?, input = ?, options = ?, output = ?, "
                "state = 'running', total_requests = ?, runs = runs + 1, updated_at = ?, "
                "ended_at = NULL, reuse_horizon = ? WHERE id = ?",
                (fingerprint.digest, fingerprint.to_json(), dumps(options), output,
                 fingerprint.total, now, reuse_horizon, job_id))

    def start_run(self, job_id: int, output: str, now: float) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET state = 'running', output = ?, runs = runs + 1, "
                         "updated_at = ?, ended_at = NULL WHERE id = ?", (output, now, job_id))

    def finish_job(self, job_id: int, now: float, counts: Dict[str, int],
                   summary: Optional[Dict[str, Any]]) -> None:
        with self.transaction(durable=True) as conn:
            conn.execute("UPDATE jobs SET state = 'done', updated_at = ?, ended_at = ?, "
                         "counts = ?, summary = ? WHERE id = ?",
                         (now, now, dumps(counts), dumps(summary) if summary else None,
                          job_id))

    def note_cost(self, job_id: int, so_far: str) -> None:
        """A running job's cost so far, in its summary until the job's end replaces it."""
        self.conn.execute("UPDATE jobs SET summary = ? WHERE id = ? AND state != 'done'",
                          (dumps({"cost": {"so_far": so_far}}), job_id))

    def touch(self, job_id: int, now: float) -> None:
        self.conn.execute("UPDATE jobs SET updated_at = ? WHERE id = ?", (now, job_id))

    def forget(self, job_id: int, name: str) -> None:
        with self.transaction() as conn:
            self._detach_answers(conn, job_id)
            for table in ("results", "requests", "batches", "passes"):
                conn.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            conn.execute("DELETE FROM locks WHERE job = ?", (name,))

    @staticmethod
    def _detach_answers(conn: Database, job_id: int) -> None:
        """Before a job's results go: the answers it bought that read their line from them
        get the line back (answers outlive their job: only pruning drops them)."""
        conn.execute(
            "UPDATE answers SET line = (SELECT r.line FROM results r WHERE r.job_id = "
            "answers.job_id AND r.custom_id = answers.custom_id AND r.pass = answers.pass), "
            "job_id = NULL, pass = NULL WHERE job_id = ?", (job_id,))

    # --- batches --------------------------------------------------------------------

    def record_intent(self, job_id: int, pass_number: int, index: int, count: int,
                      intent_at: float, requests: Optional[Iterable[Request]] = None) -> None:
        """Before a create is sent: what is about to be sent, durably.

        ``requests`` None: the batch's rows were added already (``add_requests``)."""
        with self.transaction(durable=True) as conn:
            if requests is not None:
                self._replace_requests(conn, job_id, pass_number, index, requests)
            conn.execute(
                "INSERT INTO batches (job_id, pass, idx, batch_id, request_count, intent_at) "
                "VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (job_id, pass, idx) DO UPDATE SET "
                f"{_FRESH_BATCH}",
                (job_id, pass_number, index, count, intent_at))

    def incomplete_batches(self, job_id: int, pass_number: int) -> Set[int]:
        """The batches of a pass whose intent counts more requests than are recorded."""
        return {int(r[0]) for r in self.conn.execute(
            "SELECT b.idx FROM batches b WHERE b.job_id = ? AND b.pass = ? AND "
            "b.request_count > (SELECT count(*) FROM requests q WHERE q.job_id = b.job_id "
            "AND q.pass = b.pass AND q.idx = b.idx)", (job_id, pass_number))}

    def replace_requests(self, job_id: int, pass_number: int, index: int,
                         requests: Iterable[Request]) -> None:
        """A batch's rows, all of them again."""
        with self.transaction() as conn:
            self._replace_requests(conn, job_id, pass_number, index, requests)

    def _replace_requests(self, conn: Database, job_id: int, pass_number: int, index: int,
                          requests: Iterable[Request]) -> None:
        self._drop_requests(conn, job_id, pass_number, index)
        self._insert_requests(conn, job_id, pass_number, index,
                              ((pos, r.custom_id, params_text(r.params))
                               for pos, r in enumerate(requests)))

    def add_requests(self, job_id: int, pass_number: int, index: int,
                     rows: Sequence[Tuple[int, str, str]], *, first: bool) -> None:
        """Rows ``(position, custom_id, params JSON)`` of a batch being written; ``first``
        drops what an earlier attempt at the batch recorded."""
        with self.transaction() as conn:
            if first:
                self._drop_requests(conn, job_id, pass_number, index)
            self._insert_requests(conn, job_id, pass_number, index, rows)

    def add_request_pieces(self, job_id: int, pass_number: int, index: int, start: int,
                           pieces: Sequence[bytes], *, first: bool) -> None:
        """Rows of a batch being written, from each request's JSON as the body carries it
        (``{"custom_id":...,"params":{...}}``), at positions from ``start``; ``first``
        drops what an earlier attempt at the batch recorded."""
        with self.transaction() as conn:
            if first:
                self._drop_requests(conn, job_id, pass_number, index)
            if pieces and not self._insert_json_requests(conn, job_id, pass_number, index,
                                                         start, pieces):
                self._insert_requests(conn, job_id, pass_number, index,
                                      ((start + i, *split_request(piece))
                                       for i, piece in enumerate(pieces)))

    def _insert_json_requests(self, conn: Database, job_id: int, pass_number: int, index: int,
                              start: int, pieces: Sequence[bytes]) -> bool:
        """The rows cut out of one JSON array by the backend's SQL, when it can; False:
        nothing was inserted (no such SQL, or JSON it could not read: parsed in Python)."""
        sql = self.db.requests_from_json
        if sql is None:
            return False
        text = (b"[" + b",".join(pieces) + b"]").decode("utf-8")
        try:
            made = conn.execute(sql, (job_id, pass_number, index, start, text)).rowcount
        except Exception as exc:
            if "JSON" not in str(exc):  # "malformed JSON": the statement undid itself
                raise
            return False
        if made != len(pieces):
            raise StoreError(f"the store {self.db.name} recorded {made} of {len(pieces)} "
                             f"requests of pass {pass_number} batch {index}")
        return True

    @staticmethod
    def _drop_requests(conn: Database, job_id: int, pass_number: int, index: int) -> None:
        """What a batch had recorded (it is recorded again)."""
        conn.execute("DELETE FROM requests WHERE job_id = ? AND pass = ? AND idx = ?",
                     (job_id, pass_number, index))

    @staticmethod
    def _insert_requests(conn: Database, job_id: int, pass_number: int, index: int,
                         rows: Iterable[Tuple[int, str, str]]) -> None:
        conn.executemany(
            "INSERT INTO requests (job_id, pass, idx, pos, custom_id, params) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((job_id, pass_number, index, pos, custom_id, params)
             for pos, custom_id, params in rows))

    def drop_intent(self, job_id: int, pass_number: int, index: int) -> None:
        """The create of an intent certainly made nothing: forget it (never adopted)."""
        with self.transaction(durable=True) as conn:
            conn.execute("DELETE FROM batches WHERE job_id = ? AND pass = ? AND idx = ? "
                         "AND batch_id IS NULL", (job_id, pass_number, index))

    def record_batch(self, job_id: int, pass_number: int, index: int,
                     batch: MessageBatch) -> None:
        """Once the service has accepted the batch (or it was found after a crash)."""
        with self.transaction(durable=True) as conn:
            taken = conn.execute(
                "SELECT pass, idx FROM batches WHERE job_id = ? AND batch_id = ? "
                "AND NOT (pass = ? AND idx = ?)",
                (job_id, batch.id, pass_number, index)).fetchone()
            if taken is not None:
                raise StoreError(
                    f"batch {batch.id} is already recorded as pass {taken[0]} batch {taken[1]} "
                    f"of this job; refusing to record it for pass {pass_number} batch {index} "
                    "too (two parts of a job must never share one batch)")
            conn.execute(
                "UPDATE batches SET batch_id = ? WHERE job_id = ? AND pass = ? AND idx = ?",
                (batch.id, job_id, pass_number, index))
            self._update_batch(conn, job_id, batch)

    def update_batch(self, job_id: int, batch: MessageBatch) -> None:
        with self.transaction() as conn:
            self._update_batch(conn, job_id, batch)

    @staticmethod
    def _update_batch(conn: Database, job_id: int, batch: MessageBatch, *,
                      results_done: bool = False) -> None:
        counts = batch.request_counts
        conn.execute(
            "UPDATE batches SET status = ?, counts = ?, created_at = ?, expires_at = ?, "
            "ended_at = ?, results_done = CASE WHEN ? = 1 THEN 1 ELSE results_done END "
            "WHERE job_id = ? AND batch_id = ?",
            (batch.processing_status,
             dumps({"processing": counts.processing, "succeeded": counts.succeeded,
                    "errored": counts.errored, "canceled": counts.canceled,
                    "expired": counts.expired}),
             _ts(batch.created_at), _ts(batch.expires_at), _ts(batch.ended_at),
             int(results_done), job_id, batch.id))

    def batches(self, job_id: int) -> List[BatchRow]:
        stored = {(p, i): n for p, i, n in self.conn.execute(
            "SELECT q.pass, q.idx, count(*) FROM results r JOIN requests q "
            "ON q.job_id = r.job_id AND q.pass = r.pass AND q.custom_id = r.custom_id "
            "WHERE r.job_id = ? GROUP BY q.pass, q.idx", (job_id,))}
        rows = []
        for r in self.conn.execute(
                "SELECT pass, idx, batch_id, request_count, intent_at, status, counts, "
                "created_at, expires_at, ended_at, results_done FROM batches "
                "WHERE job_id = ? ORDER BY pass, idx", (job_id,)):
            rows.append(BatchRow(
                pass_number=r[0], index=r[1], batch_id=r[2], request_count=r[3],
                intent_at=r[4], status=r[5], counts=json.loads(r[6]) if r[6] else {},
                created_at=r[7], expires_at=r[8], ended_at=r[9], results_done=bool(r[10]),
                results_stored=int(stored.get((r[0], r[1]), 0))))
        return rows

    def known_batch_ids(self) -> Set[str]:
        """Batches of this store's jobs, and those found to be nobody's here (never adopted)."""
        return {r[0] for r in self.conn.execute(
            "SELECT batch_id FROM batches WHERE batch_id IS NOT NULL "
            "UNION SELECT batch_id FROM foreign_batches")}

    def undownloaded(self) -> List[Tuple[str, str, float]]:
        """``(job, batch id, created_at)`` of batches whose results were not all stored."""
        return [(r[0], r[1], r[2]) for r in self.conn.execute(
            "SELECT j.name, b.batch_id, b.created_at FROM batches b JOIN jobs j "
            "ON j.id = b.job_id WHERE b.batch_id IS NOT NULL AND b.results_done = 0 "
            "AND b.created_at IS NOT NULL ORDER BY b.created_at")]

    def first_pass_ids(self, job_id: int) -> List[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT custom_id FROM requests WHERE job_id = ? AND pass = 1 AND idx >= 0 "
            "ORDER BY idx, pos",
            (job_id,))]

    # --- results --------------------------------------------------------------------

    def insert_results(self, job_id: int, pass_number: int,
                       rows: Sequence[Tuple[str, str, bytes]],
                       pending: Optional[Pending] = None) -> None:
        if not rows and not pending:
            return
        with self.transaction() as conn:
            self._insert_held(conn, job_id, pass_number, pending)
            known = self._insert_results(conn, job_id, pass_number, rows)
            self._insert_answers(conn, job_id, pass_number, pending, rows, known)

    @staticmethod
    def _insert_held(conn: Database, job_id: int, pass_number: int,
                     pending: Optional[Pending]) -> None:
        """Requests answered without a batch (reused, duplicates), so their results are
        the job's (recorded before the results, which are checked against them)."""
        if pending is None or not pending.held:
            return
        conn.executemany(
            "INSERT INTO requests (job_id, pass, idx, pos, custom_id, params) "
            f"VALUES (?, ?, {HELD_INDEX}, (SELECT coalesce(max(pos), -1) + 1 FROM requests "
            f"WHERE job_id = ? AND pass = ? AND idx = {HELD_INDEX}), ?, '{{}}') "
            "ON CONFLICT DO NOTHING",
            [(job_id, pass_number, job_id, pass_number, custom_id)
             for custom_id in pending.held])
        pending.held = []

    @staticmethod
    def _insert_answers(conn: Database, job_id: int, pass_number: int,
                        pending: Optional[Pending], rows: Sequence[Tuple[str, str, bytes]],
                        known: Set[str]) -> None:
        """The answers this job bought, kept for reuse (the first kept of a key stays: a
        resumed job must find what it found before).

        An answer whose line is the one just stored as its result's (no plugin added
        fields) keeps no line of its own: it names that result, which holds the line, so
        each answer is written once rather than twice.
        """
        if pending is None or not pending.answers:
            return
        answers, pending.answers = pending.answers, []
        wanted = {answer[3] for answer in answers} & known
        stored = {custom_id: line for custom_id, _, line in rows if custom_id in wanted}
        # stamped as committed: a job planning before this commit never saw them, so
        # they must fall after its horizon (kept-at times would race a slow commit)
        now = pending.clock()
        values: List[Tuple[Any, ...]] = []
        for key, line, job, custom_id, batch_id, created in answers:
            if stored.get(custom_id) == line:
                values.append((answer_key_id(key), key, None, job, custom_id, batch_id,
                               created, now, job_id, pass_number))
            else:
                values.append((answer_key_id(key), key, line, job, custom_id, batch_id,
                               created, now, None, None))
        conn.executemany(
            "INSERT INTO answers (key_id, key, line, job, custom_id, batch_id, "
            "batch_created_at, stored_at, job_id, pass) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING", values)

    @staticmethod
    def _insert_results(conn: Database, job_id: int, pass_number: int,
                        rows: Sequence[Tuple[str, str, bytes]]) -> Set[str]:
        """Store the rows of requests this job sent in that pass; their custom_ids.

        A line from anywhere else (an output replaced under the job) is never stored as
        the job's. The requests are looked up a few hundred per statement and the rows
        inserted with a plain ``VALUES`` upsert: a per-row ``INSERT ... SELECT ... WHERE
        EXISTS`` costs SQLite about three times the CPU of the insert itself.
        """
        if not rows:
            return set()
        known = _sent_ids(conn, job_id, pass_number, {custom_id for custom_id, _, _ in rows})
        conn.executemany(
            "INSERT INTO results (job_id, custom_id, pass, type, line) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id, custom_id, pass) DO UPDATE SET type = excluded.type, "
            "line = excluded.line",
            [(job_id, custom_id, pass_number, kind, line) for custom_id, kind, line in rows
             if custom_id in known])
        return known

    def end_batch(self, job_id: int, pass_number: int, rows: Sequence[Tuple[str, str, bytes]],
                  pending: Pending, batch: MessageBatch, *, complete: bool) -> None:
        """The last results of a batch and its end, in one transaction."""
        with self.transaction() as conn:
            self._insert_held(conn, job_id, pass_number, pending)
            known = self._insert_results(conn, job_id, pass_number, rows)
            self._insert_answers(conn, job_id, pass_number, pending, rows, known)
            self._update_batch(conn, job_id, batch, results_done=complete)

    def latest_lines(self, job_id: int, *, finished_only: bool) -> Iterator[bytes]:
        """Each custom_id's result from its latest pass, pass by pass in stored order.

        ``finished_only``: only results of batches whose results were all stored.
        """
        join = ("JOIN requests q ON q.job_id = r.job_id AND q.pass = r.pass "
                "AND q.custom_id = r.custom_id JOIN batches b ON b.job_id = q.job_id "
                "AND b.pass = q.pass AND b.idx = q.idx AND b.results_done = 1 "
                if finished_only else "")
        later: Dict[str, int] = dict(self.conn.execute(
            f"SELECT r.custom_id, max(r.pass) FROM results r {join}"
            "WHERE r.job_id = ? AND r.pass >= 2 GROUP BY r.custom_id", (job_id,)).fetchall())
        passes = [r[0] for r in self.conn.execute(
            "SELECT DISTINCT pass FROM results WHERE job_id = ? ORDER BY pass", (job_id,))]
        for pass_number in passes:
            for custom_id, line in self.db.stream(
                    f"SELECT r.custom_id, r.line FROM results r {join}"
                    f"WHERE r.job_id = ? AND r.pass = ? ORDER BY r.{self.db.order_column}",
                    (job_id, pass_number)):
                if later.get(custom_id, pass_number) > pass_number:
                    continue
                yield bytes(line)

    def lines_of_batches(self, job_id: int, pass_number: int,
                         batch_ids: Sequence[str]) -> Iterator[bytes]:
        marks = ",".join("?" * len(batch_ids))  # a pass has few batches
        for (line,) in self.db.stream(
                "SELECT r.line FROM results r JOIN requests q ON q.job_id = r.job_id "
                "AND q.pass = r.pass AND q.custom_id = r.custom_id JOIN batches b "
                "ON b.job_id = q.job_id AND b.pass = q.pass AND b.idx = q.idx "
                f"WHERE r.job_id = ? AND r.pass = ? AND b.batch_id IN ({marks}) "
                f"ORDER BY r.{self.db.order_column}", (job_id, pass_number, *batch_ids)):
            yield bytes(line)

    def stored_results(self, job_id: int) -> Iterator[Tuple[int, str, bytes]]:
        """``(pass, custom_id, line)`` of every stored result, every pass."""
        for pass_number, custom_id, line in self.db.stream(
                "SELECT pass, custom_id, line FROM results WHERE job_id = ? "
                f"ORDER BY pass, {self.db.order_column}", (job_id,)):
            yield pass_number, custom_id, bytes(line)

    def dated_results(self, job_id: int
                      ) -> Iterator[Tuple[int, str, bytes, Optional[float]]]:
        """``(pass, custom_id, line, created_at)``: each stored result with the creation
        time of the batch that served it (None if unrecorded)."""
        for pass_number, custom_id, line, created in self.db.stream(
                "SELECT r.pass, r.custom_id, r.line, b.created_at FROM results r "
                "LEFT JOIN requests q ON q.job_id = r.job_id AND q.pass = r.pass "
                "AND q.custom_id = r.custom_id "
                "LEFT JOIN batches b ON b.job_id = q.job_id AND b.pass = q.pass "
                f"AND b.idx = q.idx WHERE r.job_id = ? ORDER BY r.pass, r.{self.db.order_column}",
                (job_id,)):
            yield pass_number, custom_id, bytes(line), created

    def latest_counts(self, job_id: int) -> Dict[str, int]:
        """Result types of each custom_id's latest stored attempt.

        A job stored in one pass holds each custom_id once: its types are counted from
        an index (job_id, pass, ...) without reading a row; only a job with later passes
        looks for each custom_id's latest."""
        low, high = self.conn.execute(
            "SELECT min(pass), max(pass) FROM results WHERE job_id = ?", (job_id,)).fetchone()
        if low is None:
            return {}
        if low == high:
            return dict(self.conn.execute(
                "SELECT type, count(*) FROM results WHERE job_id = ? AND pass = ? "
                "GROUP BY type ORDER BY type", (job_id, low)).fetchall())
        return dict(self.conn.execute(
            "SELECT type, count(*) FROM results r WHERE job_id = ? AND pass = (SELECT "
            "max(pass) FROM results r2 WHERE r2.job_id = r.job_id AND "
            "r2.custom_id = r.custom_id) GROUP BY type ORDER BY type", (job_id,)).fetchall())

    def batch_counts(self, job_id: int, pass_number: int, index: int) -> Dict[str, int]:
        return dict(self.conn.execute(
            "SELECT r.type, count(*) FROM results r JOIN requests q ON q.job_id = r.job_id "
            "AND q.pass = r.pass AND q.custom_id = r.custom_id WHERE r.job_id = ? "
            "AND q.pass = ? AND q.idx = ? GROUP BY r.type", (job_id, pass_number, index)
        ).fetchall())

    def missing_ids(self, job_id: int) -> List[str]:
        """Recorded first-pass requests with no stored result in any pass."""
        return [r[0] for r in self.conn.execute(
            "SELECT q.custom_id FROM requests q WHERE q.job_id = ? AND q.pass = 1 AND NOT "
            "EXISTS (SELECT 1 FROM results r WHERE r.job_id = q.job_id AND "
            "r.custom_id = q.custom_id) ORDER BY q.idx, q.pos", (job_id,))]

    def recorded_count(self, job_id: int) -> int:
        return int(self.conn.execute(
            "SELECT count(*) FROM requests WHERE job_id = ? AND pass = 1",
            (job_id,)).fetchone()[0])

    # --- answers kept for reuse ------------------------------------------------------

    def find_answers(self, keys: Sequence[str], horizon: float, oldest: Optional[float],
                     *, count_hits: bool) -> List[Tuple[Any, ...]]:
        """``(key, line, job, custom_id, batch_id, batch_created_at, stored_at)`` of the
        answers kept for ``keys`` before ``horizon`` (and not before ``oldest``); an
        answer without a line of its own reads it from the result it names."""
        marks = ",".join("?" * len(keys))
        wanted = set(keys)  # an id another key shares finds an answer that is not this one
        rows: List[Tuple[Any, ...]] = [row for row in self.conn.execute(
            f"SELECT a.key, {_ANSWER_LINE}, a.job, a.custom_id, a.batch_id, "
            f"a.batch_created_at, a.stored_at FROM answers a {_ANSWER_RESULT} "
            f"WHERE a.key_id IN ({marks}) AND a.stored_at < ? AND a.stored_at >= ?",
            (*map(answer_key_id, keys), horizon,
             oldest if oldest is not None else float("-inf"))).fetchall()
            if row[1] is not None and row[0] in wanted]
        if rows and count_hits:
            with self.transaction() as conn:
                conn.executemany(
                    "INSERT INTO answer_hits (key, hits, last_hit_at) VALUES (?, 1, ?) "
                    "ON CONFLICT (key) DO UPDATE SET hits = answer_hits.hits + 1, "
                    "last_hit_at = excluded.last_hit_at", [(row[0], horizon) for row in rows])
        return rows

    def answer_stats(self) -> Dict[str, Any]:
        row = self.conn.execute(
            f"SELECT count(*), coalesce(sum(length({_ANSWER_LINE})), 0), min(a.stored_at), "
            f"max(a.stored_at), count(DISTINCT a.job) FROM answers a {_ANSWER_RESULT}"
        ).fetchone()
        hits = self.conn.execute(
            "SELECT coalesce(sum(h.hits), 0), count(*), max(h.last_hit_at) FROM answer_hits h "
            "JOIN answers a ON a.key = h.key").fetchone()
        return {"answers": row[0], "bytes": row[1], "hits": hits[0], "answers_hit": hits[1],
                "oldest": row[2], "newest": row[3], "last_hit": hits[2], "jobs": row[4]}

    def prune_answers(self, before: float) -> int:
        with self.transaction() as conn:
            dropped = int(conn.execute("DELETE FROM answers WHERE stored_at < ?",
                                       (before,)).rowcount)
            conn.execute("DELETE FROM answer_hits WHERE key NOT IN (SELECT key FROM answers)")
            return dropped

    # --- resubmission passes ---------------------------------------------------------

    def decision(self, job_id: int, pass_number: int) -> Optional[List[Request]]:
        """The requests resubmitted in ``pass_number``, if that was decided; [] for none."""
        row = self.conn.execute("SELECT requests FROM passes WHERE job_id = ? AND pass = ?",
                                (job_id, pass_number)).fetchone()
        if row is None:
            return None
        return [Request(item["custom_id"], item["params"]) for item in json.loads(row[0])]

    def record_decision(self, job_id: int, pass_number: int, requests: Sequence[Request],
                        now: float) -> None:
        with self.transaction(durable=True) as conn:
            conn.execute(
                "INSERT INTO passes (job_id, pass, decided_at, requests) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (job_id, pass) DO UPDATE SET decided_at = excluded.decided_at, "
                "requests = excluded.requests",
                (job_id, pass_number, now, dumps([r.to_dict() for r in requests])))
