"""The store's write-ahead log is copied into its file by a thread, not inside a commit."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Callable

from claudebatch_sqlite.checkpoint import BACKSTOP_BYTES
from claudebatch_sqlite.database import SQLiteDatabase


def commit_rows(db: SQLiteDatabase, count: int, first: int = 0) -> None:
    db.begin(exclusive=True, durable=False)
    db.executemany("INSERT INTO locks (job, pid, host, token, acquired_at, heartbeat_at) "
                   "VALUES (?, 1, 'h', ?, 0, 0)",
                   [(f"j{i}", "x" * 2000) for i in range(first, first + count)])
    db.commit()


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll a thread's progress (a real thread: no clock to fake)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_commit_leaves_the_copy_to_the_thread_which_empties_the_log(tmp_path: Path) -> None:
    db = SQLiteDatabase(str(tmp_path / "s.db"))
    page = db.conn.execute("PRAGMA page_size").fetchone()[0]
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_BYTES // page
    assert db.checkpointer._thread is None  # nothing written: no thread
    commit_rows(db, 200)
    assert wait_for(lambda: db.checkpointer.runs >= 1)
    other = sqlite3.connect(tmp_path / "s.db")
    busy, frames, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and frames == copied  # every frame in the log is in the file already
    other.close()
    thread = db.checkpointer._thread
    db.close()
    assert thread is not None and not thread.is_alive()
    check = sqlite3.connect(tmp_path / "s.db")
    assert check.execute("SELECT count(*) FROM locks").fetchone()[0] == 200


def test_a_checkpoint_that_cannot_run_costs_nothing_but_itself(tmp_path: Path) -> None:
    """The thread keeps going past a failed checkpoint (the file gone from under it);
    the commits it follows are untouched."""
    db = SQLiteDatabase(str(tmp_path / "s.db"))
    db.checkpointer.path = str(tmp_path / "gone" / "s.db")  # it cannot open this
    commit_rows(db, 10)
    commit_rows(db, 10, first=10)
    db.close()
    check = sqlite3.connect(tmp_path / "s.db")
    assert check.execute("SELECT count(*) FROM locks").fetchone()[0] == 20


def test_the_thread_never_makes_a_store_removed_from_under_it(tmp_path: Path) -> None:
    """Its connection opens the file as it is: removed before the first commit, no empty
    file (mode 0644, not the store's 0600) is made in its place for a later run to fill."""
    path = tmp_path / "s.db"
    db = SQLiteDatabase(str(path))
    for name in ("s.db", "s.db-wal", "s.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    commit_rows(db, 10)  # on the removed file: still the open connection's
    thread = db.checkpointer._thread
    assert thread is not None and wait_for(lambda: not thread.is_alive())
    db.close()
    assert not path.exists()


def test_the_thread_checkpoints_a_store_whose_path_needs_quoting(tmp_path: Path) -> None:
    folder = tmp_path / "a dir #1 ?x=%20"
    folder.mkdir()
    db = SQLiteDatabase(str(folder / "s.db"))
    commit_rows(db, 10)
    assert wait_for(lambda: db.checkpointer.runs >= 1)
    db.close()
    assert sorted(p.name for p in folder.iterdir()) == ["s.db"]
