"""A DSN's password never shows in a message, wherever in the DSN it is."""

from __future__ import annotations

import pytest

from claudebatch.store import StoreError, shown_location


@pytest.mark.parametrize("dsn, shown", [
    ("postgresql://u:sekrit@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u@h/db?password=sekrit", "postgresql://u@h/db?password=***"),
    ("postgresql:///db?host=/tmp&password=sekrit&sslmode=require",
     "postgresql:///db?host=/tmp&password=***&sslmode=require"),
    ("/var/lib/jobs.db", "/var/lib/jobs.db"),
])
def test_shown_location_hides_the_password(dsn: str, shown: str) -> None:
    assert shown_location(dsn) == shown


@pytest.mark.parametrize("dsn", ["postgres://u:sekrit@[::1",
                                 "postgresql://u@127.0.0.1:1/db?password=sekrit"])
def test_a_connect_error_never_quotes_the_password(dsn: str) -> None:
    pytest.importorskip("psycopg")
    from claudebatch_postgres import PostgresStore

    with pytest.raises(StoreError) as caught:
        PostgresStore(dsn)
    assert "sekrit" not in str(caught.value)
