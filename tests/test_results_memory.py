"""Results stream in constant memory over real HTTP on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from claudebatch import BatchClient

from .loopback_server import BATCH_ID, LoopbackResultsServer, generated_body
from .peak_rss import PEAK_RSS_FUNCTION

CHILD = PEAK_RSS_FUNCTION + textwrap.dedent("""
    import json, sys
    from claudebatch import BatchClient
    client = BatchClient(api_key="k", base_url=sys.argv[1], load_entry_points=False)
    count = text = 0
    for result in client.results(sys.argv[2], raw=sys.argv[3] == "raw"):
        count += 1
        text += len(result["result"]["message"]["content"][0]["text"] if sys.argv[3] == "raw"
                    else result.result.message.text)
    print(json.dumps({"count": count, "text": text, "peak_rss_mb": peak_rss_mb()}))
""")

LINES = 210_000
TEXT_BYTES = 2_000  # about 2.4 KB a line: a body of about 510 MB


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["typed", "raw"])
def test_500mb_results_body_streams_under_120mb_peak_rss(mode: str) -> None:
    with LoopbackResultsServer(generated_body(LINES, TEXT_BYTES), LINES) as server:
        body_size = sum(len(part) for part in server.body())
        assert body_size >= 500 * 1000 * 1000
        out = subprocess.run([sys.executable, "-c", CHILD, server.url, BATCH_ID, mode],
                             capture_output=True, text=True, timeout=600, check=True)
    figures = json.loads(out.stdout)
    assert figures["count"] == LINES
    assert figures["text"] == LINES * TEXT_BYTES
    assert figures["peak_rss_mb"] < 120, figures


def test_a_single_20mb_line_parses_whole() -> None:
    size = 20 * 1024 * 1024
    with LoopbackResultsServer(generated_body(1, size), 1) as server:
        client = BatchClient(api_key="k", base_url=server.url, load_entry_points=False)
        results = list(client.results(BATCH_ID))
    assert len(results) == 1
    assert results[0].custom_id == "req-0"
    assert len(results[0].result.message.text) == size
