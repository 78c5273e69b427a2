"""How fast the SQLite store takes results in, as a job streams them.

Drives ``SQLiteStore``'s hooks with a real Job the way ``Job.run`` does: the job
writes each result line to its output and calls ``on_result``; the store follows
the output and commits every ``--commit-every`` results, and once more at
``on_batch_end``. Prints results/s into the store (the job's own writing is timed
separately and taken out), and requests/s for recording a batch before its create.

    python benchmarks/sqlite_store.py [--results 200000] [--text-bytes 400] [--commit-every 1000]

With ``--emulator``, it also runs a whole job against the emulator with and
without the store, to show what the store adds end to end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

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


def stream(job: Any, lines: List[bytes], results: List[Any], store: Any) -> float:
    """The job's collection loop: write each line, call on_result; seconds taken."""
    started = time.perf_counter()
    with open(job.output, "wb") as out:
        for line, result in zip(lines, results):
            out.write(line)
            if store is not None:
                store.on_result(result=result, line=line[:-1], context=job.context)
        out.flush()
        if store is not None:
            store.on_batch_end(batch=batch("msgbatch_bench", len(lines), "ended"),
                               context=job.context, complete=True)
    return time.perf_counter() - started


def store_rate(count: int, text_bytes: int, commit_every: int, repeat: int
               ) -> Tuple[float, float]:
    reqs = requests(count)
    values = [result_line(r.custom_id, text_bytes) for r in reqs]
    lines = [json.dumps(v, separators=(",", ":")).encode() + b"\n" for v in values]
    results = [to_result(v) for v in values]
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
            best_intent = min(best_intent,
                              max(time.perf_counter() - started - baseline_body, 1e-9))
            store.after_submit(batch=batch("msgbatch_bench", count, "in_progress"),
                               requests=pending, context=job.context)
            baseline = stream(job, lines, results, None)  # the job's own writing
            with_store = stream(job, lines, results, store)
            stored = store.conn.execute("SELECT count(*) FROM results").fetchone()[0]
            if stored != count:
                raise SystemExit(f"expected {count} stored results, found {stored}")
            best_store = min(best_store, max(with_store - baseline, 1e-9))
            store.close()
    return count / best_store, count / best_intent


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
    results, intents = store_rate(args.results, args.text_bytes, args.commit_every,
                                  args.repeat)
    print(f"SQLiteStore, {args.results:,} results of ~{args.text_bytes + 400} bytes, "
          f"commit every {args.commit_every}:")
    print(f"  results into the store: {results:,.0f} results/s (target >= 50,000)")
    print(f"  recording a batch before its create: {intents:,.0f} requests/s")
    if args.emulator:
        end_to_end(args.emulator)


if __name__ == "__main__":
    main()
