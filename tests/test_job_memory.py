"""A job of a million requests stays small: peak RSS flat in the number of requests.

Duplicate detection, the spool and every per-request index live on disk or in compact
form, not as Python strings (issue #19). The job runs in a child process, which reads
its own high-water mark (VmHWM); the emulator serves it from this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from claudebatch.emulator import Emulator

from .peak_rss import PEAK_RSS_FUNCTION

CHILD = PEAK_RSS_FUNCTION + textwrap.dedent("""
    import json, sys
    from claudebatch import BatchClient
    client = BatchClient(api_key="k", base_url=sys.argv[1], load_entry_points=False)
    after_imports = peak_rss_mb()
    report = client.run(sys.argv[2], output=sys.argv[3], poll_interval=0.05)
    print(json.dumps({"batches": len(report.batches), "complete": report.complete,
                      "succeeded": report.counts.get("succeeded", 0),
                      "after_imports_mb": after_imports, "peak_rss_mb": peak_rss_mb()}))
""")

REQUESTS = 1_000_000


@pytest.mark.slow
def test_a_million_request_job_peaks_under_100mb_rss(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    with source.open("w") as handle:
        for i in range(REQUESTS):
            handle.write(f'{{"custom_id":"r-{i:07d}","params":{{"model":"claude-haiku-4-5",'
                         f'"max_tokens":4,"messages":[{{"role":"user","content":"{i}"}}]}}}}\n')
    output = tmp_path / "out.jsonl"
    with Emulator(rate=float("inf"), seed=5, answer_tokens=(1, 1)) as emu:
        out = subprocess.run([sys.executable, "-c", CHILD, emu.url, str(source), str(output)],
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout)
    assert figures["complete"] and figures["succeeded"] == REQUESTS, figures
    assert figures["batches"] == 10
    with output.open("rb") as handle:
        assert sum(1 for _ in handle) == REQUESTS
    print(figures)  # pytest -s shows the figures
    assert figures["peak_rss_mb"] < 100, figures
