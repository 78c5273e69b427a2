"""What the store raises: every error is a :class:`claudebatch.ClaudeBatchError`.

The CLI turns these into one line and exit code 1; nothing from a database driver
(:mod:`sqlite3`, psycopg) reaches a caller raw.
"""

from __future__ import annotations

from claudebatch import ClaudeBatchError


class StoreError(ClaudeBatchError):
    """Base class of the store's errors."""


class StoreFileError(StoreError):
    """The file is not a usable claudebatch store: foreign, corrupted, unreadable or newer."""


class NoStoreError(StoreFileError):
    """There is no store at that location (and it was not to be made)."""


class JobLockedError(StoreError):
    """Another live process is running this job on the same store."""


class InputChangedError(StoreError):
    """A job name was reused for different input (or split options): resuming would mix them."""


class UnknownJobError(StoreError, KeyError):
    """The store holds no job of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
