"""Rows in, tables out, measured: a big Parquet dry run, and a job writing Parquet.

1. ``--rows`` (default 1,000,000) rows of Parquet through ``run --dry-run`` with a
   template (read, render, validate, cut; nothing sent), in a child process:
   rows/s and peak RSS (VmHWM). Baseline, same run, same child setup: a bare loop
   a user would write (pyarrow ``iter_batches`` -> ``to_pylist`` -> the same Jinja2
   template -> ``json.dumps`` of each request), which checks nothing.
2. ``--job-rows`` (default 100,000) rows end to end against the emulator (loopback),
   writing a Parquet table; against the same requests as a JSONL file of requests
   writing JSONL result lines (the job before tables existed).

    python benchmarks/rows_tables.py [--rows 1000000] [--job-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pyarrow as pa
import pyarrow.parquet as pq
from peak_rss import PEAK_RSS_FUNCTION

from claudebatch import BatchClient, Rows
from claudebatch.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ("Classify this review of a {{ product }} ({{ stars }} stars) as positive, "
            "negative or mixed. Answer with one word.\n\nReview: {{ review }}")
MODEL = "claude-haiku-4-5"


def write_rows(path: Path, count: int) -> None:
    writer = None
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        table = pa.table({
            "id": [f"rev-{i:08d}" for i in range(start, start + n)],
            "product": [f"product {i % 977}" for i in range(start, start + n)],
            "stars": [i % 5 + 1 for i in range(start, start + n)],
            "review": [f"Review {i}: arrived on time, works as described, though the "
                       f"manual is thin and setup took {i % 60} minutes." for i in
                       range(start, start + n)]})
        if writer is None:
            writer = pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def child(code: str) -> Dict[str, Any]:
    script = PEAK_RSS_FUNCTION + textwrap.dedent(code) + \
        "\nimport json; print(json.dumps({'wall': wall, 'rss': peak_rss_mb(), 'n': n}))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def dry_run(path: Path) -> Dict[str, Any]:
    return child(f"""
        import time, os
        os.environ["CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        from claudebatch import BatchClient, Rows
        started = time.perf_counter()
        client = BatchClient(api_key="k", base_url="http://127.0.0.1:9",
                             load_entry_points=False)
        plan = client.job(Rows({str(path)!r}, template={TEMPLATE!r}, model={MODEL!r},
                               max_tokens=16, id_column="id")).dry_run()
        wall = time.perf_counter() - started
        n = plan.total_requests
    """)


def bare_loop(path: Path) -> Dict[str, Any]:
    return child(f"""
        import time, json
        import pyarrow.parquet as pq
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        started = time.perf_counter()
        template = ImmutableSandboxedEnvironment().from_string({TEMPLATE!r})
        n = 0
        for batch in pq.ParquetFile({str(path)!r}).iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                json.dumps({{"custom_id": row["id"], "params": {{"model": {MODEL!r},
                    "max_tokens": 16, "messages": [{{"role": "user",
                    "content": template.render(row)}}]}}}})
                n += 1
        wall = time.perf_counter() - started
    """)


def job(emulator: Emulator, source: Any, output: Path) -> float:
    client = BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False)
    started = time.perf_counter()
    report = client.run(source, output=str(output), poll_interval=0.05)
    wall = time.perf_counter() - started
    assert report.complete, report.summary()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--job-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        big = work / "reviews.parquet"
        write_rows(big, args.rows)
        print(f"input: {args.rows:,} rows of Parquet, {big.stat().st_size / 1e6:.1f} MB")
        ours, bare = dry_run(big), bare_loop(big)
        for label, got in (("claudebatch run --dry-run", ours),
                           ("bare pyarrow + jinja2 loop", bare)):
            print(f"{label:28} {got['n'] / got['wall']:>9,.0f} rows/s  "
                  f"{got['wall']:6.1f} s   peak RSS {got['rss']:6.1f} MB")
        print(f"rows/s claudebatch / bare loop: {bare['wall'] / ours['wall']:.2f}x"
              "   (the bare loop validates nothing and keeps no ids)")

        small = work / "job.parquet"
        write_rows(small, args.job_rows)
        tenth = dry_run(small)
        print(f"memory: peak RSS {tenth['rss']:.1f} MB at {args.job_rows:,} rows, "
              f"{ours['rss']:.1f} MB at {args.rows:,} "
              f"(+{ours['rss'] - tenth['rss']:.1f} MB for {args.rows - args.job_rows:,} more rows)")
        rows = Rows(small, template=TEMPLATE, model=MODEL, max_tokens=16, id_column="id")
        requests = work / "requests.jsonl"
        with open(requests, "w") as out:
            for batch in pq.ParquetFile(str(small)).iter_batches():
                for row in batch.to_pylist():
                    text = TEMPLATE.replace("{{ product }}", row["product"]).replace(
                        "{{ stars }}", str(row["stars"])).replace("{{ review }}", row["review"])
                    out.write(json.dumps({"custom_id": row["id"], "params": {
                        "model": MODEL, "max_tokens": 16,
                        "messages": [{"role": "user", "content": text}]}}) + "\n")
        with Emulator(rate=1e9, answer_tokens=(1, 8)) as emulator:
            table = job(emulator, rows, work / "out.parquet")
            lines = job(emulator, str(requests), work / "out.jsonl")
        print(f"\njob: {args.job_rows:,} rows against the emulator")
        print(f"rows + template -> Parquet table   {table:6.1f} s")
        print(f"JSONL of requests -> JSONL lines   {lines:6.1f} s")
        print(f"table job / requests job: {table / lines:.2f}x")


if __name__ == "__main__":
    main()
