"""PostgresStore: the shared job store (:class:`claudebatch.store.JobStore`) in PostgreSQL."""

from __future__ import annotations

from typing import IO, Optional

from claudebatch.store import DEFAULT_STALE_AFTER, UNCONFIRMED_GRACE_SECONDS, JobStore

from .database import PostgresDatabase

#: Results are committed at least this often (and at each batch's end): a round trip
#: to a server costs more than a local file's, so more go per transaction.
DEFAULT_COMMIT_EVERY = 2000


class PostgresStore(JobStore):
    """Persist jobs in PostgreSQL: a job that died resumes where it was, from any host.

    ``dsn``: a libpq connection string or URL (``postgresql://user:pw@host/db``); the
    tables live in the schema ``claudebatch``, made on first use. ``create``: False
    refuses a database where no store was made yet. The other options are
    :class:`~claudebatch.store.JobStore`'s.
    """

    def __init__(self, dsn: str, *, lock_timeout: float = 0.0,
                 stale_after: float = DEFAULT_STALE_AFTER,
                 commit_every: int = DEFAULT_COMMIT_EVERY, replay: bool = True,
                 stream: Optional[IO[str]] = None, warn: bool = True,
                 unconfirmed_grace: float = UNCONFIRMED_GRACE_SECONDS,
                 create: bool = True) -> None:
        super().__init__(PostgresDatabase(dsn, create=create), lock_timeout=lock_timeout,
                         stale_after=stale_after, commit_every=commit_every, replay=replay,
                         stream=stream, warn=warn, unconfirmed_grace=unconfirmed_grace)
