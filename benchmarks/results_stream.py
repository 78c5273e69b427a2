"""Parse the same results body, served over loopback, with claudebatch and the official SDK.

Prints records/s for ``client.results()`` (typed and raw) and for the official
``anthropic`` package's ``messages.batches.results()``, and the ratios, in one run.

    python benchmarks/results_stream.py [--records 100000] [--text-bytes 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch import BatchClient
from tests.loopback_server import BATCH_ID, LoopbackResultsServer, generated_body


def best_rate(run: Callable[[], int], records: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        seen = run()
        elapsed = time.perf_counter() - started
        if seen != records:
            raise SystemExit(f"expected {records} records, parsed {seen}")
        best = min(best, elapsed)
    return records / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--text-bytes", type=int, default=400,
                        help="length of each answer's text")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs for each client")
    args = parser.parse_args()

    chunks: List[bytes] = list(generated_body(args.records, args.text_bytes)())
    size_mb = sum(map(len, chunks)) / 1e6

    def body() -> Iterable[bytes]:
        return chunks

    with LoopbackResultsServer(body, args.records) as server:
        ours = BatchClient(api_key="bench", base_url=server.url, load_entry_points=False)

        def typed() -> int:
            return sum(1 for r in ours.results(BATCH_ID) if r.custom_id)

        def raw() -> int:
            return sum(1 for r in ours.results(BATCH_ID, raw=True) if r["custom_id"])

        rates = {"claudebatch typed": best_rate(typed, args.records, args.repeat),
                 "claudebatch raw": best_rate(raw, args.records, args.repeat)}
        try:
            import anthropic
        except ImportError:
            anthropic = None  # type: ignore[assignment]
        if anthropic is not None:
            official = anthropic.Anthropic(api_key="bench", base_url=server.url, max_retries=0)

            def official_run() -> int:
                return sum(1 for r in official.messages.batches.results(BATCH_ID) if r.custom_id)

            rates[f"anthropic {anthropic.__version__}"] = best_rate(
                official_run, args.records, args.repeat)

    from claudebatch._results import BACKEND

    print(f"results body: {args.records:,} records, {size_mb:.1f} MB, ijson backend {BACKEND}")
    for name, rate in rates.items():
        print(f"{name:<24} {rate:>12,.0f} records/s")
    baseline = next((v for k, v in rates.items() if k.startswith("anthropic")), None)
    if baseline:
        print(f"typed / official: {rates['claudebatch typed'] / baseline:.2f}x   "
              f"raw / official: {rates['claudebatch raw'] / baseline:.2f}x")
    else:
        print("the official anthropic package is not installed: no ratio")


if __name__ == "__main__":
    main()
