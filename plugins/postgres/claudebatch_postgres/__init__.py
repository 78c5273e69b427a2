"""claudebatch-postgres: the shared job store in a PostgreSQL server many hosts share.

``BatchClient(plugins=[PostgresStore("postgresql://...")])``, or ``--store
postgresql://...`` on any command that takes a store. Everything a store does is
claudebatch's shared store layer (:mod:`claudebatch.store`); this distribution puts
it in PostgreSQL (psycopg 3). See docs/scale.md.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import PostgresStore

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":  # loaded on first use: the command line starts fast
        from .store import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PostgresStore", "__version__"]
