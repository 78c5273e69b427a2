"""claudebatch-sqlite: crash-safe claudebatch jobs in one SQLite file.

``BatchClient(plugins=[SQLiteStore("claudebatch.db")])``, or ``--store PATH`` on
``claudebatch run``: a job that dies resumes when run again with the same name,
with no batch sent twice and no result lost. The store itself (hooks, commands,
workers) is claudebatch's shared store layer (:mod:`claudebatch.store`); this
distribution puts it in a file. See docs/plugins/sqlite.md.
"""

from typing import TYPE_CHECKING, Any

from claudebatch.store import (
    DEFAULT_STORE,
    STORE_ENV,
    BatchInfo,
    ExpiryWarning,
    InputChangedError,
    JobInfo,
    JobLockedError,
    StoreError,
    StoreFileError,
    UnknownJobError,
)

if TYPE_CHECKING:
    from .store import SQLiteStore

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":  # loaded on first use: the command line starts fast
        from .store import SQLiteStore

        return SQLiteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
