"""Peak RSS and time to submit the same 250 MB JSONL input, claudebatch vs the official SDK.

claudebatch's ``client.run`` streams the file through a spool and sends the body from disk;
the official ``anthropic`` package's ``messages.batches.create`` needs the request list in
memory. Each side runs in its own subprocess against the built-in emulator (loopback), and
is measured from start to the moment the service has accepted the batch.

    python benchmarks/submit_memory.py [--requests 2500] [--request-bytes 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch.emulator import Emulator
from tests.peak_rss import PEAK_RSS_FUNCTION

OURS = PEAK_RSS_FUNCTION + textwrap.dedent("""
    import json, sys, time
    from claudebatch import BatchClient, hookimpl

    class StopAtSubmit(Exception):
        pass

    class Measure:
        @hookimpl
        def after_submit(self, batch):
            raise StopAtSubmit(batch.id)

    started = time.perf_counter()
    client = BatchClient(api_key="k", base_url=sys.argv[1], load_entry_points=False,
                         plugins=[Measure()])
    try:
        client.run(sys.argv[2], output=sys.argv[3])
    except StopAtSubmit:
        pass
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "peak_rss_mb": peak_rss_mb()}))
""")

OFFICIAL = PEAK_RSS_FUNCTION + textwrap.dedent("""
    import json, sys, time
    import anthropic
    started = time.perf_counter()
    client = anthropic.Anthropic(api_key="k", base_url=sys.argv[1], max_retries=0,
                                 timeout=600)
    with open(sys.argv[2]) as handle:
        requests = [json.loads(line) for line in handle]
    client.messages.batches.create(requests=requests)
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "peak_rss_mb": peak_rss_mb(),
                      "version": anthropic.__version__}))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_500)
    parser.add_argument("--request-bytes", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "input.jsonl"
        filler = "z" * args.request_bytes
        with source.open("w") as handle:
            for i in range(args.requests):
                handle.write(json.dumps({"custom_id": f"r-{i}", "params": {
                    "model": "claude-haiku-4-5", "max_tokens": 8,
                    "messages": [{"role": "user", "content": filler}]}}) + "\n")
        size_mb = source.stat().st_size / 1e6
        rows = {}
        with Emulator(rate=1.0, seed=1) as emu:
            for name, code in (("claudebatch client.run", OURS),
                               ("anthropic batches.create", OFFICIAL)):
                out = subprocess.run([sys.executable, "-c", code, emu.url, str(source),
                                      str(Path(tmp) / "out.jsonl")],
                                     capture_output=True, text=True, timeout=1200)
                if out.returncode != 0:
                    rows[name] = {"error": out.stderr.strip().splitlines()[-1:]}
                    continue
                rows[name] = json.loads(out.stdout)
    print(f"input: {args.requests:,} requests, {size_mb:.0f} MB JSONL")
    for name, row in rows.items():
        if "error" in row:
            print(f"{name:<28} failed: {row['error']}")
        else:
            print(f"{name:<28} peak RSS {row['peak_rss_mb']:>8.1f} MB   "
                  f"time {row['seconds']:>6.2f} s")
    ours, theirs = rows.get("claudebatch client.run"), rows.get("anthropic batches.create")
    if ours and theirs and "error" not in ours and "error" not in theirs:
        ratio = theirs["peak_rss_mb"] / ours["peak_rss_mb"]
        print(f"peak RSS official / claudebatch: {ratio:.1f}x")


if __name__ == "__main__":
    main()
