"""Planning rate: a job's validation, spooling and splitting alone, small and large requests.

What ``claudebatch run IN --dry-run`` does before anything would be sent, through
``Job(client, path, output=...).dry_run()`` with no plugins: read and check every
request, spool it, split the batches and write each batch's body as a run would.
Two inputs: (a) 100,000 small requests (~0.75 KB each) and (b) large ones, by default
1,000 of ~200 KB (~200 MB). The baseline, in the same run, is a bare loop that reads the
file line by line, ``json.loads`` each line (stdlib json) and writes it to a temp file.
Prints requests/s and MB/s for both, and claudebatch / baseline. Issue #19's goals:
>= 100,000 requests/s on the small input, >= 200 MB/s on the large one.

    python benchmarks/planning_speed.py [--small 100000] [--large 1000]
        [--large-bytes 200000] [--repeat 3]

Importable: ``measure(small, large, large_bytes, repeat) -> dict``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_ratio, large_request, ticket_request, write_jsonl

from claudebatch import BatchClient
from claudebatch._job.run import Job


def claudebatch_plan(path: Path, workdir: Path) -> int:
    """The job's planning (``Job.dry_run``); the requests planned."""
    client = BatchClient(api_key="x", base_url="http://127.0.0.1:9", plugins=[],
                         load_entry_points=False)
    plan = Job(client, str(path), output=str(workdir / "out.jsonl")).dry_run()
    return int(plan.total_requests)


def bare_loop(path: Path, workdir: Path) -> int:
    """The baseline: read, ``json.loads`` and write every line."""
    count = 0
    loads = json.loads
    with open(path, "rb") as source, open(workdir / "bare.jsonl", "wb") as out:
        for line in source:
            loads(line)
            out.write(line)
            count += 1
    return count


def best_seconds(run: Callable[[Path, Path], int], path: Path, expected: int, repeat: int
                 ) -> float:
    best = math.inf
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="cb-plan-") as tmp:
            started = time.perf_counter()
            done = run(path, Path(tmp))
            best = min(best, time.perf_counter() - started)
        if done != expected:
            raise SystemExit(f"{run.__name__}: {done:,} requests, expected {expected:,}")
    return best


def one_input(label: str, path: Path, count: int, repeat: int) -> Dict[str, Any]:
    size = path.stat().st_size
    ours = best_seconds(claudebatch_plan, path, count, repeat)
    bare = best_seconds(bare_loop, path, count, repeat)
    return {"label": label, "requests": count, "mb": size / 1e6,
            "claudebatch_s": ours, "bare_s": bare,
            "claudebatch_rps": count / ours, "bare_rps": count / bare,
            "claudebatch_mbps": size / 1e6 / ours, "bare_mbps": size / 1e6 / bare,
            "ratio": bare / ours}


def measure(small: int = 100_000, large: int = 1_000, large_bytes: int = 200_000,
            repeat: int = 3) -> Dict[str, Any]:
    """Best of ``repeat`` for each side, each input; figures as a dict."""
    if not os.environ.get("XDG_STATE_HOME"):  # job state of the dry runs: not the user's
        os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="cb-bench-state-")
    figures: Dict[str, Any] = {"repeat": repeat}
    with tempfile.TemporaryDirectory(prefix="cb-plan-input-") as tmp:
        if small:
            path = Path(tmp) / "small.jsonl"
            write_jsonl(path, (ticket_request(i) for i in range(small)))
            figures["small"] = one_input("small", path, small, repeat)
            path.unlink()
        if large:
            path = Path(tmp) / "large.jsonl"
            write_jsonl(path, (large_request(i, large_bytes) for i in range(large)))
            figures["large"] = one_input("large", path, large, repeat)
    return figures


def print_figures(figures: Dict[str, Any]) -> None:
    print(f"planning (Job.dry_run, no plugins) against read + json.loads + write; "
          f"best of {figures['repeat']}")
    for key, goal in (("small", "goal >= 100,000 requests/s"), ("large", "goal >= 200 MB/s")):
        row = figures.get(key)
        if not row:
            continue
        each = row["mb"] * 1e6 / row["requests"]
        print(f"{key}: {row['requests']:,} requests of ~{each / 1000:,.1f} KB, "
              f"{row['mb']:.1f} MB   ({goal})")
        print(f"  claudebatch dry run   {row['claudebatch_rps']:>12,.0f} requests/s "
              f"{row['claudebatch_mbps']:>8.1f} MB/s   {row['claudebatch_s']:.2f} s")
        print(f"  bare json.loads loop  {row['bare_rps']:>12,.0f} requests/s "
              f"{row['bare_mbps']:>8.1f} MB/s   {row['bare_s']:.2f} s")
        print(f"  claudebatch / bare loop: {fmt_ratio(row['ratio'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000, help="small requests (0: skip)")
    parser.add_argument("--large", type=int, default=1_000, help="large requests (0: skip)")
    parser.add_argument("--large-bytes", type=int, default=200_000,
                        help="bytes of each large request")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    print_figures(measure(args.small, args.large, args.large_bytes, args.repeat))


if __name__ == "__main__":
    main()
