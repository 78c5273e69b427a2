"""Finding the backend for a store's location: the ``open_store`` hook.

``--store PATH`` is SQLite's (claudebatch-sqlite), ``--store postgresql://...``
PostgreSQL's (claudebatch-postgres); whichever installed backend answers opens it.
"""

from __future__ import annotations

import re
from typing import IO, TYPE_CHECKING, Any, Optional

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


def shown_location(location: str) -> str:
    """A location fit for a message: a DSN's password is never shown (in its credentials,
    or as a ``password=`` parameter)."""
    location = re.sub(r"(?i)(password\s*=\s*)('[^']*'|[^&\s]*)", r"\1***", location)
    if "://" not in location or "@" not in location:
        return location
    scheme, rest = location.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"


def without_secrets(text: str, location: str) -> str:
    """``text`` (a driver's message) with ``location`` and its password shown safely."""
    shown = shown_location(location)
    text = text.replace(location, shown)
    for secret in re.findall(r"(?i)password\s*=\s*('[^']*'|[^&\s]*)", location) + \
            re.findall(r"^[^:/]+://[^:@/]*:(.*)@", location):
        if secret:
            text = text.replace(secret, "***")
    return text


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
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    needed = _BACKENDS.get(scheme, "claudebatch-sqlite" if not scheme else None)
    if needed is None:
        raise StoreError(f"no installed job store handles {shown_location(location)} (a file "
                         "path is SQLite's, postgresql://... PostgreSQL's)")
    raise StoreError(f"the store {shown_location(location)} needs {needed}: pip install "
                     f"{needed}")
