"""A job larger than the workspace's queue, paced three ways, against an emulator that
enforces a queue limit (in this process, on loopback, on the real clock).

For each way (the job's own ``max_in_flight`` at the queue's limit, at half of it, and
none: the service's 429s alone), prints the wall time, the creates sent and refused, the
peak of requests in the queue (which must stay within the limit) and the result lines
(which must be every request, once).

    python benchmarks/queue_pacing.py [--requests 100000] [--batch 5000]
                                      [--queue-limit 25000] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch import BatchClient
from claudebatch.emulator import Emulator


def rows(count: int) -> Iterator[Dict[str, Any]]:
    for i in range(count):
        yield {"custom_id": f"req-{i:07d}", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 32,
            "messages": [{"role": "user", "content": f"Label ticket {i} in one word."}]}}


def run(args: argparse.Namespace, max_in_flight: Optional[int], out: Path) -> Dict[str, Any]:
    with Emulator(rate=args.rate, seed=7, queue_limit=args.queue_limit,
                  answer_tokens=(4, 8)) as emu:
        client = BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False)
        started = time.perf_counter()
        report = client.run(rows(args.requests), output=str(out), poll_interval=0.2,
                            max_batch_requests=args.batch, max_in_flight=max_in_flight or 0)
        wall = time.perf_counter() - started
        creates = emu.requests_to("create")
        with open(out) as handle:
            ids = [json.loads(line)["custom_id"] for line in handle]
        return {"wall": wall, "sent": len(creates), "refused": emu.queue_refusals,
                "batches": emu.batches_created, "peak": emu.peak_in_flight,
                "lines": len(ids), "once": len(set(ids)) == len(ids) == args.requests,
                "complete": report.complete}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--queue-limit", type=int, default=25_000)
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="requests processed per second, per batch")
    args = parser.parse_args()
    print(f"job of {args.requests:,} requests in batches of {args.batch:,}; the emulator's "
          f"queue holds {args.queue_limit:,}, each batch processes {args.rate:,.0f}/s")
    ways = [("max_in_flight = the limit", args.queue_limit),
            ("max_in_flight = half", args.queue_limit // 2),
            ("no limit of its own (429s)", None)]
    with tempfile.TemporaryDirectory() as folder:
        for i, (label, limit) in enumerate(ways):
            found = run(args, limit, Path(folder) / f"out-{i}.jsonl")
            print(f"  {label:28} wall {found['wall']:6.1f} s  creates sent {found['sent']:3} "
                  f"refused {found['refused']:3}  batches {found['batches']:3}  "
                  f"peak in queue {found['peak']:7,}  lines {found['lines']:,}"
                  f"{'' if found['once'] and found['complete'] else '  WRONG'}")


if __name__ == "__main__":
    main()
