"""The PostgreSQL store's own edges: where it is, what its messages never show."""

from __future__ import annotations

from typing import Callable

import claudebatch_postgres.plugin as postgres_plugin
import claudebatch_sqlite.plugin as sqlite_plugin
import pytest

from claudebatch.cli import main
from claudebatch.store import StoreError, is_keyword_dsn, open_store, shown_location

SECRET = "s3cretPW"


@pytest.mark.parametrize("dsn", [
    f"postgresql://u:{SECRET}@host:badport/db",
    f"postgresql://u:{SECRET}@[::1/db",  # libpq echoes this one whole
    f"host=/nonexistent user=u password={SECRET} dbname=z",
    f"host=/nonexistent password='{SECRET} x' dbname=z",
    f"postgresql://u@/db?password={SECRET}&host=/nonexistent",
])
def test_a_password_never_appears_in_an_error(dsn: str, install_cli: Callable[..., None],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    install_cli(sqlite_plugin, postgres_plugin)
    assert main(["jobs", "--store", dsn]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and SECRET not in err and "Traceback" not in err
    with pytest.raises(StoreError) as raised:
        open_store(dsn)
    assert SECRET not in str(raised.value)
    assert SECRET not in shown_location(dsn)


def test_a_keyword_dsn_is_postgresql_and_a_path_is_sqlite() -> None:
    assert is_keyword_dsn("host=db dbname=jobs user=me")
    assert is_keyword_dsn("dbname=jobs")
    assert not is_keyword_dsn("jobs.db") and not is_keyword_dsn("my=store.db")
    assert not is_keyword_dsn("postgresql://db/jobs")


def test_the_store_lives_in_its_own_schema_beside_tables_of_the_same_names(
        postgres_dsn: str) -> None:
    import psycopg
    from claudebatch_postgres import PostgresStore

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:  # someone else's tables
        conn.execute("CREATE TABLE public.jobs (id int, what text)")
        conn.execute("INSERT INTO public.jobs VALUES (1, 'theirs')")
    with PostgresStore(postgres_dsn) as store:
        assert store.jobs() == []
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT what FROM public.jobs").fetchall() == [("theirs",)]


def test_reading_a_database_with_no_store_never_makes_one(postgres_dsn: str,
                                                          install_cli: Callable[..., None],
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    import psycopg

    install_cli(sqlite_plugin, postgres_plugin)
    assert main(["jobs", "--store", postgres_dsn]) == 1
    assert "no claudebatch store in" in capsys.readouterr().err
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.schemata WHERE "
                            "schema_name = 'claudebatch'").fetchone() == (0,)


def test_a_version_1_store_is_upgraded_in_place(postgres_dsn: str) -> None:
    """A store made as claudebatch-postgres made schema 1 (the same statements, then
    version 1), holding an answer with its own line: upgraded once, the answer still
    found; answers kept from then on may read their line from their result."""
    import psycopg
    from claudebatch_postgres import PostgresStore
    from claudebatch_postgres.database import NAMESPACE, SCHEMA, SCHEMA_VERSION

    from claudebatch.store import answer_key_id

    line = b'{"custom_id":"a","result":{"type":"succeeded"}}'
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {NAMESPACE}")
        conn.execute(f"SET search_path TO {NAMESPACE}")
        for statement in SCHEMA.split(";\n"):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute("INSERT INTO answers (key, line, job, custom_id, batch_id, "
                     "batch_created_at, stored_at) VALUES ('k1', %s, 'old', 'a', 'b', 1.0, 2.0)",
                     (line,))
    for _ in range(2):  # upgraded the first time, then opened as it is
        with PostgresStore(postgres_dsn) as store:
            assert store.conn.execute("SELECT max(version) FROM schema_version"
                                      ).fetchone()[0] == SCHEMA_VERSION == 3
            found = store.records.find_answers(["k1"], 10.0, None, count_hits=False)
            assert [(bytes(r[1]), r[2], r[3]) for r in found] == [(line, "old", "a")]
            assert store.reuse_stats()["bytes"] == len(line)
    with PostgresStore(postgres_dsn) as store:
        # its result is gone: never offered
        store.conn.execute("INSERT INTO answers (key_id, key, line, job, custom_id, batch_id, "
                           "stored_at, job_id, pass) VALUES (?, 'k2', NULL, 'new', 'a', 'b', "
                           "3.0, 1, 1)", (answer_key_id("k2"),))
        assert store.records.find_answers(["k1", "k2"], 10.0, None, count_hits=False)[0][0] \
            == "k1"
        assert len(store.records.find_answers(["k1", "k2"], 10.0, None,
                                              count_hits=False)) == 1
