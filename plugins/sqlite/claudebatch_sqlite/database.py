"""The store's file: created private, checked on open, one versioned schema.

:class:`SQLiteDatabase` is the shared store layer's :class:`~claudebatch.store.Database`
over it. Every ``sqlite3`` error is turned into a :class:`~claudebatch.store.StoreError`
naming the file (``guard``), so a foreign or corrupted file never shows a raw
sqlite3 traceback.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Any, ContextManager, Iterable, Iterator, Sequence, Tuple

from claudebatch.store import Database, StoreError, StoreFileError, answer_key_id

from .checkpoint import BACKSTOP_BYTES, Checkpointer

#: ``PRAGMA user_version`` of the schema below; a newer file is refused, not guessed at.
SCHEMA_VERSION = 6
#: ``PRAGMA application_id``: "cbDB". Tells our files from other SQLite databases.
APPLICATION_ID = 0x63624442
SQLITE_HEADER = b"SQLite format 3\x00"
#: Seconds a write waits for another process's write to finish before giving up.
BUSY_TIMEOUT = 30.0
#: Result lines are ~1 kB: 16 kB pages store them about half again as fast as 4 kB ones.
PAGE_SIZE = 16384

SCHEMA = """
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,       -- sha256 over the input, its size and the split options
    input TEXT NOT NULL,             -- JSON: how the fingerprint was made (kind, digest, ...)
    options TEXT NOT NULL,           -- JSON: the job's options
    output TEXT,                     -- the output path of the latest run
    state TEXT NOT NULL,             -- running | done
    total_requests INTEGER NOT NULL,
    runs INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ended_at REAL,
    counts TEXT,                     -- JSON: result types of the last attempts, at the end
    summary TEXT,                    -- JSON: other plugins' summaries (cost) at the end
    reuse_horizon REAL               -- answers kept before this are reused (NULL: none)
);
CREATE TABLE batches (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    pass INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    batch_id TEXT,                   -- NULL: the intent is recorded, the create not confirmed
    request_count INTEGER NOT NULL,
    intent_at REAL NOT NULL,         -- wall time just before the create was sent
    status TEXT,
    counts TEXT,                     -- JSON: the service's request_counts
    created_at REAL,
    expires_at REAL,
    ended_at REAL,
    results_done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, pass, idx)
);
CREATE INDEX batches_by_id ON batches (batch_id);
CREATE TABLE requests (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    pass INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    custom_id TEXT NOT NULL,
    params TEXT NOT NULL,            -- JSON, as sent (after plugins' rewrites)
    PRIMARY KEY (job_id, pass, idx, pos)
) WITHOUT ROWID;
CREATE UNIQUE INDEX requests_by_custom_id ON requests (job_id, pass, custom_id);
CREATE TABLE results (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    custom_id TEXT NOT NULL,
    pass INTEGER NOT NULL,
    type TEXT NOT NULL,
    line BLOB NOT NULL,              -- the result line as served (JSON, no newline)
    UNIQUE (job_id, custom_id, pass)
);
CREATE TABLE passes (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    pass INTEGER NOT NULL,           -- the pass these requests were resubmitted in (>= 2)
    decided_at REAL NOT NULL,
    requests TEXT NOT NULL,          -- JSON list of {custom_id, params}, [] for none
    PRIMARY KEY (job_id, pass)
);
%s
CREATE TABLE locks (
    job TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    process_start TEXT,              -- tells a reused pid from its first owner
    token TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""

#: Version 2 adds the answers kept for reuse, and each job's reuse horizon.
ANSWERS_SCHEMA = """
CREATE TABLE answers (
    key TEXT NOT NULL UNIQUE,        -- claudebatch.reuse.answer_key of the request
    line BLOB NOT NULL,              -- the succeeded result line as served
    job TEXT NOT NULL,               -- the job and request that bought it
    custom_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,          -- the batch that served it
    batch_created_at REAL,           -- its creation (dates the price)
    stored_at REAL NOT NULL
);
CREATE INDEX answers_by_age ON answers (stored_at);
CREATE TABLE answer_hits (           -- apart from the answers: counting rewrites no answer
    key TEXT PRIMARY KEY,
    hits INTEGER NOT NULL,           -- times a later job found it (once per job)
    last_hit_at REAL NOT NULL
) WITHOUT ROWID;
"""
#: Version 3 adds what workers share a job through: leases on batches, the workers.
WORKERS_SCHEMA = """
ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'run';
ALTER TABLE batches ADD COLUMN lease_owner TEXT;
ALTER TABLE batches ADD COLUMN lease_until REAL;
ALTER TABLE batches ADD COLUMN next_check_at REAL;
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    job TEXT,                        -- the job it works on, or NULL: any
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    state TEXT NOT NULL,             -- working | stopped
    batches_done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE foreign_batches (       -- taken for a lost create, holding none of its requests
    batch_id TEXT PRIMARY KEY,
    job_id INTEGER NOT NULL,
    noted_at REAL NOT NULL
)
"""
#: Version 4 keeps each answer's line once: an answer kept with the result it came with
#: has no line of its own (NULL) but names that result (``job_id``, ``pass``; the
#: ``custom_id`` it has), which holds the line. Answers kept before stay as they were.
LINES_ONCE_SCHEMA = """
CREATE TABLE answers_v4 (
    key TEXT NOT NULL UNIQUE,        -- claudebatch.reuse.answer_key of the request
    line BLOB,                       -- the succeeded result line as served, or NULL: the
                                     -- line of the result (job_id, custom_id, pass)
    job TEXT NOT NULL,               -- the job and request that bought it
    custom_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,          -- the batch that served it
    batch_created_at REAL,           -- its creation (dates the price)
    stored_at REAL NOT NULL,
    job_id INTEGER,                  -- the job's id and pass whose result holds the line
    pass INTEGER                     -- (NULL when the answer holds it)
);
INSERT INTO answers_v4 (key, line, job, custom_id, batch_id, batch_created_at, stored_at)
    SELECT key, line, job, custom_id, batch_id, batch_created_at, stored_at FROM answers
    ORDER BY rowid;
DROP TABLE answers;
ALTER TABLE answers_v4 RENAME TO answers;
CREATE INDEX answers_by_age ON answers (stored_at);
CREATE INDEX answers_by_job ON answers (job_id) WHERE job_id IS NOT NULL
"""
#: Version 5 indexes results by pass and type: a job's counts at its end read this index
#: alone (0.4 s less at the end of a 100,000-result job than reading every row).
COUNTS_SCHEMA = "CREATE INDEX results_by_pass ON results (job_id, pass, type)"
#: Version 6 looks answers up by ``key_id`` (``claudebatch.store.answer_key_id``: 8 bytes
#: of the key as an integer), the one unique index, where the 64-character key was: each
#: commit writes every index page its random keys touch, and this index has a fifth of
#: them. An answer whose id another already has (a 1 in 2^64 chance per pair) is dropped.
#: ``key_id`` may be NULL: a process of version 5 still running (a worker not upgraded
#: yet) inserts answers as it did, by key alone; :func:`_adopt_earlier_answers` gives
#: them their id when the store is next opened (a NOT NULL failed that process's job).
KEY_ID_SCHEMA = """
CREATE TABLE answers_v6 (
    key_id INTEGER,                  -- answer_key_id(key): what an answer is looked up by
                                     -- (NULL: written by a process of version 5)
    key TEXT NOT NULL,               -- claudebatch.reuse.answer_key of the request
    line BLOB,                       -- the succeeded result line as served, or NULL: the
                                     -- line of the result (job_id, custom_id, pass)
    job TEXT NOT NULL,               -- the job and request that bought it
    custom_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,          -- the batch that served it
    batch_created_at REAL,           -- its creation (dates the price)
    stored_at REAL NOT NULL,
    job_id INTEGER,                  -- the job's id and pass whose result holds the line
    pass INTEGER                     -- (NULL when the answer holds it)
);
CREATE UNIQUE INDEX answers_by_key ON answers_v6 (key_id);
INSERT OR IGNORE INTO answers_v6 (key_id, key, line, job, custom_id, batch_id,
                                  batch_created_at, stored_at, job_id, pass)
    SELECT claudebatch_key_id(key), key, line, job, custom_id, batch_id, batch_created_at,
           stored_at, job_id, pass FROM answers ORDER BY rowid;
DROP TABLE answers;
ALTER TABLE answers_v6 RENAME TO answers;
CREATE INDEX answers_by_age ON answers (stored_at);
CREATE INDEX answers_by_job ON answers (job_id) WHERE job_id IS NOT NULL
"""
MIGRATIONS = {
    1: ["ALTER TABLE jobs ADD COLUMN reuse_horizon REAL",
        *[part for part in ANSWERS_SCHEMA.split(";\n") if part.strip()]],
    2: [part for part in WORKERS_SCHEMA.split(";\n") if part.strip()],
    3: [part for part in LINES_ONCE_SCHEMA.split(";\n") if part.strip()],
    4: [COUNTS_SCHEMA],
    5: [part for part in KEY_ID_SCHEMA.split(";\n") if part.strip()],
}
#: A new store is made as version 1 was, then brought up by the same steps as an old one.
SCHEMA = (SCHEMA % ANSWERS_SCHEMA.strip() + ";\n" + WORKERS_SCHEMA.strip() + ";\n"
          + LINES_ONCE_SCHEMA + ";\n" + COUNTS_SCHEMA + ";\n" + KEY_ID_SCHEMA)


def create_private(path: str) -> bool:
    """Create ``path`` empty with mode 0600 before SQLite opens it; False if it existed."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StoreFileError(f"cannot create the store {path}: {exc.strerror}") from None
    os.close(fd)
    return True


def check_header(path: str) -> None:
    """Refuse a file that is not SQLite at all (an empty file is a new store)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreFileError(f"cannot read the store {path}: {exc.strerror}") from None
    if head and head != SQLITE_HEADER:
        raise StoreFileError(
            f"{path} is not a claudebatch store (it is not an SQLite database); "
            "give --store / SQLiteStore() another path")


@contextlib.contextmanager
def guard(path: str) -> Iterator[None]:
    """Turn any sqlite3 error into a StoreError that names the file and what to do."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise StoreError(
                f"the store {path} stayed busy for over {BUSY_TIMEOUT:.0f} s (another "
                f"process is writing to it): {text}") from None
        if "malformed" in text or "not a database" in text or "no such" in text:
            raise StoreFileError(f"the store {path} is damaged or not a claudebatch store: "
                                 f"{text}") from None
        raise StoreError(f"the store {path} failed: {text}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreFileError(f"the store {path} is damaged or not a claudebatch store: "
                             f"{exc}") from None
    except sqlite3.Error as exc:
        raise StoreError(f"the store {path} failed: {exc}") from None


def connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed, mode 0600) and check the store; WAL mode, schema in place."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise StoreFileError(f"the store path {path} is a directory; give a file path")
    create_private(path)
    check_header(path)
    with guard(path):
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                               check_same_thread=False)
    try:
        with guard(path):
            _prepare(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: str) -> None:
    # what version 6 keys the answers it carries over by
    conn.create_function("claudebatch_key_id", 1, answer_key_id, deterministic=True)
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    if app_id == 0 and version == 0 and tables == 0:
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only takes before the first table
        with _immediate(conn):
            # another process may have initialized it while we waited for the lock
            if int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]) == 0:
                for statement in SCHEMA.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if app_id != APPLICATION_ID:
        raise StoreFileError(
            f"{path} is an SQLite database of another application, not a claudebatch store; "
            "give --store / SQLiteStore() another path")
    if version > SCHEMA_VERSION:
        raise StoreFileError(
            f"{path} was written by a newer claudebatch-sqlite (schema {version}; this one "
            f"reads up to {SCHEMA_VERSION}): upgrade claudebatch-sqlite")
    if version < 1:
        raise StoreFileError(f"{path} has no claudebatch schema (user_version {version})")
    if version < SCHEMA_VERSION:
        _migrate(conn, path)
    mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
    if mode != "wal":
        raise StoreFileError(f"the store {path} cannot use WAL mode (got {mode!r}); "
                             "put it on a local file system")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Reading the schema catches a damaged file now rather than mid-job.
    conn.execute("SELECT name, fingerprint FROM jobs LIMIT 1").fetchall()
    conn.execute("SELECT count(*) FROM locks").fetchone()
    conn.execute("SELECT key_id, key, job_id, pass FROM answers LIMIT 1").fetchall()
    _adopt_earlier_answers(conn)


def _adopt_earlier_answers(conn: sqlite3.Connection) -> None:
    """Answers a process of version 5 wrote after the upgrade (by key, without a key_id)
    get their id; one whose id is kept already goes, as that process's ``ON CONFLICT DO
    NOTHING`` would have let it (the first kept of a key stays: ids are given in the
    order the answers were written). Costs one index probe when there are none."""
    if conn.execute("SELECT 1 FROM answers WHERE key_id IS NULL LIMIT 1").fetchone() is None:
        return
    try:
        with _immediate(conn):
            conn.execute("UPDATE OR IGNORE answers SET key_id = claudebatch_key_id(key) "
                         "WHERE key_id IS NULL")
            conn.execute("DELETE FROM answers WHERE key_id IS NULL")
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc) and "read-only" not in str(exc):
            raise
        # a read-only store is read as it is: those answers are not found until then


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring an older store up to this schema, in one transaction (another process may
    be doing the same: the version is read again under the lock)."""
    try:
        with _immediate(conn):
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc) or "read-only" in str(exc):
            raise StoreFileError(f"the store {path} needs upgrading to schema "
                                 f"{SCHEMA_VERSION} but is read-only") from None
        raise


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SQLiteDatabase(Database):
    """The store in one SQLite file (WAL mode): ``BEGIN IMMEDIATE`` for a transaction,
    ``synchronous=FULL`` for a durable one; the log copied into the file by a thread of
    its own after each commit (:mod:`.checkpoint`)."""

    kind = "sqlite"
    order_column = "rowid"
    # json_extract of an object gives its JSON text as written (compact, escapes kept)
    requests_from_json = (
        "INSERT INTO requests (job_id, pass, idx, pos, custom_id, params) "
        "SELECT ?1, ?2, ?3, ?4 + key, json_extract(value, '$.custom_id'), "
        "json_extract(value, '$.params') FROM json_each(?5)")

    def __init__(self, path: str) -> None:
        self.name = os.path.abspath(os.fspath(path))
        self.conn = connect(self.name)
        try:
            with guard(self.name):
                page = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_BYTES // page}")
        except BaseException:
            self.conn.close()
            raise
        self.checkpointer = Checkpointer(self.name)

    def another(self) -> SQLiteDatabase:
        return SQLiteDatabase(self.name)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def begin(self, *, exclusive: bool, durable: bool) -> None:
        if durable:
            self.conn.execute("PRAGMA synchronous=FULL")
        self._durable = durable
        self.conn.execute("BEGIN IMMEDIATE")  # one writer at a time, whatever is asked

    def commit(self) -> None:
        try:
            self.conn.execute("COMMIT")
        finally:
            self._relax()
        self.checkpointer.poke()

    def rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        finally:
            self._relax()

    def _relax(self) -> None:
        if getattr(self, "_durable", False):
            self._durable = False
            self.conn.execute("PRAGMA synchronous=NORMAL")

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def guard(self) -> ContextManager[None]:
        return guard(self.name)

    def files(self) -> Tuple[str, ...]:
        return (self.name, *(self.name + end for end in ("-wal", "-shm", "-journal")))

    def close(self) -> None:
        try:
            self.checkpointer.stop()
        finally:
            self.conn.close()
