"""Never pay twice, measured: a job, then its rerun with a share of the rows changed.

Runs a job of ``--requests`` requests against the emulator (in this process, on
loopback) with a SQLite store, then reruns it under another name with ``--changed``
of its rows edited. Prints, for each run, the batches created, the requests sent and
the wall time; then the cost of a store lookup per request (``find_answers`` over
every key of the job, a chunk at a time, as planning asks) and of computing the keys,
against a bare ``json.loads`` of the same requests as the baseline.

    python benchmarks/reuse_rerun.py [--requests 100000] [--changed 0.01]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient, answer_key
from claudebatch.emulator import Emulator


def rows(count: int) -> List[Dict[str, Any]]:
    return [{"custom_id": f"req-{i:07d}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 256,
        "system": "You label support tickets with one word.",
        "messages": [{"role": "user", "content": f"Ticket {i}: the export to CSV fails "
                                                 f"on page {i % 97} after the update."}]}}
            for i in range(count)]


def write(path: Path, data: List[Dict[str, Any]]) -> str:
    with open(path, "w") as out:
        for row in data:
            out.write(json.dumps(row) + "\n")
    return str(path)


def run(emulator: Emulator, store: SQLiteStore, source: str, name: str, out: Path
        ) -> Dict[str, Any]:
    client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                         load_entry_points=False)
    made = len(emulator.batch_ids)
    started = time.perf_counter()
    report = client.run(source, name=name, output=str(out / f"{name}.results.jsonl"),
                        poll_interval=0.05)
    wall = time.perf_counter() - started
    assert report.complete, report.summary()
    sent = sum(b.request_count for b in report.batches)
    return {"batches": len(emulator.batch_ids) - made, "sent": sent, "wall": wall,
            "reused": report.reused, "total": report.total_requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, Emulator(rate=200_000.0, seed=1) as emulator:
        out = Path(tmp)
        data = rows(args.requests)
        first_input = write(out / "first.jsonl", data)
        step = max(1, round(1 / args.changed)) if args.changed else 0
        edited = 0
        for i in range(0, len(data), step or len(data) + 1):
            data[i]["params"]["messages"][0]["content"] += " (edited)"
            edited += 1
        second_input = write(out / "second.jsonl", data)
        store = SQLiteStore(out / "store.db", warn=False)

        first = run(emulator, store, first_input, "first", out)
        second = run(emulator, store, second_input, "rerun", out)
        print(f"job of {args.requests:,} requests, then a rerun with {edited:,} rows edited "
              f"({edited / args.requests:.1%})")
        for label, figures in (("first run", first), ("rerun", second)):
            print(f"  {label:<10} batches created {figures['batches']:>3}   requests sent "
                  f"{figures['sent']:>9,}   reused {figures['reused']:>9,}   wall "
                  f"{figures['wall']:7.2f} s")
        print(f"  rerun / first run wall time: {second['wall'] / first['wall']:.2f}x; "
              f"requests sent: {second['sent'] / first['sent']:.2%}")

        # the parts of planning reuse adds, per request
        params = [row["params"] for row in data]
        lines = [json.dumps(p).encode() for p in params]
        started = time.perf_counter()
        for line in lines:
            json.loads(line)
        bare = (time.perf_counter() - started) / len(lines)
        started = time.perf_counter()
        keys = [answer_key(p) for p in params]
        keying = (time.perf_counter() - started) / len(keys)
        horizon = time.time() + 1
        started = time.perf_counter()
        for at in range(0, len(keys), 512):
            store.records.find_answers(keys[at:at + 512], horizon, None, count_hits=False)
        lookup = (time.perf_counter() - started) / len(keys)
        print(f"  per request: answer_key {keying * 1e6:.1f} us, store lookup "
              f"{lookup * 1e6:.1f} us (chunks of 512), baseline json.loads of the params "
              f"{bare * 1e6:.1f} us")
        store.close()


if __name__ == "__main__":
    main()
