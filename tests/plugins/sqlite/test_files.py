"""A store file that is foreign, damaged or newer gets a clear error, never a sqlite3 traceback."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from claudebatch_sqlite import SQLiteStore, StoreFileError

from claudebatch import ClaudeBatchError


def make_store(path: Path) -> Path:
    store = SQLiteStore(path)
    store.conn.execute("INSERT INTO jobs (name, fingerprint, input, options, state, "
                       "total_requests, created_at, updated_at) VALUES ('j', 'sha256:x', "
                       "'{\"kind\":\"items\",\"content\":null,\"total\":1,\"options\":{}}', "
                       "'{}', 'done', 1, 0, 0)")
    for i in range(300):  # a few pages of results
        store.conn.execute("INSERT INTO results (job_id, custom_id, pass, type, line) VALUES "
                           "(1, ?, 1, 'succeeded', ?)", (f"r-{i}", b"x" * 500))
    store.close()
    return path


def text_file(path: Path) -> None:
    path.write_text("name,value\nnot,a database\n")


def other_sqlite_app(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()


def newer_schema(path: Path) -> None:
    make_store(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()


def garbage_after_header(path: Path) -> None:
    make_store(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = os.urandom(3996)  # page 1: the schema
    path.write_bytes(bytes(data))


def truncated(path: Path) -> None:
    make_store(path)
    path.write_bytes(path.read_bytes()[:1000])


def a_directory(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize("spoil, message", [
    (text_file, "not a claudebatch store (it is not an SQLite database)"),
    (other_sqlite_app, "SQLite database of another application"),
    (newer_schema, "newer claudebatch-sqlite (schema 99"),
    (garbage_after_header, "damaged or not a claudebatch store"),
    (truncated, "damaged or not a claudebatch store"),
    (a_directory, "is a directory"),
])
def test_a_bad_file_is_refused_clearly(tmp_path: Path, spoil: Callable[[Path], None],
                                       message: str) -> None:
    path = tmp_path / "store.db"
    spoil(path)
    with pytest.raises(StoreFileError, match=re.escape(message)) as caught:
        SQLiteStore(path).jobs()
    assert isinstance(caught.value, ClaudeBatchError)
    error = caught.value  # no sqlite3 exception is chained into what a user sees
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert str(path) in str(caught.value)


def test_damage_found_later_is_a_store_error_too(tmp_path: Path) -> None:
    path = make_store(tmp_path / "store.db")
    data = bytearray(path.read_bytes())
    page = 4096
    data[-3 * page:] = os.urandom(3 * page)  # the last pages: results, not the schema
    path.write_bytes(bytes(data))
    store = SQLiteStore(path, warn=False)  # opening reads the schema only
    with pytest.raises(StoreFileError, match="damaged"):
        list(store.results("j"))


def test_a_new_store_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    os.umask(0o022)
    SQLiteStore(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    empty = tmp_path / "empty.db"
    empty.touch()  # an empty file (a crash right after creating it) becomes a store
    assert SQLiteStore(empty).jobs() == []


def test_the_cli_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    garbage_after_header(path)
    env = {k: v for k, v in os.environ.items() if k != "CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD"}
    done = subprocess.run([sys.executable, "-m", "claudebatch.cli", "jobs", "--store",
                           str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: the store ") and "damaged" in done.stderr
    assert "Traceback" not in done.stderr and "sqlite3." not in done.stderr
