"""What keeping a job's answers costs SQLite in a store that already holds many (issue #19).

Answer keys are random sha256s, so every commit of answers writes each index page its keys
land on. Schema 6 indexes answers by ``key_id`` (8 bytes of the key as an integer,
``claudebatch.store.answer_key_id``) where schema 5 indexed the 64-character key. This
inserts ``--answers`` new answers, ``--commit-every`` per transaction as the store commits
them, into a table that already holds ``--stored``, once with each index (the same rows,
the same 16 kB pages and WAL as the store), and prints CPU, wall and the bytes written to
the log. The log is checkpointed after each commit, as the store's own thread does.

    python benchmarks/answer_index.py [--stored 1000000] [--answers 100000]
        [--commit-every 5000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch.store import answer_key_id

#: name -> (table and index, width of a row)
LAYOUTS: Dict[str, Tuple[str, int]] = {
    "64-character key (schema 5)": (
        "CREATE TABLE answers (key TEXT NOT NULL UNIQUE, job TEXT, custom_id TEXT, "
        "stored_at REAL); CREATE INDEX answers_by_age ON answers (stored_at)", 4),
    "integer key_id (schema 6)": (
        "CREATE TABLE answers (key_id INTEGER, key TEXT NOT NULL, job TEXT, custom_id TEXT, "
        "stored_at REAL); CREATE UNIQUE INDEX answers_by_key ON answers (key_id); "
        "CREATE INDEX answers_by_age ON answers (stored_at)", 5),
}


def rows(width: int, prefix: bytes, count: int) -> Any:
    for i in range(count):
        key = hashlib.sha256(prefix + str(i).encode()).hexdigest()
        head = (answer_key_id(key),) if width == 5 else ()
        yield (*head, key, "job", f"r-{i}", float(i))


def measure(stored: int, answers: int, commit_every: int) -> Dict[str, Dict[str, float]]:
    figures: Dict[str, Dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cb-answer-index-") as tmp:
        for n, (name, (schema, width)) in enumerate(LAYOUTS.items()):
            path = os.path.join(tmp, f"{n}.db")
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA page_size = 16384")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(schema)
            insert = f"INSERT INTO answers VALUES ({', '.join('?' * width)})"
            conn.execute("BEGIN")
            conn.executemany(insert, rows(width, b"stored", stored))
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            new = list(rows(width, b"new", answers))
            logged = 0
            started, cpu = time.perf_counter(), time.process_time()
            for start in range(0, answers, commit_every):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(insert + " ON CONFLICT DO NOTHING",
                                 new[start:start + commit_every])
                conn.execute("COMMIT")
                logged += os.path.getsize(path + "-wal")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            figures[name] = {"wall_s": time.perf_counter() - started,
                             "cpu_s": time.process_time() - cpu, "log_mb": logged / 1e6}
            conn.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--commit-every", type=int, default=5000)
    args = parser.parse_args()
    figures = measure(args.stored, args.answers, args.commit_every)
    print(f"{args.answers:,} answers into a store holding {args.stored:,}, "
          f"{args.commit_every:,} a commit:")
    for name, found in figures.items():
        print(f"  {name:<30} CPU {found['cpu_s']:6.2f} s   wall {found['wall_s']:6.2f} s   "
              f"log written {found['log_mb']:7,.0f} MB")
    old, new = figures.values()
    print(f"integer index / text index: CPU {new['cpu_s'] / old['cpu_s']:.2f}x, "
          f"log {new['log_mb'] / old['log_mb']:.2f}x")


if __name__ == "__main__":
    main()
