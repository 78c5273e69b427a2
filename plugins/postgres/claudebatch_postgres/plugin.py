"""The ``claudebatch`` entry point: PostgreSQL opens ``postgresql://`` store locations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from claudebatch import hookimpl
from claudebatch.store import StoreOptions, is_keyword_dsn

if TYPE_CHECKING:
    from .store import PostgresStore

SCHEMES = ("postgresql://", "postgres://")


@hookimpl
def open_store(location: str, options: StoreOptions) -> Optional[PostgresStore]:
    if not location.lower().startswith(SCHEMES) and not is_keyword_dsn(location):
        return None
    from .store import PostgresStore

    return PostgresStore(location, lock_timeout=options.lock_timeout, stream=options.stream,
                         warn=options.warn, create=options.create)
