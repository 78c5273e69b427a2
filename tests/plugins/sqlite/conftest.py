"""The store's tests run against each backend: a module opts in with
``pytestmark = pytest.mark.usefixtures("store_backend")``.

Under PostgreSQL, the module's ``SQLiteStore`` is replaced by a factory that opens a
PostgresStore in a database of the test's own for each store path the test names,
so one test proves the same guarantee on both. Tests about the file itself (its
mode, WAL, its schema version) are marked ``sqlite_only``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator

import pytest

from ...pgserver import create_database


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite"
        return
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("about the SQLite file itself")
    server = request.getfixturevalue("postgres_server")
    from claudebatch_postgres import PostgresStore

    databases: Dict[str, str] = {}

    def store_at(path: Any, **options: Any) -> Any:
        key = os.path.abspath(os.fspath(path))
        if key not in databases:
            databases[key] = create_database(server)
        return PostgresStore(databases[key], **options)

    monkeypatch.setattr(request.module, "SQLiteStore", store_at)
    yield "postgres"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: a test of the SQLite file itself")
