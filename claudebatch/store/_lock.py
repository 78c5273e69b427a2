"""One process per job name and store: a lock row, taken in an exclusive transaction.

The row names its owner (host, pid, the process's start time) and carries a
heartbeat. It is stale once its owner is gone: on the same host when the pid is
no longer that process; from another host when the heartbeat is older than
``stale_after``. The same process may take its own lock again (a job retried
after an exception never reached ``on_job_end``), so the lock keeps other
processes out, not other threads of one process.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

from ._database import Database
from ._errors import JobLockedError

#: Seconds without a heartbeat after which a lock held from another host is stale.
DEFAULT_STALE_AFTER = 1800.0
#: A held lock's heartbeat is refreshed at most this often.
HEARTBEAT_EVERY = 15.0


def process_start(pid: int) -> Optional[str]:
    """When ``pid`` started (Linux ``/proc``), to tell it from a later process with its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of the whole line


def process_alive(pid: int, started: Optional[str]) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
        if stat[stat.rfind(")") + 2:].split()[0] in ("Z", "X"):
            return False  # a zombie: dead, not yet reaped
    except OSError:
        pass
    if started is not None:
        now = process_start(pid)
        if now is not None and now != started:
            return False  # the pid was reused
    return True


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    process_start: Optional[str]
    token: str
    acquired_at: float
    heartbeat_at: float

    def describe(self) -> str:
        since = dt.datetime.fromtimestamp(self.acquired_at).strftime("%Y-%m-%d %H:%M:%S")
        return f"pid {self.pid} on {self.host} (since {since})"


class JobLock:
    """The lock on one job name; ``acquire`` waits up to ``timeout`` seconds, then refuses."""

    def __init__(self, conn: Database, job: str, *, store_path: str,
                 stale_after: float = DEFAULT_STALE_AFTER,
                 now: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.job = job
        self.store_path = store_path
        self.stale_after = stale_after
        self.now = now
        self.token = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.started = process_start(self.pid)
        self.held = False
        self._beat = 0.0

    def owner(self) -> Optional[Owner]:
        row = self.conn.execute(
            "SELECT pid, host, process_start, token, acquired_at, heartbeat_at FROM locks "
            "WHERE job = ?", (self.job,)).fetchone()
        return Owner(*row) if row else None

    def is_live(self, owner: Owner) -> bool:
        if owner.host == self.host:
            return process_alive(owner.pid, owner.process_start)
        return self.now() - owner.heartbeat_at < self.stale_after

    def _ours(self, owner: Owner) -> bool:
        return owner.host == self.host and owner.pid == self.pid

    def try_acquire(self) -> Optional[Owner]:
        """Take the lock; return None on success, else the live owner."""
        with self.conn.transaction():
            owner = self.owner()
            if owner is not None and not self._ours(owner) and self.is_live(owner):
                return owner
            now = self.now()
            self.conn.execute(
                "INSERT INTO locks (job, pid, host, process_start, token, acquired_at, "
                "heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job) DO UPDATE SET "
                "pid = excluded.pid, host = excluded.host, "
                "process_start = excluded.process_start, token = excluded.token, "
                "acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at",
                (self.job, self.pid, self.host, self.started, self.token, now, now))
        self.held = True
        self._beat = time.monotonic()
        return None

    def acquire(self, timeout: float = 0.0, *, poll: float = 0.2) -> None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            owner = self.try_acquire()
            if owner is None:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                waited = f" after waiting {timeout:g} s" if timeout > 0 else ""
                raise JobLockedError(
                    f"job {self.job!r} is being run by {owner.describe()} on the store "
                    f"{self.store_path}{waited}; let it finish (then run again to pick up "
                    "its results), or wait for it with --store-wait SECONDS / "
                    "the store's lock_timeout. The lock lapses by itself once that "
                    "process is gone.")
            time.sleep(min(poll, left))

    def heartbeat(self, *, force: bool = False) -> None:
        """Refresh the heartbeat (cheap to call often: it writes at most every 15 s)."""
        if not self.held:
            return
        if not force and time.monotonic() - self._beat < HEARTBEAT_EVERY:
            return
        self._beat = time.monotonic()
        self.conn.execute("UPDATE locks SET heartbeat_at = ? WHERE job = ? AND token = ?",
                          (self.now(), self.job, self.token))

    def release(self) -> None:
        if self.held:
            self.conn.execute("DELETE FROM locks WHERE job = ? AND token = ?",
                              (self.job, self.token))
            self.held = False
