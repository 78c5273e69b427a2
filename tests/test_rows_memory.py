"""Rows through a template in memory flat in the number of rows (a child's VmHWM)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from claudebatch._compactset import DigestTable

from .peak_rss import PEAK_RSS_FUNCTION

#: A dry run (read, render, validate, check ids, cut) of N generated rows, in a child.
CHILD = PEAK_RSS_FUNCTION + textwrap.dedent("""
    import json, os, sys
    os.environ["CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    from claudebatch import BatchClient, Rows
    count = int(sys.argv[1])
    rows = ({"id": f"rev-{i:08d}", "product": f"product {i % 977}",
             "review": f"Review {i}: works as described, the manual is thin." * 2}
            for i in range(count))
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    plan = client.job(Rows(rows, template="Classify {{ product }}: {{ review }}",
                           model="claude-haiku-4-5", max_tokens=16, id_column="id")).dry_run()
    print(json.dumps({"total": plan.total_requests, "peak_rss_mb": peak_rss_mb()}))
""")


def peak(count: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(count)], capture_output=True,
                         text=True, timeout=600, check=True)
    figures = json.loads(out.stdout)
    assert figures["total"] == count
    return float(figures["peak_rss_mb"])


@pytest.mark.slow
def test_ten_times_the_rows_costs_almost_no_more_memory() -> None:
    small, large = peak(20_000), peak(200_000)
    # ids checked in flat arrays (12 bytes a slot): 200,000 rows add a few MB, where a
    # dict of ids would add ~30 MB; the margin is for a noisy machine
    assert large - small < 12, (small, large)
    assert large < 120, large


def test_the_digest_table_finds_each_repeat_and_its_first_number() -> None:
    table = DigestTable(capacity=4)
    for number in range(10_000):  # grows several times
        assert table.add(number * 7919 + 2, number) is None
    assert len(table) == 10_000
    assert table.add(5 * 7919 + 2, 99_999) == 5
    assert table.add(0, 1) is None and table.add(0, 2) == 1  # 0 is kept as 1: still found
    assert table.add(2**64 - 1, 2**40) is None
    assert table.add(2**64 - 1, 3) == 2**32 - 1  # a number past 32 bits: the largest
