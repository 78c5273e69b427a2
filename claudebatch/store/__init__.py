"""The shared store layer: what makes a job survive its process, for every backend.

A backend distribution (claudebatch-sqlite: a file; claudebatch-postgres: a server
many hosts share) subclasses :class:`Database` and implements the ``open_store``
hook for the locations it understands; everything else is here, written once: the
hooks that record a job (:class:`JobStore`), resume, export, the ``--store`` option
and the ``jobs``/``job``/``export``/``reuse``/``serve``/``worker`` commands.

The names that need the rest of claudebatch load on first use, so the command
line starts fast.
"""

from typing import TYPE_CHECKING, Any

from ._database import Database, answer_key_id
from ._errors import (
    InputChangedError,
    JobLockedError,
    NoStoreError,
    StoreError,
    StoreFileError,
    UnknownJobError,
)
from ._info import BatchInfo, ExpiryWarning, JobInfo
from ._location import DEFAULT_STORE, STORE_ENV, default_location, user_store_path
from ._opening import StoreOptions, is_keyword_dsn, open_store, secrets_of, shown_location

if TYPE_CHECKING:
    from ._jobstore import UNCONFIRMED_GRACE_SECONDS, JobStore
    from ._lock import DEFAULT_STALE_AFTER

_LAZY = {"JobStore": "_jobstore", "UNCONFIRMED_GRACE_SECONDS": "_jobstore",
         "DEFAULT_STALE_AFTER": "_lock"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_STALE_AFTER",
    "DEFAULT_STORE",
    "STORE_ENV",
    "UNCONFIRMED_GRACE_SECONDS",
    "BatchInfo",
    "Database",
    "ExpiryWarning",
    "InputChangedError",
    "JobInfo",
    "JobLockedError",
    "JobStore",
    "NoStoreError",
    "StoreError",
    "StoreFileError",
    "StoreOptions",
    "UnknownJobError",
    "answer_key_id",
    "default_location",
    "is_keyword_dsn",
    "open_store",
    "secrets_of",
    "shown_location",
    "user_store_path",
]
