"""Workers on one job, killed at random: no batch paid twice, every result once.

Real worker processes (``claudebatch worker``) share a store (PostgreSQL from the
test suite's own server, and SQLite) and the emulator on loopback; one is killed
with SIGKILL every moment and started again. Leases expire in real time, so this
waits for real: a short lease keeps it quick.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from claudebatch import BatchClient
from claudebatch.emulator import Emulator, Faults
from claudebatch.store._leases import Leases
from claudebatch.store._worker import Worker, enqueue

from ..sqlite.helpers import dataset

REQUESTS = 240
PER_BATCH = 12
MAX_IN_FLIGHT = 60


#: The emulator's processing queue holds fewer requests than the job lets fly: workers
#: meet 429s and wait them out.
QUEUE_LIMIT = 36


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    # creates answered slowly (a kill lands between the intent and the batch id) or
    # never (the batch is made, the answer lost)
    faults = Faults(slow=0.4, slow_seconds=0.8, drop_create=0.1, endpoints={"create"})
    with Emulator(rate=15.0, seed=11, faults=faults, queue_limit=QUEUE_LIMIT) as emu:
        yield emu


def client_of(emu: Emulator) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False)


def open_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if backend == "sqlite":
        from claudebatch_sqlite import SQLiteStore

        return str(tmp_path / "jobs.db"), SQLiteStore(tmp_path / "jobs.db")
    from claudebatch_postgres import PostgresStore

    dsn = request.getfixturevalue("postgres_dsn")
    return dsn, PostgresStore(dsn)


def start_worker(location: str, emulator: Emulator, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD"}
    env["ANTHROPIC_API_KEY"] = "emulator"
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "claudebatch", "worker", "--store", location, "--job",
             "sweep", "--lease", "1.5", "--poll-interval", "0.05", "--base-url", emulator.url],
            env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_workers_killed_at_random_pay_no_batch_twice(backend: str, emulator: Emulator,
                                                     tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    location, store = open_store(backend, tmp_path, request)
    client = client_of(emulator)
    planned = enqueue(store, client, dataset(REQUESTS), name="sweep",
                      max_batch_requests=PER_BATCH, max_in_flight=MAX_IN_FLIGHT)
    assert planned == REQUESTS // PER_BATCH
    log = tmp_path / "workers.log"
    workers: List[subprocess.Popen[bytes]] = [start_worker(location, emulator, log)
                                               for _ in range(3)]
    chance = random.Random(7)
    kills = 0
    deadline = time.monotonic() + 120
    try:
        while store.job("sweep").state != "done":
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.4)
            if kills < 12:
                victim = chance.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                kills += 1
                workers[victim] = start_worker(location, emulator, log)
            for i, worker in enumerate(workers):
                if worker.poll() is not None:  # finished its share: start it again
                    workers[i] = start_worker(location, emulator, log)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert len(emulator.batch_ids) == planned  # no batch created twice
    out = tmp_path / "out.jsonl"
    written, missing = store.export("sweep", str(out))
    ids = [json.loads(line)["custom_id"] for line in out.read_text().splitlines()]
    assert (written, missing) == (REQUESTS, 0)
    assert sorted(ids) == sorted(r["custom_id"] for r in dataset(REQUESTS))  # each once
    info = store.job("sweep")
    assert info.counts == {"succeeded": REQUESTS} and all(b.results_done for b in info.batches)
    assert kills >= 3
    assert emulator.queue_refusals > 0 and "queue is full" in log.read_text()
    assert emulator.peak_in_flight <= QUEUE_LIMIT
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_status_page_shows_workers_and_their_leases(backend: str, emulator: Emulator,
                                                        tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    from claudebatch.store._serve import jobs_document

    _, store = open_store(backend, tmp_path, request)
    client = client_of(emulator)
    enqueue(store, client, dataset(24), name="sweep", max_batch_requests=PER_BATCH)
    leases = Leases(store.db)
    now = time.time()
    leases.register_worker("w-1", "host-a", 42, None, now)
    assert leases.claim_create("w-1", now, 60.0, None, None) is not None
    doc = jobs_document(store)
    (worker,) = doc["workers"]
    assert (worker["id"], worker["host"], worker["state"]) == ("w-1", "host-a", "working")
    assert worker["leases"] == ["sweep pass 1 batch 0 (creating)"]
    assert doc["jobs"][0]["owner"] == "1 worker(s) on it now"
    leases.stop_worker("w-1", time.time())  # signing off lets its leases go
    assert jobs_document(store)["workers"][0]["leases"] == []
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_workers_keep_a_job_under_its_max_in_flight(backend: str, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    _, store = open_store(backend, tmp_path, request)
    with Emulator(rate=300.0, seed=3) as emu:  # no queue limit: only the job's paces it
        client = client_of(emu)
        enqueue(store, client, dataset(96), name="sweep", max_batch_requests=PER_BATCH,
                max_in_flight=2 * PER_BATCH)
        workers = [Worker(store if i == 0 else type(store)(*_args(store)), client,
                          job="sweep", check_interval=0.02) for i in range(3)]
        threads = [threading.Thread(target=w.run) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert store.job("sweep").state == "done"
        assert emu.peak_in_flight <= 2 * PER_BATCH
        assert len(emu.batch_ids) == 96 // PER_BATCH
        assert sum(w.batches_done for w in workers) == 96 // PER_BATCH
    store.close()


def _args(store: Any) -> List[Any]:
    """What opens another connection to the same store (a worker of its own)."""
    return [getattr(store, "path", None) or store.db.dsn]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_create_sent_by_a_worker_that_died_is_adopted_not_resent(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    _, store = open_store(backend, tmp_path, request)
    with Emulator(rate=1000.0, seed=3) as emu:
        client = client_of(emu)
        enqueue(store, client, dataset(12), name="sweep", max_batch_requests=PER_BATCH)
        # a worker took the batch, recorded its intent, sent the create and died before
        # recording the batch id; its lease has run out since
        leases = Leases(store.db)
        sent = time.time() - 5
        job_id = leases.claim_create("dead", sent, 1.0, None, None)[0]
        assert leases.record_intent(job_id, 1, 0, "dead", sent)
        made = client.create(dataset(12))
        worker = Worker(store, client, job="sweep", check_interval=0.02)
        assert worker.run() == 1
        assert emu.batch_ids == [made.id]  # adopted: nothing sent again
        assert store.job("sweep").batches[0].batch_id == made.id
        assert store.job("sweep").counts == {"succeeded": 12}
    store.close()


def test_a_queue_full_wait_is_bounded(tmp_path: Path) -> None:
    from claudebatch.policies import MAX_QUEUE_RETRY_AFTER

    _, store = open_store("sqlite", tmp_path, None)  # type: ignore[arg-type]
    faults = Faults(rate_limit=1.0, retry_after=1e9, endpoints={"create"})
    with Emulator(rate=1000.0, seed=3, faults=faults) as emu:
        client = client_of(emu)
        enqueue(store, client, dataset(12), name="sweep", max_batch_requests=PER_BATCH)
        worker = Worker(store, client, job="sweep", check_interval=0.02)
        assert worker.step()  # the create meets a 429: the batch waits in the store
        (after,) = store.db.execute("SELECT next_check_at FROM batches").fetchone()
        # a nonsense retry-after (31 years) is waited an hour at most, as a run waits it
        assert 0 < after - time.time() <= MAX_QUEUE_RETRY_AFTER
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_interrupted_enqueue_does_not_keep_a_worker_waiting(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from claudebatch.store import StoreError
    from claudebatch.store._fingerprint import of_job

    _, store = open_store(backend, tmp_path, request)
    with Emulator(rate=1000.0, seed=3) as emu:
        client = client_of(emu)
        job = client.job(dataset(12), name="sweep")
        # an enqueue killed after making the job's row, before its last batch: no lock held
        Leases(store.db).create_worker_job("sweep", of_job(job.context), {}, time.time())
        job.close()
        done = threading.Event()
        worker = Worker(store, client, check_interval=0.02)  # every job, until idle
        thread = threading.Thread(target=lambda: (worker.run(), done.set()), daemon=True)
        thread.start()
        assert done.wait(10), "a worker waited for an enqueue that will never finish"
        with pytest.raises(StoreError, match="interrupted"):
            Worker(store, client, job="sweep").run()
        assert emu.batch_ids == []
    store.close()


@pytest.mark.parametrize("endpoint", ["retrieve", "results", "list"])
def test_a_worker_outlives_server_errors(endpoint: str, tmp_path: Path) -> None:
    _, store = open_store("sqlite", tmp_path, None)  # type: ignore[arg-type]
    faults = Faults(server_error=0.6, endpoints={endpoint})
    with Emulator(rate=1000.0, seed=5, faults=faults) as emu:
        # no retries of the client's own: each 500 reaches the worker at once, no sleeping
        client = BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False,
                             max_retries=0)
        enqueue(store, client, dataset(120), name="sweep", max_batch_requests=PER_BATCH)
        if endpoint == "list":  # a worker died after its intent: the next one lists
            leases = Leases(store.db)
            sent = time.time() - 5
            job_id = leases.claim_create("dead", sent, 1.0, None, None)[0]
            assert leases.record_intent(job_id, 1, 0, "dead", sent)
        worker = Worker(store, client, job="sweep", check_interval=0.02)
        worker._interval = lambda *_: 0.05  # type: ignore[method-assign]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("claudebatch.store._worker.UNCONFIRMED_GRACE_SECONDS", 0.05)
            worker.run()  # a 500 past the client's retries is looked at again, not fatal
        assert store.job("sweep").state == "done"
        assert len(emu.batch_ids) == 120 // PER_BATCH
    store.close()


def test_a_worker_whose_lease_ran_out_does_not_send(tmp_path: Path) -> None:
    from claudebatch_sqlite import SQLiteStore


    store = SQLiteStore(tmp_path / "jobs.db")
    with Emulator(rate=1000.0, seed=3) as emu:
        client = client_of(emu)
        enqueue(store, client, dataset(12), name="sweep", max_batch_requests=PER_BATCH)
    leases, now = Leases(store.db), time.time()
    job_id = leases.claim_create("a", now, 1.0, None, None)[0]
    # "a" pauses (SIGSTOP) past its lease; "b" takes the batch over
    assert leases.claim_create("b", now + 2, 60.0, None, None) is not None
    assert not leases.record_intent(job_id, 1, 0, "a", now + 3)  # "a" wakes: not its own
    leases.release("a", job_id, 1, 0)  # nor can it let go of what "b" holds
    leases.requeue("a", job_id, 1, 0, after=now)
    row = store.db.execute("SELECT lease_owner, intent_at FROM batches").fetchone()
    assert tuple(row) == ("b", 0.0)
    assert leases.record_intent(job_id, 1, 0, "b", now + 3)
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_batch_made_by_a_worker_paused_past_its_lease_is_canceled(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    _, store = open_store(backend, tmp_path, request)
    with Emulator(rate=1.0, seed=3) as emu:  # slow: the batches stay in progress
        client = client_of(emu)
        enqueue(store, client, dataset(12), name="sweep", max_batch_requests=PER_BATCH)
        leases = Leases(store.db)
        job_id = leases.claim_create("b", time.time(), 60.0, None, None)[0]
        theirs = client.create(dataset(12))  # "b" made and recorded the batch
        assert leases.set_batch_id(job_id, 1, 0, theirs.id)
        mine = client.create(dataset(12))  # the paused worker's own create, sent late
        worker = Worker(store, client, job="sweep")
        assert not worker._record(job_id, 1, 0, mine)
        assert client.retrieve(mine.id).processing_status in ("canceling", "ended")
        assert store.job("sweep").batches[0].batch_id == theirs.id
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_lost_create_taken_for_anothers_batch_is_disowned_and_sent(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    _, store = open_store(backend, tmp_path, request)
    with Emulator(rate=1000.0, seed=3) as emu:
        client = client_of(emu)
        enqueue(store, client, dataset(12), name="sweep", max_batch_requests=PER_BATCH)
        leases = Leases(store.db)
        sent = time.time() - 5  # a worker recorded its intent and died before the POST
        job_id = leases.claim_create("dead", sent, 1.0, None, None)[0]
        assert leases.record_intent(job_id, 1, 0, "dead", sent)
        other = client.create(dataset(12, prefix="other-team"))  # same size, same moment
        worker = Worker(store, client, job="sweep", check_interval=0.02)
        assert worker.run() == 1
        made = [b for b in emu.batch_ids if b != other.id]
        assert len(made) == 1 and store.job("sweep").batches[0].batch_id == made[0]
        assert store.job("sweep").counts == {"succeeded": 12}
        assert other.id in store.records.known_batch_ids()  # never taken again
        assert not [line for _, cid, line in store.results("sweep")
                    if cid.startswith("other-team")]
    store.close()


def test_sigterm_stops_a_worker_and_releases_its_leases(tmp_path: Path) -> None:
    from claudebatch_sqlite import SQLiteStore


    store = SQLiteStore(tmp_path / "jobs.db")
    with Emulator(rate=2.0, seed=3) as emu:  # slow: the batch stays in progress
        client = client_of(emu)
        enqueue(store, client, dataset(24), name="sweep", max_batch_requests=PER_BATCH)
        worker = start_worker(str(tmp_path / "jobs.db"), emu, tmp_path / "w.log")
        deadline = time.monotonic() + 30
        while not any(b.batch_id for b in store.job("sweep").batches):
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 130
        assert "stopped on a signal; its leases are released" in (tmp_path / "w.log").read_text()
        (gone,) = Leases(store.db).workers()
        assert gone["state"] == "stopped" and gone["leases"] == []
    store.close()


def test_worker_and_enqueue_refusals_are_one_line(tmp_path: Path,
                                                  install_cli: Callable[..., None],
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import claudebatch_sqlite.plugin as sqlite_plugin
    from claudebatch_sqlite import SQLiteStore

    from claudebatch.cli import main

    install_cli(sqlite_plugin)
    db = str(tmp_path / "jobs.db")
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in dataset(4)))
    with Emulator(rate=1000.0, seed=3) as emu:
        BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False,
                    plugins=[SQLiteStore(db)]).run(dataset(4), name="plain",
                                                   output=str(tmp_path / "o.jsonl"))
    refusals = [  # enqueueing needs no API key
        (["run", str(source), "--enqueue", "--dry-run", "--name", "x", "--store", db],
         "--enqueue and --dry-run: choose one"),
        (["run", str(source), "--enqueue", "--store", db], "--enqueue needs --name")]
    for argv, says in refusals:
        assert main(argv) == 2  # a usage error
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")  # a worker does
    for argv, says in ((["worker", "--store", db, "--job", "plain"], "not enqueued for workers"),
                       (["worker", "--store", db, "--job", "nope"], "no job 'nope'")):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err


def test_client_enqueue_uses_the_store_among_its_plugins(tmp_path: Path) -> None:
    from claudebatch_sqlite import SQLiteStore

    from claudebatch import ConfigurationError

    store = SQLiteStore(tmp_path / "jobs.db")
    with Emulator(rate=1000.0, seed=3) as emu:
        with pytest.raises(ConfigurationError, match="enqueue needs a job store"):
            client_of(emu).enqueue(dataset(4), name="sweep")
        client = BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False,
                             plugins=[store])
        assert client.enqueue(dataset(24), name="sweep", max_batch_requests=PER_BATCH) == 2
        assert Worker(store, client_of(emu), job="sweep", check_interval=0.02).run() == 2
    assert store.job("sweep").counts == {"succeeded": 24}
    store.close()


def test_a_job_whose_last_collector_died_before_finishing_it_is_finished(
        tmp_path: Path) -> None:
    from claudebatch_sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "jobs.db")
    with Emulator(rate=1000.0, seed=3) as emu:
        enqueue(store, client_of(emu), dataset(12), name="sweep",
                max_batch_requests=PER_BATCH)
        assert Worker(store, client_of(emu), job="sweep", check_interval=0.02).run() == 1
        # as if the worker that stored the last results was killed before marking the job
        store.db.execute("UPDATE jobs SET state = 'running', ended_at = NULL")
        assert Worker(store, client_of(emu), job="sweep").run() == 0  # it finishes, no wait
    assert store.job("sweep").state == "done"
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_lost_create_holds_back_every_create_of_the_store(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two jobs of same-size batches: while one job's create may have been sent, no other
    create leaves this store, so looking for it can never find the other job's batch."""
    _, store = open_store(backend, tmp_path, request)
    with Emulator(rate=1000.0, seed=3) as emu:
        for name in ("job-a", "job-b"):
            enqueue(store, client_of(emu), dataset(24), name=name,
                    max_batch_requests=PER_BATCH)
    leases, now = Leases(store.db), time.time()
    job_a = leases.claim_create("dead", now - 5, 1.0, "job-a", None)[0]
    assert leases.record_intent(job_a, 1, 0, "dead", now - 5)  # sent, then the worker died
    assert leases.claim_create("w", now, 60.0, "job-b", None) is None  # job-b waits
    claim = leases.claim_create("w", now, 60.0, None, None)
    assert claim is not None and claim[1] == "job-a" and claim[5] > 0  # resolved first
    assert leases.claim_create("w2", now, 60.0, None, None) is None  # one at a time
    store.close()


