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
