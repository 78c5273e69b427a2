"""claudebatch-sqlite: crash-safe claudebatch jobs in one SQLite file.

``BatchClient(plugins=[SQLiteStore("claudebatch.db")])``, or ``--store PATH`` on
``claudebatch run``: a job that dies resumes when run again with the same name,
with no batch sent twice and no result lost. See docs/plugins/sqlite.md.
"""

from .errors import InputChangedError, JobLockedError, StoreError, StoreFileError, UnknownJobError
from .info import BatchInfo, ExpiryWarning, JobInfo
from .store import DEFAULT_STORE, STORE_ENV, SQLiteStore

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_STORE",
    "STORE_ENV",
    "BatchInfo",
    "ExpiryWarning",
    "InputChangedError",
    "JobInfo",
    "JobLockedError",
    "SQLiteStore",
    "StoreError",
    "StoreFileError",
    "UnknownJobError",
    "__version__",
]