def test_a_failed_job_still_collects_the_batches_it_paid_for(
        tmp_path: Path, install_cli: Callable[..., None],
        capsys: pytest.CaptureFixture[str]) -> None:
    import claudebatch_sqlite.plugin as sqlite_plugin
    from claudebatch_sqlite import SQLiteStore

    from claudebatch.cli import main

    store = SQLiteStore(tmp_path / "jobs.db")
    with Emulator(rate=1000.0, seed=3) as emu:
        enqueue(store, client_of(emu), dataset(24), name="sweep",
                max_batch_requests=PER_BATCH)
        worker = Worker(store, client_of(emu), job="sweep", check_interval=0.02)
        assert worker.step()  # batch 0 is created (and paid for)
        job_id = store.records.job("sweep").id
        Leases(store.db).fail_job(job_id, time.time(), "pass 1 batch 1: HTTP 400 refused")
        assert worker.run() == 1  # batch 0 is still collected, then the worker stops
    info = store.job("sweep")
    assert info.state == "failed" and info.counts == {"succeeded": PER_BATCH}
    install_cli(sqlite_plugin)
    assert main(["job", "sweep", "--store", str(tmp_path / "jobs.db")]) == 0
    shown = capsys.readouterr().out
    assert "error     pass 1 batch 1: HTTP 400 refused" in shown
    assert "(never sent: the job failed)" in shown
    store.close()
