"""A job of 1,000,000 requests run by 3 workers, one killed every 20 s, against a queue limit.

The emulator (in this process, on loopback) refuses creates past ``--queue-limit``
requests waiting; a PostgreSQL server (pgserver) holds the store. The job is enqueued
with ``claudebatch run --enqueue``; three ``claudebatch worker`` processes run it, and
every 20 s one of them is killed with SIGKILL and started again. Printed: wall time,
batches created against batches planned, results exported (each request once), the
emulator's peak requests in flight against the limit, and the store's throughput
(results/s into PostgreSQL and SQLite, each against a bare ``executemany``).

    python benchmarks/workers_scale.py [--requests 1000000] [--queue-limit 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from claudebatch.emulator import Emulator  # noqa: E402


def write_requests(path: Path, count: int) -> None:
    with open(path, "w") as out:
        for i in range(count):
            out.write(json.dumps({"custom_id": f"r-{i:07d}", "params": {
                "model": "claude-haiku-4-5", "max_tokens": 16,
                "messages": [{"role": "user", "content": f"question {i}"}]}}) + "\n")


def cli(*args: str, env: dict[str, str], **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "claudebatch", *args], env=env, **kw)


def store_throughput(location: str, count: int = 200_000) -> Tuple[float, float]:
    """Results/s through the store layer, and a bare executemany of the same rows."""
    from claudebatch.store import StoreOptions, open_store
    from claudebatch.store._fingerprint import Fingerprint
    from claudebatch.store._records import Pending

    store = open_store(location, StoreOptions())
    records = store.records
    job = records.create_job(f"tp-{time.time_ns()}", Fingerprint("items", "x", count), {},
                             "o.jsonl", time.time())
    line = json.dumps({"custom_id": "x", "result": {"type": "succeeded", "message": {
        "content": [{"type": "text", "text": "answer " * 100}]}}}).encode()
    rows = [(i, f"r-{i:07d}", "{}") for i in range(count)]
    for start in range(0, count, 100_000):
        records.add_requests(job, 1, start // 100_000, rows[start:start + 100_000],
                             first=True)
    started = time.perf_counter()
    for start in range(0, count, 1000):
        records.insert_results(job, 1, [(f"r-{i:07d}", "succeeded", line)
                                        for i in range(start, min(count, start + 1000))],
                               Pending())
    ours = count / (time.perf_counter() - started)
    db = store.db
    db.execute("CREATE TABLE IF NOT EXISTS bare (custom_id TEXT, type TEXT, line "
               + ("BYTEA" if db.kind == "postgresql" else "BLOB") + ")")
    started = time.perf_counter()
    for start in range(0, count, 1000):
        with db.transaction():
            db.executemany("INSERT INTO bare VALUES (?, ?, ?)",
                           [(f"r-{i:07d}", "succeeded", line)
                            for i in range(start, min(count, start + 1000))])
    bare = count / (time.perf_counter() - started)
    store.close()
    return ours, bare


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--queue-limit", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=20_000.0,
                        help="requests the emulator processes per second")
    args = parser.parse_args()
    import pgserver

    work = Path(tempfile.mkdtemp(prefix="cb-scale-"))
    server = pgserver.get_server(str(work / "pg"), cleanup_mode="delete")
    dsn = server.get_uri()
    source = work / "requests.jsonl"
    write_requests(source, args.requests)
    print(f"input: {args.requests:,} requests, {source.stat().st_size / 1e6:,.1f} MB; queue "
          f"limit {args.queue_limit:,}; {args.workers} workers, one killed every "
          f"{args.kill_every:g} s", flush=True)
    env = {**os.environ, "ANTHROPIC_API_KEY": "emulator", "CLAUDEBATCH_STORE": dsn,
           "XDG_STATE_HOME": str(work / "state")}
    env.pop("CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD", None)
    with Emulator(rate=args.rate, seed=1, queue_limit=args.queue_limit) as emu:
        started = time.perf_counter()
        enq = cli("run", str(source), "--enqueue", "--name", "bench", "--max-in-flight",
                  str(args.queue_limit), "--poll-interval", "2", "--base-url", emu.url,
                  env=env)
        assert enq.wait() == 0
        enqueued = time.perf_counter() - started
        print(f"enqueue: {enqueued:.1f} s ({args.requests / enqueued:,.0f} requests/s)",
              flush=True)
        from claudebatch_postgres import PostgresStore

        store = PostgresStore(dsn)
        planned = len(store.job("bench").batches)
        log = open(work / "workers.log", "ab")
        worker_args = ("worker", "--job", "bench", "--lease", "10", "--base-url", emu.url)
        workers: List[subprocess.Popen[bytes]] = [
            cli(*worker_args, env=env, stdout=log, stderr=subprocess.STDOUT)
            for _ in range(args.workers)]
        chance = random.Random(1)
        kills = 0
        next_kill = time.perf_counter() + args.kill_every
        started = time.perf_counter()
        while store.job("bench").state != "done":
            time.sleep(1.0)
            if time.perf_counter() >= next_kill:
                victim = chance.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                kills += 1
                workers[victim] = cli(*worker_args, env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
                next_kill += args.kill_every
            for i, worker in enumerate(workers):
                if worker.poll() is not None and store.job("bench").state != "done":
                    workers[i] = cli(*worker_args, env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
        wall = time.perf_counter() - started
        for worker in workers:
            worker.kill()
            worker.wait()
        out = work / "out.jsonl"
        written, missing = store.export("bench", str(out))
        ids = set()
        lines = 0
        with open(out, "rb") as handle:
            for line in handle:
                ids.add(json.loads(line)["custom_id"])
                lines += 1
        print(f"workers: {wall:.1f} s from enqueued to done, {kills} kill(s)")
        print(f"batches created {len(emu.batch_ids)} / planned {planned}")
        print(f"results exported {written:,} lines, {len(ids):,} distinct custom_ids, "
              f"missing {missing}")
        print(f"peak requests in flight {emu.peak_in_flight:,} (limit {args.queue_limit:,}); "
              f"creates refused for a full queue: {emu.queue_refusals}")
        store.close()
    ours_pg, bare_pg = store_throughput(dsn)
    ours_lite, bare_lite = store_throughput(str(work / "tp.db"))
    print(f"store: PostgreSQL {ours_pg:,.0f} results/s (bare executemany {bare_pg:,.0f}: "
          f"{ours_pg / bare_pg:.2f}x); SQLite {ours_lite:,.0f} results/s (bare "
          f"{bare_lite:,.0f}: {ours_lite / bare_lite:.2f}x)")
    server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
