"""SQLiteStore: the shared job store (:class:`claudebatch.store.JobStore`) in one file.

Everything a store does (what each hook records, resume, export, the commands) is
the shared store layer's; this module opens the file: created private (0600), in a
private folder when it is your own store, WAL mode, one versioned schema.
"""

from __future__ import annotations

import os
from typing import IO, Optional, Union

from claudebatch.store import (
    DEFAULT_STALE_AFTER,
    UNCONFIRMED_GRACE_SECONDS,
    JobStore,
    StoreFileError,
    user_store_path,
)

from .database import SQLiteDatabase

#: Results are committed to the store at least this often (and about every 2 s, and at
#: each batch's end). Each commit writes every index page its answers' random keys touched:
#: 5,000 a commit took 1.5 s less CPU than 1,000 on a 100,000-result job. A crash loses
#: only what the next run downloads again.
DEFAULT_COMMIT_EVERY = 5000


def _make_own_folder(path: str) -> None:
    """Your own store's folder is made for it, private (0700)."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StoreFileError(f"cannot make the folder of your store {path}: {exc.strerror} "
                             "(give --store PATH, or --no-store)") from None


class SQLiteStore(JobStore):
    """Persist jobs in one SQLite file so a job that died resumes where it was.

    ``path``: the store (created with mode 0600: it holds prompts and answers).
    The other options are :class:`~claudebatch.store.JobStore`'s.
    A job is keyed by its ``name``: run it again with the same name to resume.
    """

    def __init__(self, path: Union[str, os.PathLike[str]], *, lock_timeout: float = 0.0,
                 stale_after: float = DEFAULT_STALE_AFTER,
                 commit_every: int = DEFAULT_COMMIT_EVERY, replay: bool = True,
                 stream: Optional[IO[str]] = None, warn: bool = True,
                 unconfirmed_grace: float = UNCONFIRMED_GRACE_SECONDS) -> None:
        self.path = os.path.abspath(os.fspath(path))
        if self.path == os.path.abspath(user_store_path()):
            _make_own_folder(self.path)
        super().__init__(SQLiteDatabase(self.path), lock_timeout=lock_timeout,
                         stale_after=stale_after, commit_every=commit_every, replay=replay,
                         stream=stream, warn=warn, unconfirmed_grace=unconfirmed_grace)
