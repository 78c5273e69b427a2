"""The store in PostgreSQL (psycopg 3): the schema ``claudebatch``, checked on connect.

:class:`PostgresDatabase` is the shared store layer's
:class:`~claudebatch.store.Database`: ``?`` marks become ``%s``; an exclusive
transaction takes a transaction-scoped advisory lock, so the store's decisions
(a job's lock, an intent) are made one at a time as in SQLite, while workers'
claims (``FOR UPDATE SKIP LOCKED``) go side by side. Large reads stream through a
server-side cursor on a connection of their own. Every psycopg error becomes a
:class:`~claudebatch.store.StoreError` naming the store (never its password).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, ContextManager, Dict, Iterable, Iterator, Sequence

from claudebatch.store import (
    Database,
    NoStoreError,
    StoreError,
    StoreFileError,
    secrets_of,
    shown_location,
)

try:
    import psycopg
    from psycopg import pq
except ImportError as exc:  # pragma: no cover - a dependency of this distribution
    raise ImportError("claudebatch-postgres needs psycopg 3: pip install 'psycopg[binary]'"
                      ) from exc

#: The schema version this code writes; a newer one is refused, not guessed at.
SCHEMA_VERSION = 3
#: The PostgreSQL schema (namespace) holding the store's tables.
NAMESPACE = "claudebatch"
#: The advisory lock key of exclusive transactions ("cbDB").
ADVISORY_KEY = 0x63624442
#: Rows fetched per round trip by a streaming read.
STREAM_ROWS = 2000

SCHEMA = """
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    input TEXT NOT NULL,
    options TEXT NOT NULL,
    output TEXT,
    state TEXT NOT NULL,
    total_requests BIGINT NOT NULL,
    runs INTEGER NOT NULL DEFAULT 1,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    counts TEXT,
    summary TEXT,
    reuse_horizon DOUBLE PRECISION,
    mode TEXT NOT NULL DEFAULT 'run'
);
CREATE TABLE batches (
    job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    pass INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    batch_id TEXT,
    request_count INTEGER NOT NULL,
    intent_at DOUBLE PRECISION NOT NULL,
    status TEXT,
    counts TEXT,
    created_at DOUBLE PRECISION,
    expires_at DOUBLE PRECISION,
    ended_at DOUBLE PRECISION,
    results_done INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    next_check_at DOUBLE PRECISION,
    PRIMARY KEY (job_id, pass, idx)
);
CREATE INDEX batches_by_id ON batches (batch_id);
CREATE TABLE requests (
    job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    pass INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    custom_id TEXT NOT NULL,
    params TEXT NOT NULL,
    PRIMARY KEY (job_id, pass, idx, pos)
);
CREATE UNIQUE INDEX requests_by_custom_id ON requests (job_id, pass, custom_id);
CREATE TABLE results (
    seq BIGSERIAL,
    job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    custom_id TEXT NOT NULL,
    pass INTEGER NOT NULL,
    type TEXT NOT NULL,
    line BYTEA NOT NULL,
    UNIQUE (job_id, custom_id, pass)
);
CREATE INDEX results_in_order ON results (job_id, pass, seq);
CREATE TABLE passes (
    job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    pass INTEGER NOT NULL,
    decided_at DOUBLE PRECISION NOT NULL,
    requests TEXT NOT NULL,
    PRIMARY KEY (job_id, pass)
);
CREATE TABLE answers (
    key TEXT NOT NULL UNIQUE,
    line BYTEA NOT NULL,
    job TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    batch_created_at DOUBLE PRECISION,
    stored_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX answers_by_age ON answers (stored_at);
CREATE TABLE answer_hits (
    key TEXT PRIMARY KEY,
    hits INTEGER NOT NULL,
    last_hit_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE locks (
    job TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    process_start TEXT,
    token TEXT NOT NULL,
    acquired_at DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    job TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    batches_done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE foreign_batches (
    batch_id TEXT PRIMARY KEY,
    job_id BIGINT NOT NULL,
    noted_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE schema_version (version INTEGER NOT NULL)
"""

#: ``claudebatch.store.answer_key_id`` of the SQL text ``{0}``, in SQL.
_KEY_ID = ("(CASE WHEN {0} ~ '^[0-9a-f]{{16}}' THEN 'x' || substr({0}, 1, 16) "
           "ELSE 'x' || substr(md5({0}), 1, 16) END)::bit(64)::bigint")

#: What brings a store of each older version up to the next, in one transaction.
#: Version 2 keeps each answer's line once: an answer kept with the result it came with
#: has no line of its own (NULL) but names that result (``job_id``, ``pass``; the
#: ``custom_id`` it has), which holds the line. Answers kept before stay as they were.
MIGRATIONS: Dict[int, Sequence[str]] = {
    1: ["ALTER TABLE answers ALTER COLUMN line DROP NOT NULL",
        "ALTER TABLE answers ADD COLUMN job_id BIGINT",
        "ALTER TABLE answers ADD COLUMN pass INTEGER",
        "CREATE INDEX answers_by_job ON answers (job_id) WHERE job_id IS NOT NULL"],
    # Version 3 looks answers up by key_id (claudebatch.store.answer_key_id, the same
    # integer SQLite indexes them by); the key stays unique here. A process of version 2
    # still running (a worker not upgraded yet) inserts answers without a key_id: a
    # trigger gives them theirs, where the NOT NULL would fail its job.
    2: ["ALTER TABLE answers ADD COLUMN key_id BIGINT",
        f"UPDATE answers SET key_id = {_KEY_ID.format('key')}",
        "ALTER TABLE answers ALTER COLUMN key_id SET NOT NULL",
        "CREATE INDEX answers_by_key_id ON answers (key_id)",
        "CREATE FUNCTION answers_key_id() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"NEW.key_id := {_KEY_ID.format('NEW.key')}; RETURN NEW; END $$",
        "CREATE TRIGGER answers_key_id BEFORE INSERT ON answers FOR EACH ROW "
        "WHEN (NEW.key_id IS NULL) EXECUTE FUNCTION answers_key_id()"],
}

_SQL: Dict[str, str] = {}


def _pg(sql: str) -> str:
    """``?`` marks as psycopg's ``%s`` (a literal ``%`` doubled)."""
    found = _SQL.get(sql)
    if found is None:
        found = _SQL[sql] = sql.replace("%", "%%").replace("?", "%s")
    return found


class PostgresDatabase(Database):
    kind = "postgresql"
    order_column = "seq"

    def __init__(self, dsn: str, *, create: bool = True) -> None:
        self.dsn = dsn
        self.name = shown_location(dsn)
        self._secrets = secrets_of(dsn)
        self.conn = self._connect()
        try:
            with self.guard():
                self._prepare(create)
        except BaseException:
            self.conn.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=30,
                                   application_name="claudebatch")
        except psycopg.Error as exc:
            raise StoreError(f"cannot reach the store {self.name}: "
                             f"{_first_line(exc, self._secrets)}") from None
        except Exception as exc:  # a malformed DSN
            raise StoreError(f"cannot use the store {self.name}: "
                             f"{_first_line(exc, self._secrets)}") from None
        with self.guard():
            conn.execute(f"SET search_path TO {NAMESPACE}")
        return conn

    def _prepare(self, create: bool) -> None:
        exists = self.conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'schema_version'", (NAMESPACE,)).fetchone()
        if exists is None:
            if not create:
                raise NoStoreError(f"no claudebatch store in {self.name} yet (a run with "
                                   "--store makes one)")
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))
                self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {NAMESPACE}")
                made = self.conn.execute(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_name = 'schema_version'", (NAMESPACE,)).fetchone()
                if made is None:  # not made by another process while we waited
                    for statement in SCHEMA.split(";\n"):
                        self.conn.execute(statement)
                    self.conn.execute("INSERT INTO schema_version VALUES (1)")
        row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = int(row[0]) if row and row[0] is not None else 0
        if version > SCHEMA_VERSION:
            raise StoreFileError(
                f"the store {self.name} was written by a newer claudebatch-postgres (schema "
                f"{version}; this one reads up to {SCHEMA_VERSION}): upgrade claudebatch-postgres")
        if version < 1:
            raise StoreFileError(f"{self.name} has a schema {NAMESPACE} that is not a "
                                 "claudebatch store")
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Bring an older store (or one just made as version 1) up to this schema, in one
        transaction under the advisory lock (another process may be doing the same: the
        version is read again under it)."""
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))
            row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
            version = int(row[0]) if row and row[0] is not None else SCHEMA_VERSION
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    self.conn.execute(statement)
                version += 1
            self.conn.execute("DELETE FROM schema_version")
            self.conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))

    def claim_suffix(self, table: str = "", *, skip: bool = False) -> str:
        return " FOR UPDATE" + (f" OF {table}" if table else "") + (" SKIP LOCKED" if skip
                                                                     else "")

    def another(self) -> PostgresDatabase:
        return PostgresDatabase(self.dsn)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(_pg(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(_pg(sql), rows)

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Rows read through a server-side cursor on a connection of their own: any size
        in bounded memory, while this connection goes on writing."""
        reader = self._connect()
        try:
            with self.guard(), reader.transaction():
                with reader.cursor(name=f"cb_{uuid.uuid4().hex}") as cursor:
                    cursor.itersize = STREAM_ROWS
                    cursor.execute(_pg(sql), params)
                    yield from cursor
        finally:
            reader.close()

    def begin(self, *, exclusive: bool, durable: bool) -> None:
        self.conn.execute("BEGIN")
        if exclusive:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction and not self.conn.closed:
            self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE

    def guard(self) -> ContextManager[None]:
        return _guard(self.name, self._secrets)

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def _guard(name: str, secrets: Sequence[str] = ()) -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreError(f"the store {name} failed (is the server up?): "
                         f"{_first_line(exc, secrets)}") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StoreError(f"the store {name} refused: {_first_line(exc, secrets)} (the user "
                         f"needs CREATE on the database, or a schema {NAMESPACE} it owns)"
                         ) from None
    except psycopg.Error as exc:
        raise StoreError(f"the store {name} failed: {_first_line(exc, secrets)}") from None


def _first_line(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """The error's first line, with any password the driver echoed (a DSN) masked."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    for secret in secrets:
        line = line.replace(secret, "***")
    return line
