"""A 250 MB batch costs the emulator little memory: bodies are spooled, results generated.

The emulator runs in a subprocess so its peak RSS (VmHWM) is its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc for RSS"),
]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudebatch.emulator", "--port", "0", "--quiet", "--seed", "1",
         "--rate", "inf", "--answer-tokens", "8-8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if line.startswith("  export ANTHROPIC_BASE_URL="):
            url = line.strip().split("=", 1)[1]
            break
    assert url, proc.stderr.read() if proc.stderr else ""
    yield proc, url
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)


def test_a_250_mb_batch_is_spooled_not_held(server: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = server
    count = 20_000
    filler = "x" * 12_400
    template = json.dumps({"custom_id": "ID", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 16,
        "messages": [{"role": "user", "content": filler}]}}).encode()
    head, tail = template.split(b"ID")

    def body() -> Iterator[bytes]:  # sent chunked, about 250 KB a chunk
        yield b'{"requests":['
        for start in range(0, count, 20):
            yield b"".join((b"," if i else b"") + head + b"r%06d" % i + tail
                           for i in range(start, start + 20))
        yield b"]}"

    size = len(b'{"requests":[]}') + count * (len(head) + len(tail) + 7) - 1
    assert 240e6 < size < 256 * 1024 * 1024
    baseline = peak_rss_mb(proc.pid)
    started = time.monotonic()
    made = requests.post(f"{url}/v1/messages/batches", data=body(), headers=HEADERS, timeout=300)
    assert made.status_code == 200, made.text
    assert made.json()["request_counts"]["processing"] == count
    after_create = peak_rss_mb(proc.pid)

    batch_id = made.json()["id"]
    time.sleep(0.01)
    assert requests.get(f"{url}/v1/messages/batches/{batch_id}", headers=HEADERS,
                        timeout=30).json()["processing_status"] == "ended"
    seen = 0
    with requests.get(f"{url}/v1/messages/batches/{batch_id}/results", headers=HEADERS,
                      stream=True, timeout=300) as r:
        for line in r.iter_lines(chunk_size=1 << 20):
            seen += 1
            if seen == 1:
                assert json.loads(line)["result"]["type"] == "succeeded"
    assert seen == count
    after_results = peak_rss_mb(proc.pid)
    elapsed = time.monotonic() - started
    print(f"\n250 MB batch: baseline {baseline:.0f} MB, after create {after_create:.0f} MB, "
          f"after results {after_results:.0f} MB peak RSS; {elapsed:.1f} s")
    # a body of 250 MB held as Python objects would need well over a gigabyte
    assert after_create - baseline < 100
    assert after_results - baseline < 100
