"""The store when the service refuses creates for a full queue (429): no stale intent, no
batch paid twice, and a job stopped while it waits resumes.

A refused create made nothing: ``on_submit_error`` (``made_nothing``) drops its intent, and
the create tried later records a new one, so a resume neither adopts a stranger's batch
for it nor waits on a "lost" create that was never sent.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, Dict, List

from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient, JobContext, PendingBatch, hookimpl
from claudebatch.emulator import Emulator, ManualClock

from .helpers import Interrupted, dataset, fork_context, output_lines

REQUESTS = 24
MAX_BATCH = 8  # 3 batches; the queue holds 10 requests: one batch at a time


class IntentsWhileWaiting:
    """At each refusal, what the store holds for the job's batches."""

    def __init__(self, store: SQLiteStore, stop: bool = False) -> None:
        self.store = store
        self.stop = stop
        self.seen: List[Dict[Any, Any]] = []

    @hookimpl
    def on_queue_wait(self, requests: PendingBatch, context: JobContext) -> None:
        job = self.store.job(context.name)
        self.seen.append({(b.pass_number, b.index): b.batch_id for b in job.batches})
        if self.stop:
            raise Interrupted("stopped while waiting for room in the queue")


def client_for(emulator: Emulator, clock: ManualClock, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emulator.url, clock=clock,
                       plugins=list(plugins), load_entry_points=False, max_retries=0)


def run(emulator: Emulator, clock: ManualClock, store: SQLiteStore, tmp_path: Path,
        *plugins: Any) -> Any:
    return client_for(emulator, clock, store, *plugins).run(
        dataset(REQUESTS), name="queued", output=str(tmp_path / "out.jsonl"),
        poll_interval=0.5, max_batch_requests=MAX_BATCH, max_in_flight=0)


def test_a_refused_create_leaves_no_intent_and_no_batch_is_paid_twice(
        tmp_path: Path) -> None:
    clock = ManualClock()
    with Emulator(rate=10.0, seed=5, clock=clock, queue_limit=10) as emu, \
            SQLiteStore(tmp_path / "store.db", warn=False) as store:
        watcher = IntentsWhileWaiting(store)
        report = run(emu, clock, store, tmp_path, watcher)
        assert emu.queue_refusals >= 2 and emu.batches_created == 3
        batch_ids = emu.batch_ids
        job = store.job("queued")
    assert watcher.seen and all(None not in seen.values() for seen in watcher.seen)
    assert report.complete and report.counts == {"succeeded": REQUESTS}
    assert sorted(b.batch_id for b in job.batches) == sorted(batch_ids)
    ids = [line["custom_id"] for line in output_lines(tmp_path / "out.jsonl")]
    assert sorted(ids) == [r["custom_id"] for r in dataset(REQUESTS)]


def test_a_job_stopped_while_it_waits_resumes_with_nothing_paid_twice(
        tmp_path: Path) -> None:
    clock = ManualClock()
    with Emulator(rate=10.0, seed=5, clock=clock, queue_limit=10) as emu:
        with SQLiteStore(tmp_path / "store.db", warn=False) as store:
            try:
                run(emu, clock, store, tmp_path, IntentsWhileWaiting(store, stop=True))
            except Interrupted:
                pass
            else:
                raise AssertionError("the queue never refused a create")
            assert emu.batches_created == 1
        with SQLiteStore(tmp_path / "store.db", warn=False) as store:
            report = run(emu, clock, store, tmp_path)
            job = store.job("queued")
        assert emu.batches_created == 3, emu.batch_ids
        assert sorted(b.batch_id for b in job.batches) == sorted(emu.batch_ids)
    assert report.complete and report.counts == {"succeeded": REQUESTS}
    ids = [line["custom_id"] for line in output_lines(tmp_path / "out.jsonl")]
    assert sorted(ids) == [r["custom_id"] for r in dataset(REQUESTS)]  # each once
    assert job.state == "done" and all(b.results_done for b in job.batches)


# --- a real SIGKILL while waiting ---------------------------------------------------------

class DieWhileWaiting:
    @hookimpl
    def on_queue_wait(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def queued_child(config: Dict[str, Any]) -> None:
    """A fresh process: the job against the parent's emulator; dies at its first refusal."""
    store = SQLiteStore(config["store"], unconfirmed_grace=1.0)
    plugins: List[Any] = [store, *([DieWhileWaiting()] if config["kill"] else [])]
    client = BatchClient(api_key="emulator", base_url=config["url"], plugins=plugins,
                         load_entry_points=False, max_retries=0)
    report = client.run(dataset(REQUESTS), name="queued", output=config["output"],
                        poll_interval=0.05, max_batch_requests=MAX_BATCH, max_in_flight=0)
    with open(config["report"], "w") as out:
        json.dump({"complete": report.complete, "counts": report.counts}, out)


def test_killed_while_waiting_for_room_it_resumes_with_nothing_paid_twice(
        tmp_path: Path) -> None:
    # real time across processes: 10 requests a second, so each wait is about a second
    with Emulator(rate=10.0, seed=5, queue_limit=10) as emu:
        config = {"url": emu.url, "store": str(tmp_path / "store.db"),
                  "output": str(tmp_path / "out.jsonl"), "report": str(tmp_path / "r.json")}
        for kill in (True, False):
            child = fork_context().Process(target=queued_child, args=({**config,
                                                                        "kill": kill},))
            child.start()
            child.join(60)
            assert child.exitcode == (-signal.SIGKILL if kill else 0)
            if kill:
                assert emu.batches_created == 1 and emu.queue_refusals == 1
        assert emu.batches_created == 3, emu.batch_ids
        with SQLiteStore(tmp_path / "store.db", warn=False) as store:
            job = store.job("queued")
        assert sorted(b.batch_id for b in job.batches) == sorted(emu.batch_ids)
    assert json.loads((tmp_path / "r.json").read_text()) == {
        "complete": True, "counts": {"succeeded": REQUESTS}}
    ids = [line["custom_id"] for line in output_lines(tmp_path / "out.jsonl")]
    assert sorted(ids) == [r["custom_id"] for r in dataset(REQUESTS)]
