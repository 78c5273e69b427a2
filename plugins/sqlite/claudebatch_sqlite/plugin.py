"""The ``claudebatch`` entry point: SQLite opens every store location that is a path."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from claudebatch import hookimpl
from claudebatch.store import NoStoreError, StoreOptions, is_keyword_dsn

if TYPE_CHECKING:
    from .store import SQLiteStore


@hookimpl(trylast=True)  # a path is anyone's who claims it first; a URL is never SQLite's
def open_store(location: str, options: StoreOptions) -> Optional[SQLiteStore]:
    if ("://" in location and not location.startswith("file://")) or is_keyword_dsn(location):
        return None
    path = os.path.abspath(location[len("file://"):] if location.startswith("file://")
                           else location)
    if not options.create and not os.path.exists(path):
        raise NoStoreError(f"no store at {path} (give --store PATH or set $CLAUDEBATCH_STORE)")
    from .store import SQLiteStore

    return SQLiteStore(path, lock_timeout=options.lock_timeout, stream=options.stream,
                       warn=options.warn)
