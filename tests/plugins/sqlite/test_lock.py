"""Two processes on one store and job name: only one submits; the other refuses or waits."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from claudebatch_sqlite import JobLockedError, SQLiteStore

from claudebatch import BatchClient
from claudebatch.emulator import Emulator
from claudebatch.store._lock import process_alive, process_start

from .crash_child import ResubmitEven, requests, run_child
from .helpers import fork_context

COUNT = 8  # one batch, then a second pass of the 4 even requests: 2 batches


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=25.0, seed=3) as emu:  # a batch of 8 takes ~0.3 s: time to collide
        yield emu


def config(emulator: Emulator, tmp_path: Path) -> Dict[str, Any]:
    return {"url": emulator.url, "store": str(tmp_path / "store.db"),
            "output": str(tmp_path / "out.jsonl"), "name": "crashy", "requests": COUNT,
            "max_batch": 8, "kill": None, "report": str(tmp_path / "report.json")}


def run_here(emulator: Emulator, tmp_path: Path, **store_options: Any) -> Any:
    store = SQLiteStore(tmp_path / "store.db", **store_options)
    client = BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False,
                         plugins=[store, ResubmitEven()])
    return client.run(requests(COUNT), name="crashy", output=str(tmp_path / "mine.jsonl"),
                      poll_interval=0.01, max_batch_requests=8)


def wait_for_lock(path: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                conn = sqlite3.connect(path, timeout=5)
                row = conn.execute("SELECT pid FROM locks WHERE job = 'crashy'").fetchone()
                conn.close()
            except sqlite3.Error:
                row = None
            if row:
                return int(row[0])
        time.sleep(0.01)
    raise AssertionError("the first process never took the lock")


def test_a_second_process_refuses_then_one_that_waits_resumes(emulator: Emulator,
                                                             tmp_path: Path) -> None:
    first = fork_context().Process(target=run_child, args=(config(emulator, tmp_path),))
    first.start()
    try:
        assert wait_for_lock(tmp_path / "store.db") == first.pid
        with pytest.raises(JobLockedError) as caught:
            run_here(emulator, tmp_path)
        message = str(caught.value)
        assert f"pid {first.pid} on {socket.gethostname()}" in message
        assert "--store-wait" in message
        started = time.monotonic()
        report = run_here(emulator, tmp_path, lock_timeout=30)  # waits for the first
        assert time.monotonic() - started > 0.05
    finally:
        first.join(30)
    assert first.exitcode == 0
    assert emulator.batches_created == 2  # the first process's two; the others sent none
    assert report.complete and report.passes == 2


def test_a_lock_whose_process_is_gone_lapses(emulator: Emulator, tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    store = SQLiteStore(tmp_path / "store.db")
    store.conn.execute("INSERT INTO locks VALUES ('crashy', ?, ?, NULL, 't', 0, 0)",
                       (gone.pid, socket.gethostname()))
    assert run_here(emulator, tmp_path).complete


def test_a_lock_from_another_host_lapses_without_heartbeat(emulator: Emulator,
                                                          tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    store.conn.execute("INSERT INTO locks VALUES ('crashy', 1, 'elsewhere', NULL, 't', ?, ?)",
                       (time.time(), time.time()))
    with pytest.raises(JobLockedError, match="on elsewhere"):
        run_here(emulator, tmp_path)
    assert emulator.batches_created == 0
    store.conn.execute("UPDATE locks SET heartbeat_at = ?", (time.time() - 3600,))
    assert run_here(emulator, tmp_path, stale_after=600).complete


def test_liveness_of_processes() -> None:
    me = os.getpid()
    assert process_alive(me, process_start(me))
    assert not process_alive(me, "not-my-start-time")  # a reused pid is another process
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert not process_alive(gone.pid, None)
    zombie = subprocess.Popen(["true"])
    time.sleep(0.2)  # exited, not yet reaped
    assert not process_alive(zombie.pid, None)
    zombie.wait()
