"""Copying the write-ahead log into the store off the job's thread.

In WAL mode SQLite copies the log into the database (a checkpoint: every page written
once more, then an fsync) inside whichever commit crosses ``wal_autocheckpoint``
pages. A job commits results every few thousand lines, so every few commits stalled
the job for that copy and its fsync: 0.8 s of a 100,000-result job's 2 s in the store.

A :class:`Checkpointer` is a thread with its own connection that runs a ``PASSIVE``
checkpoint after each commit. ``PASSIVE`` never blocks a writer or a reader, and SQLite
runs the whole checkpoint without Python's lock, so the job keeps going meanwhile. The
writing connection keeps a high ``wal_autocheckpoint`` as a backstop: if the thread ever
falls behind, the log still cannot grow past it. What a commit makes durable is
unchanged: checkpoints only move pages already in the log.
"""

from __future__ import annotations

import logging
import pathlib
import sqlite3
import threading
from typing import Optional

logger = logging.getLogger("claudebatch.sqlite")

#: The log may grow to about this size before a commit copies it itself (the backstop).
BACKSTOP_BYTES = 64 * 1024 * 1024


class Checkpointer:
    """Checkpoints ``path`` in a daemon thread whenever :meth:`poke` is called.

    Started on the first poke, so a store that is only read starts no thread.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._wake = threading.Event()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        #: Checkpoints run (for tests and curious callers).
        self.runs = 0

    def poke(self) -> None:
        """A commit happened: copy the log soon."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopping:
                    self._thread = threading.Thread(target=self._loop, daemon=True,
                                                    name="claudebatch-sqlite-checkpoint")
                    self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        """Let a checkpoint under way finish, and end the thread."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        try:  # never creating it: a store removed meanwhile is not made again, 0644
            conn = sqlite3.connect(f"{pathlib.Path(self.path).absolute().as_uri()}?mode=rw",
                                   uri=True, timeout=0, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            logger.debug("store %s: no background checkpoints (%s)", self.path, exc)
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error as exc:  # busy, or the file went: the backstop copies
                    logger.debug("store %s: a background checkpoint failed: %s", self.path, exc)
        finally:
            conn.close()
