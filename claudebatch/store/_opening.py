"""Finding the backend for a store's location: the ``open_store`` hook.

``--store PATH`` is SQLite's (claudebatch-sqlite), ``--store postgresql://...``
PostgreSQL's (claudebatch-postgres); whichever installed backend answers opens it.
"""

from __future__ import annotations

import re
from typing import IO, TYPE_CHECKING, Any, List, Optional

import attrs

from ._errors import StoreError

if TYPE_CHECKING:
    from ._jobstore import JobStore

#: The distribution that handles each kind of location, to name in an error.
_BACKENDS = {"postgresql": "claudebatch-postgres", "postgres": "claudebatch-postgres"}


@attrs.frozen
class StoreOptions:
    """How a store is opened (``open_store`` hook).

    ``create``: make the store if there is none (a job's run); False for the commands
    that read one (``jobs``, ``export``...), which must not make one by accident.
    ``lock_timeout``: seconds to wait when another process runs the same job.
    ``stream``: where the store says what it does (the CLI passes stderr).
    ``warn``: log the batches whose results are about to be deleted, on opening.
    """

    create: bool = True
    lock_timeout: float = 0.0
    stream: Optional[IO[str]] = None
    warn: bool = True


#: A ``password=`` parameter or keyword, quoted or not (group 2: the password).
_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)")


def shown_location(location: str) -> str:
    """A location fit for a message: a DSN's password is never shown (in a URL's
    credentials, a ``password=`` query parameter or a ``password=`` keyword)."""
    shown = _PASSWORD.sub(r"\1***", location)
    if "://" not in shown or "@" not in shown:
        return shown
    scheme, rest = shown.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"


#: A libpq keyword DSN (``host=db dbname=jobs user=me``): PostgreSQL's, never a file path.
_KEYWORD_DSN = re.compile(r"^\s*\w+\s*=.*\b(host|hostaddr|dbname|user|port|service)\s*=|"
                          r"^\s*(host|hostaddr|dbname|user|port|service)\s*=", re.I)


def is_keyword_dsn(location: str) -> bool:
    """Whether ``location`` is a libpq keyword connection string rather than a path."""
    return "://" not in location and bool(_KEYWORD_DSN.search(location))


def secrets_of(location: str) -> List[str]:
    """The passwords a DSN holds, to scrub from any message that might echo them."""
    found = [m.group(2).strip("'") for m in _PASSWORD.finditer(location)]
    if "://" in location and "@" in location:
        credentials = location.split("://", 1)[1].rsplit("@", 1)[0]
        if ":" in credentials:
            found.append(credentials.split(":", 1)[1])
    return [secret for secret in found if secret]


def open_store(location: str, options: StoreOptions = StoreOptions(), *,
               plugins: Any = None) -> JobStore:
    """The store at ``location``, opened by the installed backend that handles it.

    ``plugins``: a plugin manager to ask (default: the installed plugins, as the
    command line sees them).
    """
    if plugins is None:
        from ..cli import cli_plugins

        plugins = cli_plugins()
    store = plugins.hook.open_store(location=location, options=options)
    if store is not None:
        return store  # type: ignore[no-any-return]
    scheme = location.split("://", 1)[0].lower() if "://" in location else \
        "postgresql" if is_keyword_dsn(location) else ""
    needed = _BACKENDS.get(scheme, "claudebatch-sqlite" if not scheme else None)
    if needed is None:
        raise StoreError(f"no installed job store handles {shown_location(location)} (a file "
                         "path is SQLite's, postgresql://... PostgreSQL's)")
    raise StoreError(f"the store {shown_location(location)} needs {needed}: pip install "
                     f"{needed}")
