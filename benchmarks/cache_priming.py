"""What prompt-cache priming costs and saves, against the emulator.

The same job (the demo's triage tickets: one long system prompt shared by every
request) runs three times against a fresh emulator each: unmarked, marked by the
cache plugin, and marked and primed (``--cache-prime``). The emulator is told
that each request is in flight ``--latency`` seconds (``cache_latency``) at
``--rate`` requests per second: the requests that start before the first write
of their prefix is done each write it, as on the service, where a batch's
requests are processed together. The cost plugin prices every result (primers
included) from the packaged catalog. A shared fake clock runs the emulator and
the client, so nothing waits in real time.

    python benchmarks/cache_priming.py [--requests 2000] [--rate 100] [--latency 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch_cache import PromptCache
from claudebatch_cost import CostTracker, price_result

from claudebatch import BatchClient
from claudebatch._demo import support_tickets
from claudebatch.emulator import Emulator, ManualClock

MODEL = "claude-sonnet-5-5"


def run(mode: str, args: argparse.Namespace, folder: Path) -> Dict[str, Any]:
    clock = ManualClock()
    tracker = CostTracker()
    plugins: List[Any] = [tracker]
    cache = None
    if mode != "unmarked":
        cache = PromptCache(ttl="1h", prime=mode == "primed")
        plugins.append(cache)
    with Emulator(rate=args.rate, cache_latency=args.latency, seed=7, clock=clock) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, clock=clock, poll_interval=1.0,
                             load_entry_points=False, plugins=plugins)
        report = client.run(support_tickets(args.requests, model=MODEL),
                            output=str(folder / f"{mode}.jsonl"))
        primers = list(cache.primer_batch_ids) if cache is not None else []
        reader = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False)
        primer_usd = sum((price_result(result, tracker.table).batch_usd or Decimal(0)
                          for batch_id in primers for result in reader.results(batch_id)),
                         Decimal(0))
    assert report.all_succeeded, report.summary()
    tokens = tracker.totals.tokens  # every result the client saw: the primers' too
    return {"mode": mode, "batch_usd": tracker.total_usd, "primer_usd": primer_usd,
            "write": tokens["cache_write_5m"] + tokens["cache_write_1h"],
            "read": tokens["cache_read"], "primers": len(primers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s (default 100)")
    parser.add_argument("--latency", type=float, default=10.0,
                        help="seconds each request is in flight (default 10)")
    args = parser.parse_args()
    in_flight = int(args.rate * args.latency)
    print(f"{args.requests:,} requests on {MODEL}, one shared system prompt; emulator at "
          f"{args.rate:g} requests/s, each in flight {args.latency:g} s "
          f"(about {in_flight:,} at once)")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(mode, args, Path(tmp)) for mode in ("unmarked", "marked", "primed")]
    print(f"{'run':10} {'batch cost':>12} {'cache write':>13} {'cache read':>13} "
          f"{'primers':>8} {'primer cost':>12}")
    for row in rows:
        print(f"{row['mode']:10} {'$' + format(row['batch_usd'], '.4f'):>12} "
              f"{row['write']:>13,} {row['read']:>13,} {row['primers']:>8} "
              f"{'$' + format(row['primer_usd'], '.6f'):>12}")
    unmarked, marked, primed = (row["batch_usd"] for row in rows)
    print(f"marking saves ${unmarked - marked:.4f} ({(1 - marked / unmarked) * 100:.1f}%); "
          f"priming saves ${marked - primed:.4f} more ({(1 - primed / marked) * 100:.1f}% "
          f"of the marked run), its primers included")


if __name__ == "__main__":
    main()
