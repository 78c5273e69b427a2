"""A real PostgreSQL server for the store's tests, started by the test suite itself.

``postgres_server`` starts one per test session with the ``pgserver`` package (a
PostgreSQL build on PyPI: no system install), or uses the server named by
``$CLAUDEBATCH_TEST_POSTGRES`` (a DSN whose user may create databases) instead.
``postgres_dsn`` hands each test a database of its own.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from typing import Iterator

import pytest

#: Point the tests at an existing server instead of starting one.
SERVER_ENV = "CLAUDEBATCH_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    given = os.environ.get(SERVER_ENV)
    if given:
        yield given
        return
    pgserver = pytest.importorskip("pgserver", reason="pip install -e 'plugins/postgres[test]'")
    pytest.importorskip("psycopg")
    folder = tempfile.mkdtemp(prefix="claudebatch-pg-")
    server = pgserver.get_server(folder, cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def database_dsn(server: str, name: str) -> str:
    """The DSN of database ``name`` on the server at ``server`` (its URI or a DSN)."""
    if "://" in server:
        head, sep, query = server.partition("?")
        base = re.sub(r"/[^/]*$", f"/{name}", head) if head.count("/") > 2 else \
            f"{head}/{name}"
        return base + sep + query
    return f"{server} dbname={name}"


def create_database(server: str) -> str:
    """A new empty database on the server; its DSN."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return database_dsn(server, name)


@pytest.fixture
def postgres_dsn(postgres_server: str) -> str:
    """A database of this test's own on the session's server."""
    return create_database(postgres_server)
