"""Serve a ~1 GB results body from the emulator over loopback; report results/s and RSS.

The emulator runs in its own process (``python -m claudebatch.emulator``), so the peak
RSS reported (VmHWM, from /proc) is the emulator's alone, not the client's.

    python benchmarks/emulator_serve.py                 # 1 GB
    python benchmarks/emulator_serve.py --size-mb 200   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Tuple

import requests

REPO = Path(__file__).resolve().parents[1]
HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}


def peak_rss_mb(pid: int) -> Optional[float]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def start_emulator(answer_tokens: int) -> Tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudebatch.emulator", "--port", "0", "--quiet", "--seed", "1",
         "--rate", "inf", "--answer-tokens", f"{answer_tokens}-{answer_tokens}"],
        stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().startswith("export ANTHROPIC_BASE_URL="):
            return proc, line.strip().split("=", 1)[1]
    raise SystemExit("the emulator did not start")


def make_body(count: int) -> Iterator[bytes]:
    yield b'{"requests":['
    for start in range(0, count, 1000):
        yield b",".join(
            json.dumps({"custom_id": f"req-{i:06d}", "params": {
                "model": "claude-haiku-4-5", "max_tokens": 8192,
                "messages": [{"role": "user", "content": f"Summarise ticket {i}."}]}}).encode()
            for i in range(start, min(count, start + 1000))
        ) + (b"," if start + 1000 < count else b"")
    yield b"]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024.0,
                        help="approximate results body size (default 1024 MB)")
    parser.add_argument("--answer-tokens", type=int, default=2500,
                        help="tokens per answer (default 2500: ~10.6 KB a result line)")
    args = parser.parse_args()

    line_bytes = args.answer_tokens * 4 + 560  # text plus the JSON around it
    count = max(1, min(100_000, int(args.size_mb * 1024 * 1024 / line_bytes)))
    proc, url = start_emulator(args.answer_tokens)
    try:
        idle = peak_rss_mb(proc.pid)
        t0 = time.perf_counter()
        made = requests.post(f"{url}/v1/messages/batches", data=make_body(count),
                             headers=HEADERS, timeout=600)
        made.raise_for_status()
        create_s = time.perf_counter() - t0
        batch_id = made.json()["id"]
        time.sleep(0.05)
        batch = requests.get(f"{url}/v1/messages/batches/{batch_id}", headers=HEADERS,
                             timeout=60).json()
        assert batch["processing_status"] == "ended", batch
        after_create = peak_rss_mb(proc.pid)

        lines = size = 0
        t0 = time.perf_counter()
        with requests.get(batch["results_url"], headers=HEADERS, stream=True,
                          timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
        serve_s = time.perf_counter() - t0
        peak = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)

    assert lines == count, (lines, count)

    def mb(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.0f} MB"

    print(f"batch: {count:,} requests, created in {create_s:.1f} s")
    print(f"results body: {size / 1e9:.2f} GB ({size:,} bytes), {lines:,} lines, "
          f"{args.answer_tokens} output tokens each")
    print(f"served in {serve_s:.1f} s: {lines / serve_s:,.0f} results/s, "
          f"{size / serve_s / 1e6:,.0f} MB/s")
    print(f"emulator peak RSS: idle {mb(idle)}, after create {mb(after_create)}, "
          f"after serving {mb(peak)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
