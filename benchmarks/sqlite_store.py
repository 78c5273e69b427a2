"""How fast the SQLite store takes results in, as a job streams them.

Drives ``SQLiteStore``'s hooks with a real Job the way ``Job.run`` does: the job
writes each result line to its output and calls ``on_result``; the store follows
the output and commits every ``--commit-every`` results, and once more at
``on_batch_end``. Prints results/s into the store (the job's own writing is timed
separately and taken out), and requests/s for recording a batch before its create.

    python benchmarks/sqlite_store.py [--results 200000] [--text-bytes 400] [--commit-every 1000]

The baseline, in the same run (issue #19): a bare ``sqlite3`` ``executemany`` of the same
lines into a table of the same shape (the store's own ``results`` table and its indexes,
read back from the store's file), with the store's journal mode, synchronous and page
size, committed every ``--commit-every`` rows. Issue #19's goal: >= 80,000 results/s.
Importable: ``measure(results, text_bytes, commit_every, repeat) -> dict``.

With ``--emulator``, it also runs a whole job against the emulator with and
without the store, to show what the store adds end to end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient, MessageBatch, PendingBatch, Request, RequestCounts
from claudebatch._results import to_result


def requests(count: int) -> List[Request]:
    return [Request(f"req-{i:07d}", {"model": "claude-haiku-4-5", "max_tokens": 256,
                                      "messages": [{"role": "user", "content": f"question {i}"}]})
            for i in range(count)]


def result_line(custom_id: str, text_bytes: int) -> Dict[str, Any]:
    """A succeeded result shaped like the API's (and the emulator's)."""
    return {"custom_id": custom_id, "result": {"type": "succeeded", "message": {
        "id": f"msg_{custom_id}", "type": "message", "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": "x" * text_bytes, "citations": None}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 120, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 90,
                  "service_tier": "batch"}}}}


def batch(batch_id: str, count: int, status: str) -> MessageBatch:
    now = dt.datetime.now(dt.timezone.utc)
    ended = status == "ended"
    return MessageBatch(
        id=batch_id, processing_status=status,
        request_counts=RequestCounts(processing=0 if ended else count,
                                     succeeded=count if ended else 0),
        created_at=now, expires_at=now + dt.timedelta(days=1),
        ended_at=now if ended else None)


def stream(job: Any, lines: List[bytes], values: List[Any], store: Any) -> float:
    """The job's collection loop: write each line, call on_result (with the line's dict,
    as the job hands it to a store); seconds taken."""
    started = time.perf_counter()
    with open(job.output, "wb") as out:
        for line, value in zip(lines, values):
            out.write(line)
            if store is not None:
                store.on_result(raw=value, line=line[:-1], context=job.context)
        out.flush()
        if store is not None:
            store.on_batch_end(batch=batch("msgbatch_bench", len(lines), "ended"),
                               context=job.context, complete=True)
    return time.perf_counter() - started


#: What the bare baseline copies from the store: its table and indexes, and its pragmas.
Shape = Dict[str, Any]


def store_shape(conn: sqlite3.Connection) -> Shape:
    schema = [sql for (sql,) in conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'results' AND sql IS NOT NULL "
        "ORDER BY type DESC")]  # the table, then its indexes
    columns = [(row[1], bool(row[3])) for row in conn.execute("PRAGMA table_info(results)")]
    pragmas = {name: conn.execute(f"PRAGMA {name}").fetchone()[0]
               for name in ("page_size", "journal_mode", "synchronous")}
    return {"schema": schema, "columns": columns, "pragmas": pragmas}


def bare_rate(shape: Shape, lines: List[bytes], custom_ids: List[str], commit_every: int,
              repeat: int) -> float:
    """results/s of a bare ``executemany`` of the same lines into a same-shape table."""
    def value(name: str, i: int) -> Any:
        known = {"job_id": 1, "pass": 1, "type": "succeeded"}
        if name == "custom_id":
            return custom_ids[i]
        if name == "line":
            return lines[i][:-1]
        return known.get(name, "")  # another NOT NULL column: any value

    columns = [name for name, not_null in shape["columns"]
               if name in ("job_id", "pass", "type", "custom_id", "line") or not_null]
    sql = (f"INSERT INTO results ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    rows = [tuple(value(name, i) for name in columns) for i in range(len(lines))]
    best = math.inf
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            conn = sqlite3.connect(f"{tmp}/bare.db", isolation_level=None)
            conn.execute(f"PRAGMA page_size = {shape['pragmas']['page_size']}")
            conn.execute(f"PRAGMA journal_mode = {shape['pragmas']['journal_mode']}")
            conn.execute(f"PRAGMA synchronous = {shape['pragmas']['synchronous']}")
            for statement in shape["schema"]:
                conn.execute(statement)
            started = time.perf_counter()
            for start in range(0, len(rows), commit_every):
                conn.execute("BEGIN")
                conn.executemany(sql, rows[start:start + commit_every])
                conn.execute("COMMIT")
            best = min(best, time.perf_counter() - started)
            stored = conn.execute("SELECT count(*) FROM results").fetchone()[0]
            conn.close()
            if stored != len(rows):
                raise SystemExit(f"bare: expected {len(rows)} rows, found {stored}")
    return len(rows) / best


def store_rate(count: int, text_bytes: int, commit_every: int, repeat: int,
               baseline: bool = False) -> Tuple[float, float, Optional[float]]:
    """results/s into the store, requests/s of recording a batch, and (with ``baseline``)
    results/s of the bare ``executemany``."""
    reqs = requests(count)
    values = [result_line(r.custom_id, text_bytes) for r in reqs]
    lines = [json.dumps(v, separators=(",", ":")).encode() + b"\n" for v in values]
    for value in values:
        to_result(value)  # lines the client would read
    best_store = best_intent = math.inf
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            client = BatchClient(api_key="bench", base_url="http://127.0.0.1:9",
                                 load_entry_points=False)
            job = client.job(reqs, name="bench", output=f"{tmp}/out.jsonl",
                             max_batch_requests=min(count, 100_000))
            job.total_requests = count
            store = SQLiteStore(f"{tmp}/store.db", commit_every=commit_every)
            store.resume_state(context=job.context)
            job.pass_number = 1
            plain = PendingBatch.from_requests(reqs)
            started = time.perf_counter()
            plain.write_body(on_disk=True)  # the job's own writing of the body
            baseline_body = time.perf_counter() - started
            pending = PendingBatch.from_requests(reqs)
            started = time.perf_counter()
            store.before_pass(batches=[pending], context=job.context)  # rows as written
            pending.write_body(on_disk=True)
            store.before_submit(requests=pending, context=job.context)  # the intent
            # the batch's id, once the rows recorded during the create are all in
            store.after_submit(batch=batch("msgbatch_bench", count, "in_progress"),
                               requests=pending, context=job.context)
            best_intent = min(best_intent,
                              max(time.perf_counter() - started - baseline_body, 1e-9))
            own_writing = stream(job, lines, values, None)  # the job's own writing
            with_store = stream(job, lines, values, store)
            stored = store.conn.execute("SELECT count(*) FROM results").fetchone()[0]
            if stored != count:
                raise SystemExit(f"expected {count} stored results, found {stored}")
            best_store = min(best_store, max(with_store - own_writing, 1e-9))
            shape = store_shape(store.conn)
            store.close()
    bare = None
    if baseline:
        bare = bare_rate(shape, lines, [r.custom_id for r in reqs], commit_every, repeat)
    return count / best_store, count / best_intent, bare


def end_to_end(count: int) -> None:
    from claudebatch.emulator import Emulator

    reqs = requests(count)
    with Emulator(rate=math.inf, seed=1) as emu, tempfile.TemporaryDirectory() as tmp:
        for label, plugins in (("without the store", []),
                               ("with the store", [SQLiteStore(f"{tmp}/s.db")])):
            client = BatchClient(api_key="bench", base_url=emu.url, plugins=plugins,
                                 load_entry_points=False)
            started = time.perf_counter()
            report = client.run(reqs, name=f"e2e-{len(plugins)}", output=f"{tmp}/o.jsonl",
                                poll_interval=0.01)
            elapsed = time.perf_counter() - started
            assert report.complete
            print(f"  whole job, {count:,} requests, {label}: {elapsed:.2f} s "
                  f"({count / elapsed:,.0f} requests/s)")


def measure(results: int = 200_000, text_bytes: int = 400, commit_every: int = 1000,
            repeat: int = 3) -> Dict[str, Any]:
    """The store's rates and the bare executemany's, best of ``repeat``, as a dict."""
    stored, intents, bare = store_rate(results, text_bytes, commit_every, repeat,
                                       baseline=True)
    return {"results": results, "text_bytes": text_bytes, "commit_every": commit_every,
            "store_rps": stored, "intent_rps": intents, "bare_rps": bare,
            "ratio": stored / bare if bare else None}


def print_figures(figures: Dict[str, Any]) -> None:
    print(f"SQLiteStore, {figures['results']:,} results of ~{figures['text_bytes'] + 400} "
          f"bytes, commit every {figures['commit_every']}:")
    print(f"  results into the store: {figures['store_rps']:,.0f} results/s "
          f"(issue #19 goal >= 80,000)")
    print(f"  bare sqlite3 executemany, same rows, same-shape table: "
          f"{figures['bare_rps']:,.0f} results/s; store / bare: {figures['ratio']:.2f}x")
    print(f"  recording a batch before its create: {figures['intent_rps']:,.0f} requests/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--results", type=int, default=200_000)
    parser.add_argument("--text-bytes", type=int, default=400,
                        help="length of each answer's text (a line is ~text + 400 bytes)")
    parser.add_argument("--commit-every", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--emulator", type=int, default=0, metavar="N",
                        help="also run a whole job of N requests against the emulator")
    args = parser.parse_args()
    print_figures(measure(args.results, args.text_bytes, args.commit_every, args.repeat))
    if args.emulator:
        end_to_end(args.emulator)


if __name__ == "__main__":
    main()
