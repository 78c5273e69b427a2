"""Submitting a 250 MB batch from a JSONL file keeps the process small."""

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
    client = BatchClient(api_key="k", base_url=sys.argv[1], poll_interval=0.01,
                         load_entry_points=False)
    report = client.run(sys.argv[2], output=sys.argv[3])
    print(json.dumps({"batches": len(report.batches), "complete": report.complete,
                      "peak_rss_mb": peak_rss_mb()}))
""")


def write_input(path: Path, count: int, text_bytes: int) -> None:
    filler = "z" * text_bytes
    with path.open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({"custom_id": f"big-{i}", "params": {
                "model": "claude-haiku-4-5", "max_tokens": 8,
                "messages": [{"role": "user", "content": filler}]}}) + "\n")


@pytest.mark.slow
def test_submitting_a_250mb_batch_peaks_under_150mb_rss(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_input(source, 2_500, 100_000)
    assert source.stat().st_size >= 250_000_000
    with Emulator(rate=float("inf"), seed=2, answer_tokens=(1, 2)) as emu:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, emu.url, str(source), str(tmp_path / "out.jsonl")],
            capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        assert emu.batches_created == 1
    figures = json.loads(out.stdout)
    assert figures["batches"] == 1 and figures["complete"]
    assert figures["peak_rss_mb"] < 150, figures
